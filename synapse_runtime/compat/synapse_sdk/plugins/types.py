from synapse_runtime.actions.types import DataType, Dataset, Image, ModelWeights, Predictions, TestResults, Text

__all__ = ["DataType", "Dataset", "Image", "ModelWeights", "Predictions", "TestResults", "Text"]
