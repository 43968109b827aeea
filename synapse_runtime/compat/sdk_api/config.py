"""config.yaml as upstream's pydantic model (``synapse_sdk.plugins.config``), with its rules.

Upstream's rules: ``name`` and ``code`` are required; ``category`` defaults to ``custom``; enum
fields take only their enum's values; a ``neural_net`` plugin must name its ``data_type``; a
version that is not ``X.Y.Z`` only warns (FutureWarning).  Unknown keys are ignored.  The image
build (scripts/plugin-image.sh) checks config.yaml with this model; the runner's own loader
(plugin.py) stays lenient so existing plugins keep running.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from pydantic import BaseModel, Field, model_validator

from .enums import (
    AnnotationCategory, AnnotationTool, AnnotationType, DataType, PackageManager, PluginCategory, RunMethod, SmartToolType,
)

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


class ActionConfig(BaseModel):
    """One entry of ``actions:``."""

    name: str
    description: str = ""
    entrypoint: str = ""
    method: RunMethod = RunMethod.TASK
    params_schema: Any = None
    input_type: str | None = None
    output_type: str | None = None
    serve_options: dict[str, Any] | None = None


class PluginRequires(BaseModel):
    """``requires:``: version specifiers of synapse-sdk, Python and CUDA."""

    sdk: str | None = None
    python: str | None = None
    cuda: str | None = None


class PluginConfig(BaseModel):
    """The whole config.yaml."""

    model_config = {"populate_by_name": True}

    name: str
    code: str
    version: str = "0.1.0"
    variant: str | None = None
    category: PluginCategory = PluginCategory.CUSTOM
    description: str = ""
    readme: str = "README.md"
    package_manager: PackageManager = PackageManager.PIP
    package_manager_options: list[str] = Field(default_factory=list)
    wheels_dir: str = "wheels"
    env: dict[str, Any] = Field(default_factory=dict)
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    data_type: DataType | None = None
    tasks: list[str] = Field(default_factory=list)
    supported_data_types: list[DataType] = Field(default_factory=list)
    annotation_category: AnnotationCategory | None = None
    annotation_type: AnnotationType | None = None
    #: Export plugins: the tools they handle, by annotation category (upstream's field).
    supported_annotation_tools: dict[AnnotationCategory, list[AnnotationTool]] = Field(default_factory=dict)
    smart_tool: SmartToolType | None = None
    requires: PluginRequires | None = None
    dependencies: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    actions: dict[str, ActionConfig] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _action_names(cls, data: Any) -> Any:
        """config.yaml names an action by its key; the model wants ``name`` (as upstream's loader fills it)."""
        if isinstance(data, dict) and isinstance(data.get("actions"), dict):
            actions = {}
            for key, value in data["actions"].items():
                if isinstance(value, str):
                    value = {"entrypoint": value}
                actions[key] = {"name": key, **value} if isinstance(value, dict) else value
            data = {**data, "actions": actions}
        return data

    @model_validator(mode="after")
    def _semver_warning(self) -> PluginConfig:
        if not _SEMVER.match(self.version):
            warnings.warn(f"Plugin '{self.code}' version '{self.version}' does not follow SemVer (X.Y.Z)",
                          FutureWarning, stacklevel=2)
        return self

    @model_validator(mode="after")
    def _neural_net_needs_data_type(self) -> PluginConfig:
        if self.category == PluginCategory.NEURAL_NET and self.data_type is None:
            raise ValueError("data_type is required for neural_net plugins: add 'data_type: image' "
                             "(or text, video, pcd, audio) to config.yaml")
        return self


__all__ = ["ActionConfig", "PluginConfig", "PluginRequires"]
