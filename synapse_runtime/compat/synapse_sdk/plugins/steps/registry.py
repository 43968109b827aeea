"""``synapse_sdk.plugins.steps.registry``: upstream's module defines ``StepRegistry``, so this one does too.

A subclass adding nothing to the runtime's class: plugins build registries themselves, so a class
at upstream's path costs nothing and code that checks where a class lives finds what it expects.
"""

from typing import TypeVar

from synapse_runtime.actions.steps import StepRegistry as _StepRegistry

C = TypeVar("C")


class StepRegistry(_StepRegistry[C]):
    """The runtime's ``StepRegistry`` (synapse_runtime.actions.steps) at upstream's path."""


__all__ = ["StepRegistry"]
