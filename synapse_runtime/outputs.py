"""What a run leaves behind: ``result.json`` (atomic) and the termination message.

``result.json`` is written to a temporary file in the same directory, fsynced and renamed, so a
reader (or a crash) never sees half of it.  The termination message is what Kubernetes shows in
``kubectl describe pod``: a summary that always fits its 4096-byte limit.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import ValidationError
from .events.redact import Redactor
from .jsonable import dumps

TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT = 4096


def prepare_output_dir(path: Path) -> Path:
    """Create the output directory and prove it is writable before the action starts."""
    if not path.is_absolute():
        path = path.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValidationError(
            f"output directory {path} is not writable: {e.strerror or e}",
            details={"output_dir": str(path)},
            hint="mount a writable volume there (-v ...:/mnt/output) or pass --output DIR",
        ) from None
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write-then-rename in the same directory, with fsync of file and directory."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; result.json is for whoever reads the volume
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def write_result(output_dir: Path, record: dict[str, Any], redact: Redactor) -> Path:
    path = output_dir / "result.json"
    write_atomic(path, redact.json(dumps(record)) + "\n")
    return path


def termination_summary(record: dict[str, Any], limit: int = TERMINATION_LIMIT) -> str:
    """The record, shrunk until it fits: without the result, then with a shortened message."""
    summary = {k: record.get(k) for k in ("status", "exit_code", "job_id", "plugin", "action", "duration_s")}
    error = record.get("error")
    if error:
        summary["error_type"] = error.get("error_type")
        summary["message"] = error.get("message")
    with_result = dumps({**summary, "result": record.get("result")})
    if len(with_result.encode()) <= limit:
        return with_result
    text = dumps(summary)
    if len(text.encode()) > limit and summary.get("message"):
        overflow = len(text.encode()) - limit + 16
        message = str(summary["message"])
        summary["message"] = message[: max(0, len(message) - overflow)] + "…"
        text = dumps(summary)
    return text


def write_termination_log(record: dict[str, Any], redact: Redactor, path: str | None = None) -> bool:
    """Write the summary where Kubernetes reads it; silently skipped where not writable."""
    explicit = path or os.environ.get("SYNAPSE_TERMINATION_LOG")
    target = explicit or TERMINATION_LOG
    # The default path only where the orchestrator created it (Kubernetes mounts it as a file):
    # on a bare host, /dev is not ours to write to.
    if not (os.path.isfile(target) and os.access(target, os.W_OK)):
        if not explicit or not os.access(os.path.dirname(os.path.abspath(target)), os.W_OK):
            return False
    text = redact.json(termination_summary(record))
    try:
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        return True
    except OSError:
        return False


__all__ = ["prepare_output_dir", "termination_summary", "write_atomic", "write_result", "write_termination_log"]
