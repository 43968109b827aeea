"""``synapse_sdk.plugins.steps.utils.logging``: ``LoggingStep`` defined at upstream's path (see ../registry.py)."""

from typing import TypeVar

from synapse_runtime.actions.step_utils import LoggingStep as _LoggingStep

C = TypeVar("C")


class LoggingStep(_LoggingStep[C]):
    """The runtime's ``LoggingStep`` (synapse_runtime.actions.step_utils) at upstream's path."""


__all__ = ["LoggingStep"]
