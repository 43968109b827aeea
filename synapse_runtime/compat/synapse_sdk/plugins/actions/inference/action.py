from synapse_runtime.actions.inference import BaseInferenceAction, InferenceContext, InferenceProgressCategories

__all__ = ["BaseInferenceAction", "InferenceContext", "InferenceProgressCategories"]
