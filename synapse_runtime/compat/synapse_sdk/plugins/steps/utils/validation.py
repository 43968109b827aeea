"""``synapse_sdk.plugins.steps.utils.validation``: ``ValidationStep`` defined at upstream's path (see ../registry.py)."""

from typing import TypeVar

from synapse_runtime.actions.step_utils import ValidationStep as _ValidationStep

C = TypeVar("C")


class ValidationStep(_ValidationStep[C]):
    """The runtime's ``ValidationStep`` (synapse_runtime.actions.step_utils) at upstream's path."""


__all__ = ["ValidationStep"]
