"""Ray Serve application builder: a plugin's serve deployment built the way upstream's `deployment` action
builds it (synapse_sdk BaseDeploymentAction.deploy), for a KubeRay RayService's serveConfigV2.

Why a builder: serveConfigV2 names an `import_path` that Ray Serve imports on the cluster, and a plugin
exports a deployment *class* (BaseServeDeployment with a FastAPI `app`), not a bound application. Upstream
binds it inside its `deployment` action at run time; this module does the same binding from config.yaml,
so the cluster's Serve controller owns the application (KubeRay redeploys it, restarts it, upgrades it)
instead of a one-off job.

What it mirrors, in order: the action's entrypoint class from config.yaml; `serve.ingress(cls.app)` when
the class has a FastAPI app; `serve.batch` on `infer_batch` when the deployment action's serve_options
name `batch`; `serve.deployment(**serve_options)(cls).bind(backend_url)`, with backend_url from
SYNAPSE_PLUGIN_RUN_HOST or SYNAPSE_HOST. What it leaves out on purpose: upstream's runtime_env (the
requirements are installed in the image; pip at deploy time would reach an index) and the backend
registration (register the application with the backend as your release process does).
The deployment is named after the class, so serveConfigV2's `deployments[].name` can refer to it.

Needs the real synapse-sdk, ray[serve] 2.50 with protobuf<7, and FastAPI < 0.137 in the image
(docs/serving-kubernetes.md#rayservice).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import yaml

SERVE_METHODS = ("serve", "restapi")


def _entrypoint(plugin_dir: Path, action: str) -> tuple[type, dict[str, Any]]:
    """The action's class and the plugin's config, or a ValueError naming what to fix."""
    config_path = plugin_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    actions = config.get("actions") or {}
    if action not in actions:
        raise ValueError(f"{config_path}: no action {action!r} (actions: {sorted(actions)})")
    entry = actions[action]
    if entry.get("method") not in SERVE_METHODS:
        raise ValueError(f"{config_path}: action {action!r} has method {entry.get('method')!r}, not serve or restapi")
    module_name, sep, class_name = str(entry["entrypoint"]).replace(":", ".").rpartition(".")
    if not sep:
        raise ValueError(f"{config_path}: action {action!r}: entrypoint {entry['entrypoint']!r} is not module.Class")
    if str(plugin_dir) not in sys.path:
        sys.path.insert(0, str(plugin_dir))
    return getattr(importlib.import_module(module_name), class_name), config


def build(args: dict[str, Any]) -> Any:
    """serveConfigV2 `args` -> the bound application. Keys: plugin_dir (default $SYNAPSE_PLUGIN_DIR),
    action (default inference), deployment_action (whose serve_options apply; default deployment, as
    upstream), backend_url (default $SYNAPSE_PLUGIN_RUN_HOST or $SYNAPSE_HOST)."""
    from ray import serve

    plugin_dir = Path(args.get("plugin_dir") or os.environ["SYNAPSE_PLUGIN_DIR"])
    cls, config = _entrypoint(plugin_dir, args.get("action", "inference"))
    deployment_action = (config.get("actions") or {}).get(args.get("deployment_action", "deployment")) or {}
    serve_options = dict(deployment_action.get("serve_options") or {})
    batch = serve_options.pop("batch", None)
    name = cls.__name__
    if getattr(cls, "app", None) is not None:
        cls = serve.ingress(cls.app)(cls)
    if batch and hasattr(cls, "infer_batch"):
        batched = serve.batch(max_batch_size=batch.get("max_batch_size", 8),
                              batch_wait_timeout_s=batch.get("batch_wait_timeout_s", 0.1))(cls.infer_batch)
        cls = type(name, (cls,), {"infer_batch": batched})
    backend_url = args.get("backend_url") or os.environ.get("SYNAPSE_PLUGIN_RUN_HOST") or os.environ.get("SYNAPSE_HOST", "")
    return serve.deployment(name=name, **serve_options)(cls).bind(backend_url)
