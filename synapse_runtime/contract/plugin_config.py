"""config.yaml: the one model (upstream's ``synapse_sdk.plugins.config`` rules), lenient or strict.

Upstream's rules live here and nowhere else: the enum values a key may take (from
``compat/sdk_api/enums.py``, upstream's ``synapse_sdk.plugins.enums``), an action's default
``method`` (upstream's ``ACTION_DEFAULT_METHODS`` by action name, else ``task``), and, in strict
mode, upstream's required fields (``name`` *and* ``code``; ``data_type`` for ``neural_net``) and
its SemVer warning.

Two callers, one model:

* the runner (``plugin.load_plugin``) reads config.yaml **leniently**, a documented choice:
  unknown keys are kept in ``extra`` (upstream adds keys over time), optional fields may be
  missing, and ``name`` or ``code`` is enough, so a plugin that upstream's stricter model rejects
  for a missing field still runs, while a *wrong* value (an unknown method or category) fails;
* ``compat/sdk_api/config.py`` (upstream's pydantic ``PluginConfig``, used by the image build's
  check) runs the same checks with ``strict=True`` before pydantic builds its object.

Hand-written rather than pydantic: a run that needs no params model should not pay pydantic's
import, and the errors name the file and the key (``config.yaml: actions.a.method: 'x' is not
one of job, task, serve, restapi``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..compat.sdk_api.enums import (
    ACTION_DEFAULT_METHODS, AnnotationCategory, AnnotationType, DataType, PackageManager, PluginCategory, RunMethod,
    SmartToolType,
)
from ..errors import PluginLoadError

CATEGORIES = tuple(c.value for c in PluginCategory)
METHODS = tuple(m.value for m in RunMethod)
PACKAGE_MANAGERS = tuple(p.value for p in PackageManager)
DATA_TYPES = tuple(d.value for d in DataType)
#: Methods under which the image serves the action over HTTP instead of running it once.
SERVE_METHODS = (RunMethod.SERVE.value, RunMethod.RESTAPI.value)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def default_method(action: str) -> str:
    """Upstream's default ``method`` for an action that names none: by its well-known name, else ``task``."""
    return ACTION_DEFAULT_METHODS.get(action, RunMethod.TASK).value


def _check(where: str, key: str, value: Any, kind: type | tuple[type, ...], allowed: tuple[str, ...] = ()) -> Any:
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise PluginLoadError(
            f"{where}: {key}: expected {names}, got {type(value).__name__}",
            details={"file": where, "key": key},
            hint=f"fix `{key}` in config.yaml",
        )
    if allowed and value not in allowed:
        raise PluginLoadError(
            f"{where}: {key}: {value!r} is not one of {', '.join(allowed)}",
            details={"file": where, "key": key, "allowed": list(allowed)},
            hint=f"fix `{key}` in config.yaml",
        )
    return value


def _values(enum: Any) -> tuple[str, ...]:
    return tuple(e.value for e in enum)


