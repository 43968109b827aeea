"""What an ``error`` event says about an exception: code, type, message, details, hint, traceback.

Kept apart from the runner (which holds only the order of a run) because it is the part that has
to know every kind of failure: ours (``PluginError`` with its exit code and hint), a cancellation,
and anything user code raised (whose message says what and whose location says where). Tracebacks
pass through the redactor here, as text, before they become a string in an event.
"""

from __future__ import annotations

import os
import signal
import traceback
from pathlib import Path
from typing import Any

from ..errors import Cancelled, PluginError, exit_code_for
from ..events import Redactor, shapes
from ..jsonable import to_jsonable


def error_fields(exc: BaseException, redact: Redactor, output_dir: Path | None = None) -> dict[str, Any]:
    """The ``error`` event's fields for ``exc``; with ``output_dir``, a full disk gets a hint saying
    where the output goes and how much space is left there."""
    fields = _fields(exc, redact)
    if not fields.get("hint") and output_dir is not None and _no_space(exc):
        # "[Errno 28] No space left on device" from a write names no file: say where the
        # action's output goes and how full it is (the usual culprit of a full disk).
        free = _free_bytes(output_dir)
        fields["details"] = {**(fields.get("details") or {}), "output_dir": str(output_dir),
                             "output_free_bytes": free}
        fields["hint"] = (f"a filesystem is full; the output directory {output_dir} has "
                          f"{'?' if free is None else free} bytes free: free space there or mount a larger volume")
    return fields


def _fields(exc: BaseException, redact: Redactor) -> dict[str, Any]:
    code = int(exit_code_for(exc))
    if isinstance(exc, Cancelled):
        name = "SIGINT" if exc.signum == signal.SIGINT else "SIGTERM"
        return shapes.error(code, "Cancelled", f"run cancelled by {name}", {"signal": name})
    if isinstance(exc, PluginError):
        fields = shapes.error(code, exc.error_type, exc.message or exc.error_type, to_jsonable(exc.details),
                              hint=exc.hint)
        cause = getattr(exc, "cause", None) or exc.__cause__
        if cause is not None and not isinstance(cause, PluginError):
            fields["traceback"] = redact("".join(traceback.format_exception(cause)))
        return fields
    # User code raised: the message says what, the traceback says where.
    cause = getattr(exc, "cause", None)
    where = _user_frame(cause if cause is not None else exc)
    location = f"{where.filename}:{where.lineno} in {where.name}" if where else None
    return shapes.error(code, type(exc).__name__, _message(exc), {"location": location}, hint=None,
                        traceback=redact("".join(traceback.format_exception(exc))))


def _no_space(exc: BaseException) -> bool:
    """ENOSPC or EDQUOT anywhere in the exception's cause chain."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return False


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _message(exc: BaseException) -> str:
    from ..actions.steps import StepFailedError

    if isinstance(exc, StepFailedError):
        return str(exc)  # already says which step and why
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the plugin's own code (not ours, not the stdlib, not a library)."""
    import sysconfig

    stdlib = sysconfig.get_paths()["stdlib"]
    frames = traceback.extract_tb(exc.__traceback__)
    for f in reversed(frames):
        name = f.filename
        if "synapse_runtime" in name or "site-packages" in name or name.startswith(stdlib) or name.startswith("<"):
            continue
        return f
    return frames[-1] if frames else None


__all__ = ["error_fields"]
