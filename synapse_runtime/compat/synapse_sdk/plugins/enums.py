from synapse_runtime.compat.sdk_api.enums import *  # noqa: F403
from synapse_runtime.compat.sdk_api.enums import __all__  # noqa: F401
