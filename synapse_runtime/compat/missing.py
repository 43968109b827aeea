"""What to say when a plugin reaches past the shim: an upstream module we do not provide.

Without the real synapse-sdk, ``synapse_sdk`` resolves to our shim, which covers the seed-documented
plugin API (docs/compat.md has the table).  Upstream's wider frameworks (upload, export, train,
pipelines, clients...) are not imitated: a plugin importing one gets an exit-3 error that names the
module and tells the author how to get the real package, instead of a bare ModuleNotFoundError.
"""

from __future__ import annotations

import sys
from typing import Any

#: The upstream release the shim follows and plugins should pin.
UPSTREAM_PIN = "synapse-sdk==2026.2.17"


def missing_upstream_module(exc: ImportError) -> str | None:
    """The missing ``synapse_sdk...`` module's name when ``exc`` is the shim falling short, else None.

    Only counts when ``synapse_sdk`` itself resolved to the shim: with the real package installed a
    missing submodule is a version mismatch, reported like any other import error.
    """
    name = exc.name or ""
    if name != "synapse_sdk" and not name.startswith("synapse_sdk."):
        return None
    from . import is_shim

    top = sys.modules.get("synapse_sdk")
    if top is not None and not is_shim(top):
        return None
    return name


def missing_module_error(entrypoint: str, module: str, where: str | None) -> Any:
    """The exit-3 error (ActionNotFoundError) a plugin gets for an upstream module the shim lacks."""
    from ..errors import ActionNotFoundError

    return ActionNotFoundError(
        f"importing {entrypoint!r} failed: {module} is part of the real synapse-sdk package, "
        f"which is not installed (synapse-runtime's built-in stand-in covers only the core plugin API)",
        details={"entrypoint": entrypoint, "module": module, "where": where, "requires": UPSTREAM_PIN},
        hint=(f"add `{UPSTREAM_PIN}` to the plugin's requirements.txt and build the plugin's image "
              "(scripts/plugin-image.sh; see docs/compat.md), or pip install it beside synapse-runtime"),
    )


__all__ = ["UPSTREAM_PIN", "missing_module_error", "missing_upstream_module"]
