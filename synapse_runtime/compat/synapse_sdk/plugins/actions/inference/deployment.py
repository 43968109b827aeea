from synapse_runtime.serve.deploy_action import BaseDeploymentAction, DeploymentProgressCategories

__all__ = ["BaseDeploymentAction", "DeploymentProgressCategories"]
