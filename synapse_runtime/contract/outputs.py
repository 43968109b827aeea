"""What a run leaves behind: ``result.json`` (atomic), the ``result`` event, the termination message, the upload.

``result.json`` is written to a temporary file in the same directory, fsynced and renamed, so a
reader (or a crash) never sees half of it.  The termination message is what Kubernetes shows in
``kubectl describe pod``: a summary that always fits its 4096-byte limit.  The ``result`` event
stays one short line (:func:`result_event`): container runtimes split log lines over 16 KiB, and
log collectors without multiline handling then break the JSON.  The output upload is bounded
(:func:`upload_within`), so it can never outlast the pod's grace period and lose the run's outcome.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StorageError, ValidationError
from ..events import EventSink, shapes
from ..events.redact import Redactor
from ..jsonable import dumps, to_jsonable

if TYPE_CHECKING:
    from .settings import Settings

TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT = 4096
#: The ``result`` event's payload, at most: well under the 16 KiB at which runtimes split a log line.
RESULT_EVENT_LIMIT = 8192
#: A result field bigger than this is left out of a summarised ``result`` event (it is in result.json).
RESULT_FIELD_LIMIT = 1024
UPLOAD_TIMEOUT_ENV = "SYNAPSE_UPLOAD_TIMEOUT"
CANCEL_UPLOAD_TIMEOUT_ENV = "SYNAPSE_CANCEL_UPLOAD_TIMEOUT"



def result_value(value: Any) -> Any:
    """Upstream's result rules: dicts as they are, models dumped, anything else wrapped."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if not isinstance(value, dict):
        value = {"result": value}
    return to_jsonable(value)

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


def _describe(value: Any, size: int) -> dict[str, Any]:
    kind = "list" if isinstance(value, list) else "object" if isinstance(value, dict) else type(value).__name__
    out: dict[str, Any] = {"type": kind, "bytes": size}
    if isinstance(value, (list, dict, str)):
        out["length"] = len(value)
    return out


def result_event(result: Any, output_dir: Path | None, limit: int = RESULT_EVENT_LIMIT) -> dict[str, Any]:
    """The ``result`` event's fields: the whole result when it fits ``limit`` bytes, else a summary.

    The summary keeps every top-level field of at most :data:`RESULT_FIELD_LIMIT` bytes (counts,
    flags, metrics), describes the others under ``omitted`` (type, length, bytes), and says where the
    whole result is (``result_file``): predictions belong in result.json or a JSON-lines file, not on
    one log line.
    """
    whole = shapes.result(result)
    if len(dumps(whole).encode()) <= limit:
        return whole
    kept: dict[str, Any] = {}
    omitted: dict[str, Any] = {}
    items = result.items() if isinstance(result, dict) else [("result", result)]
    for key, value in items:
        size = len(dumps(value).encode())
        if isinstance(result, dict) and size <= RESULT_FIELD_LIMIT:
            kept[str(key)] = value
        else:
            omitted[str(key)] = _describe(value, size)
    event = shapes.result(kept, truncated=True, omitted=omitted,
                          result_file=str(output_dir / "result.json") if output_dir is not None else None)
    while len(dumps(event).encode()) > limit and (kept or len(omitted) > 1):
        if kept:  # many small fields: the largest go first
            key = max(kept, key=lambda k: len(dumps(kept[k])))
            omitted[key] = _describe(kept[key], len(dumps(kept.pop(key)).encode()))
        else:
            event["omitted"] = {"fields": len(omitted)}
            break
    return event


def emit_result(writer: EventSink, result: Any, output_dir: Path | None, reporter: Any = None) -> dict[str, Any]:
    """Emit the ``result`` event (:func:`result_event`). A backend job reporter still gets the whole
    result, redacted as the stream is: the backend's job record has always held all of it."""
    event = result_event(result, output_dir)
    writer.emit("result", event)
    if reporter is not None and event.get("truncated"):
        import json

        text = dumps({"type": "result", "result": result})
        if writer.redact.active:
            text = writer.redact(text)
        reporter.handle(json.loads(text))
    return event


def upload_timeout(settings: "Settings", cancelled: bool) -> float:
    """Seconds the output upload may take: ``SYNAPSE_UPLOAD_TIMEOUT``, and after a SIGTERM at most
    ``SYNAPSE_CANCEL_UPLOAD_TIMEOUT`` (keep it under the pod's terminationGracePeriodSeconds, minus
    the rollback's time). Defaults: the knob table's (docs/contract.md)."""
    bound = settings.upload_timeout
    if cancelled:
        bound = min(bound, settings.cancel_upload_timeout)
    return bound


