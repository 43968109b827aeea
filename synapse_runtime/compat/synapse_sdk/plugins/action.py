from synapse_runtime.actions.base_action import BaseAction, NoResult
from synapse_runtime.compat.sdk_api.results import validate_result

__all__ = ["BaseAction", "NoResult", "validate_result"]
