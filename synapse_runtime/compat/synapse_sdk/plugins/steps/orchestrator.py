from synapse_runtime.steps import Orchestrator

__all__ = ["Orchestrator"]
