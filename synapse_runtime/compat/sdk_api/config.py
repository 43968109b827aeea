"""config.yaml as upstream's pydantic model (``synapse_sdk.plugins.config``): its API, our one model's rules.

The rules (``name`` and ``code`` required; ``category`` defaults to ``custom``; enum fields take
only their enum's values; an action's default ``method`` by its name, upstream's
``ACTION_DEFAULT_METHODS``; a ``neural_net`` plugin must name its ``data_type``; a version that is
not ``X.Y.Z`` only warns) are checked by the runtime's one config.yaml model
(``synapse_runtime.contract.plugin_config``, strict mode) before pydantic builds this object, so the image
build (scripts/plugin-image.sh) and the runner cannot disagree on a value; the runner reads the
same model leniently (documented there).  Unknown keys are ignored here, as upstream does.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from .enums import (
    AnnotationCategory, AnnotationTool, AnnotationType, DataType, PackageManager, PluginCategory, RunMethod, SmartToolType,
)


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
    def _one_model_rules(cls, data: Any) -> Any:
        """Upstream's rules by the one model (strict); actions get their key as ``name`` and their default method."""
        if not isinstance(data, dict):
            return data
        from ...errors import PluginLoadError
        from ...contract.plugin_config import PluginConfig as OneModel

        try:
            checked = OneModel.from_dict(data, "config.yaml", strict=True)
        except PluginLoadError as e:
            raise ValueError(e.message.removeprefix("config.yaml: ")) from None
        if isinstance(data.get("actions"), dict):
            actions = {}
            for key, value in data["actions"].items():
                if isinstance(value, str):
                    value = {"entrypoint": value}
                method = checked.actions[str(key)].method
                actions[key] = {"name": key, **value, "method": method} if isinstance(value, dict) else value
            data = {**data, "actions": actions}
        return data


__all__ = ["ActionConfig", "PluginConfig", "PluginRequires"]
