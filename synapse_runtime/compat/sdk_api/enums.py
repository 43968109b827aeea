"""Upstream's plugin enums (``synapse_sdk.plugins.enums``): the values config.yaml may use.

``StrEnum``s, as upstream: ``PluginCategory.UPLOAD == 'upload'``.  The runtime's loader
(plugin.py) checks the same category, method and package-manager values by hand.
"""

from __future__ import annotations

from enum import StrEnum


class PluginCategory(StrEnum):
    NEURAL_NET = "neural_net"
    EXPORT = "export"
    UPLOAD = "upload"
    SMART_TOOL = "smart_tool"
    POST_ANNOTATION = "post_annotation"
    PRE_ANNOTATION = "pre_annotation"
    DATA_VALIDATION = "data_validation"
    CUSTOM = "custom"


class RunMethod(StrEnum):
    JOB = "job"
    TASK = "task"
    SERVE = "serve"
    RESTAPI = "restapi"


class ExecutionMode(StrEnum):
    LOCAL = "local"
    TASK = "task"
    JOB = "job"


class PackageManager(StrEnum):
    PIP = "pip"
    UV = "uv"


class MetricsCategory(StrEnum):
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class DataType(StrEnum):
    IMAGE = "image"
    TEXT = "text"
    VIDEO = "video"
    PCD = "pcd"
    AUDIO = "audio"
    DATA = "data"


class AnnotationCategory(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    TEXT = "text"
    PCD = "pcd"
    PROMPT = "prompt"
    TIME_SERIES = "time_series"


class AnnotationType(StrEnum):
    BBOX = "bbox"
    POLYGON = "polygon"
    POINT = "point"
    LINE = "line"
    MASK = "mask"
    LABEL = "label"


class AnnotationTool(StrEnum):
    """The backend's annotation tool names (a project's ``configuration`` keys), not ``AnnotationType``'s
    smart-tool vocabulary.  Values are persisted keys, hence ``annotationGroup`` and the ``3d_`` names."""

    BOUNDING_BOX = "bounding_box"
    POLYGON = "polygon"
    POLYLINE = "polyline"
    KEYPOINT = "keypoint"
    SEGMENTATION = "segmentation"
    RELATION = "relation"
    CLASSIFICATION = "classification"
    ANNOTATION_GROUP = "annotationGroup"
    NAMED_ENTITY = "named_entity"
    BOUNDING_BOX_3D = "3d_bounding_box"
    SEGMENTATION_3D = "3d_segmentation"
    PROMPT = "prompt"
    ANSWER = "answer"
    TIME_RANGE = "time_range"


class SmartToolType(StrEnum):
    INTERACTIVE = "interactive"
    AUTOMATIC = "automatic"
    SEMI_AUTOMATIC = "semi_automatic"


#: The method an action gets when config.yaml names none, by well-known action name (else task).
ACTION_DEFAULT_METHODS: dict[str, RunMethod] = {
    "upload": RunMethod.JOB, "export": RunMethod.JOB, "download": RunMethod.JOB, "convert": RunMethod.JOB,
    "train": RunMethod.JOB, "test": RunMethod.JOB, "deployment": RunMethod.JOB, "inference": RunMethod.SERVE,
    "to_task": RunMethod.JOB, "auto_label": RunMethod.TASK,
}

__all__ = [
    "ACTION_DEFAULT_METHODS", "AnnotationCategory", "AnnotationTool", "AnnotationType", "DataType", "ExecutionMode",
    "MetricsCategory", "PackageManager", "PluginCategory", "RunMethod", "SmartToolType",
]
