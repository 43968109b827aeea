"""A plugin directory: its ``config.yaml`` (upstream's PluginConfig) and action resolution.

config.yaml is validated by hand rather than with pydantic: a run that needs no params model
should not pay pydantic's import, and hand-written checks give errors that name the file and
the key (``config.yaml: actions.train.method: must be one of job, task, serve``).  Unknown keys
are kept, never rejected: upstream adds keys over time.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ActionNotFoundError, PluginLoadError

CATEGORIES = (
    "neural_net", "export", "upload", "smart_tool", "pre_annotation",
    "post_annotation", "data_validation", "custom",
)
METHODS = ("job", "task", "serve")
PACKAGE_MANAGERS = ("pip", "uv")


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


@dataclass
class ActionConfig:
    """One entry of ``actions:``."""

    name: str
    entrypoint: str
    description: str = ""
    method: str = "job"
    input_type: str | None = None
    output_type: str | None = None
    serve_options: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: Any, where: str) -> ActionConfig:
        key = f"actions.{name}"
        if isinstance(data, str):  # shorthand: `train: plugin.train:TrainAction`
            data = {"entrypoint": data}
        _check(where, key, data, dict)
        known = {"entrypoint", "description", "method", "input_type", "output_type", "serve_options"}
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
            method=_check(where, f"{key}.method", data.get("method"), str, METHODS) or "job",
            input_type=_check(where, f"{key}.input_type", data.get("input_type"), str),
            output_type=_check(where, f"{key}.output_type", data.get("output_type"), str),
            serve_options=_check(where, f"{key}.serve_options", data.get("serve_options"), dict) or {},
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
    def from_dict(cls, data: Any, where: str = "config.yaml") -> PluginConfig:
        _check(where, "(top level)", data, dict)
        c = _check
        actions_raw = c(where, "actions", data.get("actions"), dict) or {}
        actions = {str(n): ActionConfig.from_dict(str(n), a, where) for n, a in actions_raw.items()}
        name = c(where, "name", data.get("name"), str) or c(where, "code", data.get("code"), str)
        if not name:
            raise PluginLoadError(
                f"{where}: name is missing", details={"file": where, "key": "name"}, hint="add `name: my-plugin`"
            )
        version = data.get("version", "0.1.0")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(
            name=name,
            code=c(where, "code", data.get("code"), str),
            version=str(version),
            variant=c(where, "variant", data.get("variant"), str),
            category=c(where, "category", data.get("category"), str, CATEGORIES),
            description=c(where, "description", data.get("description"), str) or "",
            readme=c(where, "readme", data.get("readme"), str),
            package_manager=c(where, "package_manager", data.get("package_manager"), str, PACKAGE_MANAGERS) or "pip",
            package_manager_options=c(where, "package_manager_options", data.get("package_manager_options"), list) or [],
            wheels_dir=c(where, "wheels_dir", data.get("wheels_dir"), str),
            env={str(k): v for k, v in (c(where, "env", data.get("env"), dict) or {}).items()},
            runtime_env=c(where, "runtime_env", data.get("runtime_env"), dict) or {},
            data_type=c(where, "data_type", data.get("data_type"), str),
            tasks=c(where, "tasks", data.get("tasks"), list) or [],
            supported_data_types=c(where, "supported_data_types", data.get("supported_data_types"), list) or [],
            annotation_category=c(where, "annotation_category", data.get("annotation_category"), str),
            annotation_type=c(where, "annotation_type", data.get("annotation_type"), str),
            smart_tool=c(where, "smart_tool", data.get("smart_tool"), str),
            requires=c(where, "requires", data.get("requires"), dict) or {},
            dependencies=data.get("dependencies"),
            tags=c(where, "tags", data.get("tags"), list) or [],
            actions=actions,
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass
class Plugin:
    """A loaded plugin directory."""

    root: Path
    config: PluginConfig
    config_path: Path | None


@dataclass
class ResolvedAction:
    """An action ready to run: its name, the class or function, and its config entry."""

    name: str
    target: Any
    config: ActionConfig | None
    entrypoint: str

    @property
    def params_model(self) -> Any:
        """Ours and upstream's class attribute, or upstream's ``@action`` mark (``_action_params``)."""
        model = getattr(self.target, "params_model", None)
        return model if model is not None else getattr(self.target, "_action_params", None)


def load_plugin(path: str | Path, *, require_config: bool = True) -> Plugin:
    """Read ``DIR/config.yaml``; errors name the file and the key."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise PluginLoadError(
            f"plugin directory {root} does not exist",
            details={"plugin_dir": str(root)},
            hint="pass --plugin DIR (a directory with config.yaml) or set SYNAPSE_PLUGIN_DIR",
        )
    root = root.resolve()
    cfg_path = next((root / n for n in ("config.yaml", "config.yml") if (root / n).is_file()), None)
    if cfg_path is None:
        if require_config:
            raise PluginLoadError(
                f"{root} has no config.yaml",
                details={"plugin_dir": str(root)},
                hint="a plugin is a directory with config.yaml listing its actions",
            )
        return Plugin(root, PluginConfig(name=root.name), None)
    import yaml

    try:
        data = yaml.load(cfg_path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{cfg_path}:{mark.line + 1}:{mark.column + 1}" if mark else str(cfg_path)
        raise PluginLoadError(
            f"{where}: config.yaml is not valid YAML: {getattr(e, 'problem', None) or e}",
            details={"file": str(cfg_path), "line": mark.line + 1 if mark else None},
            hint="fix the YAML syntax at that line",
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PluginLoadError(f"{cfg_path} cannot be read: {e}", details={"file": str(cfg_path)}) from None
    return Plugin(root, PluginConfig.from_dict(data if data is not None else {}, str(cfg_path)), cfg_path)


def _split_entrypoint(entrypoint: str) -> tuple[str, str]:
    if ":" in entrypoint:
        module, _, attr = entrypoint.partition(":")
    else:
        module, _, attr = entrypoint.rpartition(".")
    if not module or not attr:
        raise ActionNotFoundError(
            f"entrypoint {entrypoint!r} is not `module:Class` or `module.Class`",
            details={"entrypoint": entrypoint},
            hint="write it as `package.module:ClassName` (or `package.module.ClassName`)",
        )
    return module, attr


def import_entrypoint(entrypoint: str, root: Path) -> Any:
    """Import ``module:attr`` from the plugin root; import errors are exit-3 errors with a summary."""
    module_name, attr = _split_entrypoint(entrypoint)
    from .compat import install

    install()
    root_str = str(root)
    if root_str not in sys.path:
        sys.path.insert(0, root_str)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ActionNotFoundError(
                f"module {module_name!r} of entrypoint {entrypoint!r} not found in {root}",
                details={"entrypoint": entrypoint, "plugin_dir": root_str},
                hint="check the entrypoint in config.yaml and the plugin's file layout",
            ) from None
        from .compat.missing import missing_module_error, missing_upstream_module

        upstream = missing_upstream_module(e)
        if upstream is not None:
            raise missing_module_error(entrypoint, upstream, _import_failure(entrypoint, e).details.get("where")) from None
        raise _import_failure(entrypoint, e) from None
    except Exception as e:  # SyntaxError, errors at import time of plugin code
        if isinstance(e, ImportError):  # `from synapse_sdk.x import Name` the shim lacks
            from .compat.missing import missing_module_error, missing_upstream_module

            upstream = missing_upstream_module(e)
            if upstream is not None:
                where = _import_failure(entrypoint, e).details.get("where")
                raise missing_module_error(entrypoint, f"{upstream}.{_missing_name(e)}", where) from None
        raise _import_failure(entrypoint, e) from None
    try:
        target = getattr(module, attr)
    except AttributeError:
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise ActionNotFoundError(
            f"{module_name} has no attribute {attr!r} (entrypoint {entrypoint!r})",
            details={"entrypoint": entrypoint, "module_attributes": public[:50]},
            hint="check the class or function name in config.yaml",
        ) from None
    return target


def _missing_name(exc: ImportError) -> str:
    """The name in "cannot import name 'X' from ..." (ImportError keeps only the module)."""
    text = str(exc)
    return text.split("'")[1] if text.count("'") >= 2 else "?"


def _import_failure(entrypoint: str, exc: BaseException) -> PluginLoadError:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    where = f"{last.filename}:{last.lineno}" if last else None
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}:{exc.lineno}"
    return PluginLoadError(
        f"importing {entrypoint!r} failed: {type(exc).__name__}: {exc}",
        details={"entrypoint": entrypoint, "exception": type(exc).__name__, "where": where},
        hint="fix the plugin code (or install its requirements); the error is at the location given",
    )


def resolve_action(plugin: Plugin, name: str | None = None, entrypoint: str | None = None) -> ResolvedAction:
    """By name (a key of ``actions:``), by entrypoint, or the plugin's only action."""
    actions = plugin.config.actions
    cfg: ActionConfig | None = None
    if name:
        cfg = actions.get(name)
        if cfg is None:
            raise ActionNotFoundError(
                f"plugin {plugin.config.identifier!r} has no action {name!r}",
                details={"action": name, "available": sorted(actions)},
                hint=f"choose one of: {', '.join(sorted(actions)) or '(none defined)'}",
            )
        entrypoint = cfg.entrypoint
    elif entrypoint:
        cfg = next((a for a in actions.values() if _same_entrypoint(a.entrypoint, entrypoint)), None)
    elif len(actions) == 1:
        cfg = next(iter(actions.values()))
        entrypoint = cfg.entrypoint
    else:
        raise ActionNotFoundError(
            f"plugin {plugin.config.identifier!r} has {len(actions)} actions; say which one to run",
            details={"available": sorted(actions)},
            hint="pass --action NAME or set SYNAPSE_ACTION",
        )
    assert entrypoint is not None
    target = import_entrypoint(entrypoint, plugin.root)
    action_name = cfg.name if cfg else None
    if isinstance(target, type):
        if not (callable(getattr(target, "run", None)) or callable(getattr(target, "execute", None))):
            raise ActionNotFoundError(
                f"{entrypoint!r} is a class but not an action (no execute/run method)",
                details={"entrypoint": entrypoint},
                hint="subclass BaseAction and implement execute()",
            )
        if getattr(target, "action_name", None) is None and action_name:
            target.action_name = action_name
        if getattr(target, "category", None) is None and plugin.config.category:
            target.category = plugin.config.category
        action_name = action_name or getattr(target, "action_name", None) or target.__name__
    elif callable(target):
        action_name = action_name or getattr(target, "action_name", None) or getattr(target, "__name__", "action")
    else:
        raise ActionNotFoundError(
            f"{entrypoint!r} is neither an action class nor a function",
            details={"entrypoint": entrypoint},
        )
    return ResolvedAction(name=str(action_name), target=target, config=cfg, entrypoint=entrypoint)


def _same_entrypoint(a: str, b: str) -> bool:
    try:
        return _split_entrypoint(a) == _split_entrypoint(b)
    except ActionNotFoundError:
        return False


__all__ = [
    "ActionConfig", "Plugin", "PluginConfig", "ResolvedAction",
    "import_entrypoint", "load_plugin", "resolve_action",
]
