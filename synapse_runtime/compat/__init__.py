"""Upstream import paths (``synapse_sdk.plugins...``) served by our classes.

``install()`` appends this directory to the *end* of ``sys.path``: a real synapse-sdk installed
anywhere earlier on the path wins, so it is never shadowed; without it, plugins written for
upstream import ours unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

SHIM_DIR = str(Path(__file__).parent)


def install() -> None:
    if SHIM_DIR not in sys.path:
        sys.path.append(SHIM_DIR)


def is_shim(module: object) -> bool:
    """True when ``synapse_sdk`` resolved to this shim rather than the real package."""
    return bool(getattr(module, "__synapse_runtime_shim__", False))


__all__ = ["SHIM_DIR", "install", "is_shim"]
