from synapse_runtime.serve.deployment import BaseServeDeployment, create_serve_multiplexed_model_id

__all__ = ["BaseServeDeployment", "create_serve_multiplexed_model_id"]
