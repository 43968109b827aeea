"""``synapse_sdk.plugins.steps.orchestrator``: ``Orchestrator`` defined at upstream's path (see registry.py)."""

from typing import TypeVar

from synapse_runtime.actions.steps import Orchestrator as _Orchestrator

C = TypeVar("C")


class Orchestrator(_Orchestrator[C]):
    """The runtime's ``Orchestrator`` (synapse_runtime.actions.steps) at upstream's path."""


__all__ = ["Orchestrator"]
