"""Upstream's ``validate_result(result, result_model, logger=None)``: a check that only warns.

Upstream's local and Ray executors call it after ``run()``; a mismatch is logged as a warning and
the result is returned unchanged.  (The runtime's own ``base_action.validate_result`` is stricter:
an action on our classes whose result misses its ``result_model`` fails; docs/compat.md.)
"""

from __future__ import annotations

import logging
from typing import Any

_log = logging.getLogger("synapse_sdk.plugins.action")


def validate_result(result: Any, result_model: Any, logger: Any = None) -> Any:
    """Warn (through ``logger.warning`` or the ``logging`` module) when ``result`` does not fit."""
    if result_model is None or not hasattr(result_model, "model_validate"):
        return result  # NoResult: nothing to check
    log = logger if logger is not None else _log
    try:
        if isinstance(result, result_model):
            return result
        if isinstance(result, dict):
            result_model.model_validate(result)
        elif hasattr(log, "warning"):
            log.warning(f"Result type mismatch: expected {result_model.__name__} or dict, got {type(result).__name__}")
    except Exception as e:  # noqa: BLE001 - a warning, never a failure
        if hasattr(log, "warning"):
            log.warning(f"Result validation warning for {result_model.__name__}: {e}")
    return result


__all__ = ["validate_result"]
