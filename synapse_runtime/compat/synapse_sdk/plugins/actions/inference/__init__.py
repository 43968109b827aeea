from synapse_runtime.actions.inference import BaseInferenceAction, InferenceContext, InferenceProgressCategories
from synapse_runtime.serve.deploy_action import BaseDeploymentAction, DeploymentProgressCategories
from synapse_runtime.serve.deployment import BaseServeDeployment, create_serve_multiplexed_model_id

__all__ = ["BaseDeploymentAction", "BaseInferenceAction", "BaseServeDeployment", "DeploymentProgressCategories",
           "InferenceContext", "InferenceProgressCategories", "create_serve_multiplexed_model_id"]
