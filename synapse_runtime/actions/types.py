"""Data-type markers for ``input_type``/``output_type`` (upstream's ``synapse_sdk.plugins.types``).

They describe what an action consumes and produces, for catalogues and UIs; nothing validates
against them at run time.
"""

from __future__ import annotations


class DataType:
    """Base of the markers; ``name`` is how config.yaml and UIs spell it."""

    name: str = "data"
    description: str = ""


class Dataset(DataType):
    name = "dataset"
    description = "A dataset of files and annotations."


class ModelWeights(DataType):
    name = "model_weights"
    description = "Trained model weights (a checkpoint)."


class TestResults(DataType):
    __test__ = False  # not a pytest test class
    name = "test_results"
    description = "Evaluation results of a model."


class Predictions(DataType):
    name = "predictions"
    description = "Inference outputs."


class Image(DataType):
    name = "image"


class Text(DataType):
    name = "text"


__all__ = ["DataType", "Dataset", "Image", "ModelWeights", "Predictions", "TestResults", "Text"]
