"""A plugin directory: its ``config.yaml`` and action resolution.

config.yaml's model (upstream's rules, read leniently: unknown keys kept, optional fields may be
missing) is ``plugin_config.py``, the one model of it; this module reads the file and resolves
actions.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ActionNotFoundError, PluginLoadError
from .plugin_config import ActionConfig, PluginConfig


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
    from ..compat import install

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
        from ..compat.missing import missing_module_error, missing_upstream_module

        upstream = missing_upstream_module(e)
        if upstream is not None:
            raise missing_module_error(entrypoint, upstream, _import_failure(entrypoint, e).details.get("where")) from None
        raise _import_failure(entrypoint, e) from None
    except Exception as e:  # SyntaxError, errors at import time of plugin code
        if isinstance(e, ImportError):  # `from synapse_sdk.x import Name` the shim lacks
            from ..compat.missing import missing_module_error, missing_upstream_module

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
