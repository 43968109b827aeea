from synapse_runtime.inference import BaseInferenceAction, InferenceContext, InferenceProgressCategories

__all__ = ["BaseInferenceAction", "InferenceContext", "InferenceProgressCategories"]