def upload_within(upload: Callable[[], Any], uri: str, timeout: float) -> None:
    """Run ``upload`` for at most ``timeout`` seconds; past it, ``StorageError`` (exit 4).

    The transfer runs in a daemon thread, so an endpoint that stops answering cannot hold the
    process: the run reports the timeout and exits, and the thread ends with it.
    """
    failure: list[BaseException] = []

    def target() -> None:
        try:
            upload()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            failure.append(e)

    worker = threading.Thread(target=target, name="synapse-output-upload", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        from . import signals

        signals.abandon_threads()  # the process must end with os._exit (the console entry asks signals.py)
        raise StorageError(
            f"uploading the output to {uri} did not finish within {timeout:g} s",
            details={"uri": uri, "timeout_s": timeout, "cause": "timeout"},
            hint=f"check the endpoint, or raise {UPLOAD_TIMEOUT_ENV} (and {CANCEL_UPLOAD_TIMEOUT_ENV} below the pod's "
            "terminationGracePeriodSeconds); result.json is on the output volume",
        )
    if failure:
        raise failure[0]


def termination_summary(record: dict[str, Any], limit: int = TERMINATION_LIMIT) -> str:
    """The record, shrunk until it fits: without the result, then with a shortened message."""
    summary = {k: record.get(k) for k in ("status", "exit_code", "job_id", "plugin", "action", "duration_s")}
    if record.get("upload"):  # "in progress": written before the upload, so a SIGKILL during it keeps this
        summary["upload"] = record["upload"]
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
    """Write the summary where Kubernetes reads it; silently skipped where not writable.

    ``path``: the run's ``SYNAPSE_TERMINATION_LOG`` (its settings); None: ``/dev/termination-log``
    where the orchestrator created it."""
    explicit = path
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


__all__ = [
    "emit_result",
    "prepare_output_dir", "result_value",
    "result_event",
    "termination_summary",
    "upload_timeout",
    "upload_within",
    "write_atomic",
    "write_result",
    "write_termination_log",
]


def deliver(record: dict[str, Any], output_dir: Path, writer: EventSink, redactor: Redactor, settings: "Settings",
            *, cancelled: bool, upload: bool = True) -> dict[str, Any]:
    """``result.json``, then the upload to ``settings.output_uri`` (bounded); the record as it ends up.

    ``upload=False`` when the run's error is a bad knob (exit 2): nothing ran, and an upload would
    use settings the operator got wrong (a bad timeout would become the default hour); result.json
    stays on the output volume.

    A run that succeeded but whose outputs cannot be written or uploaded has failed (exit 4): the
    record says so, and an ``error`` event says why. The termination message goes out before the
    upload, so a SIGKILL at the end of the grace period still leaves the outcome.
    """
    from ..errors import ExitCode, PluginError
    from .failures import error_fields

    try:
        write_result(output_dir, record, redactor)
    except OSError as e:
        err = {"error_type": "StorageError", "message": f"cannot write {output_dir}/result.json: {e.strerror or e}",
               "details": {"output_dir": str(output_dir)}}
        writer.emit("error", shapes.error(ExitCode.STORAGE, err["error_type"], err["message"], err["details"],
                                          hint="check free space and permissions of the output volume"))
        if record["status"] == "succeeded":
            record.update(status="failed", exit_code=int(ExitCode.STORAGE), error=err)
        return record
    uri = settings.output_uri if upload else None
    if not uri:
        return record
    write_termination_log({**record, "upload": "in progress"}, redactor, settings.termination_log)
    try:
        from ..storage import upload_dir

        def progress(u: str, done: int, total: int | None, cached: bool, via: str | None = None) -> None:
            writer.emit("upload", shapes.upload(u, done, total, via))

        upload_within(lambda: upload_dir(output_dir, uri, progress=progress, settings=settings), uri,
                      upload_timeout(settings, cancelled=cancelled))
    except PluginError as e:
        fields = error_fields(e, redactor)
        writer.emit("error", fields)
        if record["status"] == "succeeded":
            record.update(status="failed", exit_code=fields["code"],
                          error={k: fields[k] for k in ("error_type", "message", "details")})
            write_result(output_dir, record, redactor)
    return record
