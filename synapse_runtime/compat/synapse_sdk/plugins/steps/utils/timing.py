"""``synapse_sdk.plugins.steps.utils.timing``: ``TimingStep`` defined at upstream's path (see ../registry.py)."""

from typing import TypeVar

from synapse_runtime.actions.step_utils import TimingStep as _TimingStep

C = TypeVar("C")


class TimingStep(_TimingStep[C]):
    """The runtime's ``TimingStep`` (synapse_runtime.actions.step_utils) at upstream's path."""


__all__ = ["TimingStep"]