@dataclass
class ActionConfig:
    """One entry of ``actions:``."""

    name: str
    entrypoint: str
    description: str = ""
    method: str = RunMethod.TASK.value
    input_type: str | None = None
    output_type: str | None = None
    serve_options: dict[str, Any] = field(default_factory=dict)
    params_schema: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def serves(self) -> bool:
        """True when the action is an HTTP deployment (``method: serve`` or ``restapi``)."""
        return self.method in SERVE_METHODS

    @classmethod
    def from_dict(cls, name: str, data: Any, where: str) -> ActionConfig:
        key = f"actions.{name}"
        if isinstance(data, str):  # shorthand: `train: plugin.train:TrainAction`
            data = {"entrypoint": data}
        _check(where, key, data, dict)
        known = {"name", "entrypoint", "description", "method", "input_type", "output_type", "serve_options",
                 "params_schema"}
        entrypoint = _check(where, f"{key}.entrypoint", data.get("entrypoint"), str)
        if not entrypoint:
            raise PluginLoadError(
                f"{where}: {key}.entrypoint is missing",
                details={"file": where, "key": f"{key}.entrypoint"},
                hint="give the action's `module:Class` or `module.function`",
            )
        return cls(
            name=name,
            entrypoint=entrypoint,
            description=_check(where, f"{key}.description", data.get("description"), str) or "",
            method=_check(where, f"{key}.method", data.get("method"), str, METHODS) or default_method(name),
            input_type=_check(where, f"{key}.input_type", data.get("input_type"), str),
            output_type=_check(where, f"{key}.output_type", data.get("output_type"), str),
            serve_options=_check(where, f"{key}.serve_options", data.get("serve_options"), dict) or {},
            params_schema=data.get("params_schema"),
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass
class PluginConfig:
    """config.yaml, with upstream's keys typed and anything else kept in ``extra``."""

    name: str
    code: str | None = None
    version: str = "0.1.0"
    variant: str | None = None
    category: str | None = None
    description: str = ""
    readme: str | None = None
    package_manager: str = "pip"
    package_manager_options: list[str] = field(default_factory=list)
    wheels_dir: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    runtime_env: dict[str, Any] = field(default_factory=dict)
    data_type: str | None = None
    tasks: list[Any] = field(default_factory=list)
    supported_data_types: list[Any] = field(default_factory=list)
    annotation_category: str | None = None
    annotation_type: str | None = None
    supported_annotation_tools: dict[str, Any] = field(default_factory=dict)
    smart_tool: str | None = None
    requires: dict[str, Any] = field(default_factory=dict)
    dependencies: Any = None
    tags: list[str] = field(default_factory=list)
    actions: dict[str, ActionConfig] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def identifier(self) -> str:
        """How events name the plugin: ``code`` when given, else ``name``."""
        return self.code or self.name

    @classmethod
    def from_dict(cls, data: Any, where: str = "config.yaml", *, strict: bool = False) -> PluginConfig:
        """Check ``data`` by upstream's rules; ``strict`` adds upstream's required fields (module docstring)."""
        _check(where, "(top level)", data, dict)
        c = _check
        actions_raw = c(where, "actions", data.get("actions"), dict) or {}
        actions = {str(n): ActionConfig.from_dict(str(n), a, where) for n, a in actions_raw.items()}
        name = c(where, "name", data.get("name"), str) or c(where, "code", data.get("code"), str)
        if not name:
            raise PluginLoadError(
                f"{where}: name is missing", details={"file": where, "key": "name"}, hint="add `name: my-plugin`"
            )
        version = str(data.get("version", "0.1.0"))
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        cfg = cls(
            name=name,
            code=c(where, "code", data.get("code"), str),
            version=version,
            variant=c(where, "variant", data.get("variant"), str),
            category=c(where, "category", data.get("category"), str, CATEGORIES),
            description=c(where, "description", data.get("description"), str) or "",
            readme=c(where, "readme", data.get("readme"), str),
            package_manager=c(where, "package_manager", data.get("package_manager"), str, PACKAGE_MANAGERS) or "pip",
            package_manager_options=c(where, "package_manager_options", data.get("package_manager_options"), list) or [],
            wheels_dir=c(where, "wheels_dir", data.get("wheels_dir"), str),
            env={str(k): v for k, v in (c(where, "env", data.get("env"), dict) or {}).items()},
            runtime_env=c(where, "runtime_env", data.get("runtime_env"), dict) or {},
            data_type=c(where, "data_type", data.get("data_type"), str, DATA_TYPES),
            tasks=c(where, "tasks", data.get("tasks"), list) or [],
            supported_data_types=c(where, "supported_data_types", data.get("supported_data_types"), list) or [],
            annotation_category=c(where, "annotation_category", data.get("annotation_category"), str,
                                  _values(AnnotationCategory)),
            annotation_type=c(where, "annotation_type", data.get("annotation_type"), str, _values(AnnotationType)),
            supported_annotation_tools=c(where, "supported_annotation_tools", data.get("supported_annotation_tools"),
                                         dict) or {},
            smart_tool=c(where, "smart_tool", data.get("smart_tool"), str, _values(SmartToolType)),
            requires=c(where, "requires", data.get("requires"), dict) or {},
            dependencies=data.get("dependencies"),
            tags=c(where, "tags", data.get("tags"), list) or [],
            actions=actions,
            extra={k: v for k, v in data.items() if k not in known},
        )
        if strict:
            cfg._check_strict(data, where)
        return cfg

    def _check_strict(self, data: dict[str, Any], where: str) -> None:
        """Upstream's required fields and warnings, which the runner's lenient reading lets pass."""
        for key in ("name", "code"):
            if not data.get(key):
                raise PluginLoadError(f"{where}: {key} is missing", details={"file": where, "key": key},
                                      hint=f"add `{key}: ...` (upstream's PluginConfig requires name and code)")
        if self.category == PluginCategory.NEURAL_NET.value and self.data_type is None:
            raise PluginLoadError(
                f"{where}: data_type is required for neural_net plugins", details={"file": where, "key": "data_type"},
                hint=f"add 'data_type: image' (or one of {', '.join(DATA_TYPES)}) to config.yaml")
        if not _SEMVER.match(self.version):
            warnings.warn(f"Plugin '{self.code}' version '{self.version}' does not follow SemVer (X.Y.Z)",
                          FutureWarning, stacklevel=3)


__all__ = [
    "CATEGORIES", "METHODS", "PACKAGE_MANAGERS", "SERVE_METHODS", "ActionConfig", "PluginConfig", "default_method",
]
