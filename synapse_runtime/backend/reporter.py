"""Report a run to the Synapse backend from its event stream, as upstream's job entrypoint does.

The JSON-lines stream stays the source of truth; this is a best-effort mirror of it on the
platform. So the rules are:

* ``handle()`` is called for every event, from any thread, and must never slow or break the run:
  it only updates in-memory state under a lock (microseconds) and, at most a few times per
  interval, wakes one background thread that does all the HTTP.
* Progress and metrics are snapshots, so only the newest matters: at most one ``PATCH`` per
  ``interval`` carries both records, and the final one rides with the final status.
* Log entries are batched (``log_batch_size`` entries or ``log_interval`` seconds, upstream's 200
  and 2 s); the buffer is bounded, dropping the oldest (and saying so) when the backend is away.
* No backend failure ever raises into the run: it is reported through ``warn`` once per kind of
  failure, and after a 401/403, or a 404 for the job, reporting stops (nothing can succeed).
* Requests fail fast (at most one retry, none once the backend is known to be away); only the
  final status gets the client's full retry budget, so a dead backend does not hold up the end.

Sequence for a run: ``start`` -> ``PATCH {status: RUNNING}``; progress/metrics -> throttled
``PATCH {progress_record, metrics_record}`` (the steps' proportions and order, when ``set_steps``
told them, listed from the first); logs -> ``POST logs/``; ``end`` -> remaining logs,
then one ``PATCH`` with the final status (SUCCEEDED with ``result``, FAILED with
``{"error": message}``, STOPPED for a cancelled run) and the final records.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from synapse_runtime.backend.exceptions import BackendAuthError, BackendNotFoundError, BackendUnavailableError
from synapse_runtime.backend.records import LOG_EVENT_TYPES, MetricsRecord, ProgressRecord, file_data_uri, log_entry

if TYPE_CHECKING:
    from synapse_runtime.backend.client import BackendClient

_FINAL_STATUS = {"succeeded": "SUCCEEDED", "failed": "FAILED", "cancelled": "STOPPED"}
_MISSING = object()


class JobReporter:
    """Consumes the runtime's event dicts and reports the job to the backend like upstream's entrypoint."""

    def __init__(
        self,
        client: BackendClient,
        job_id: str,
        *,
        interval: float = 1.0,
        warn: Callable[[str], None] | None = None,
        log_batch_size: int = 200,
        log_interval: float = 2.0,
        max_pending_logs: int = 10_000,
        step_proportions: Mapping[str, float] | None = None,
    ) -> None:
        self._client = client
        self._job_id = str(job_id)
        self._interval = max(0.0, float(interval))
        self._warn_cb = warn
        self._log_batch_size = max(1, int(log_batch_size))
        self._log_interval = max(0.0, float(log_interval))
        self._max_pending_logs = max(1, int(max_pending_logs))

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._progress = ProgressRecord(step_proportions)
        self._metrics = MetricsRecord()
        self._dirty = False  # records changed since the last PATCH that carried them
        self._logs: deque[tuple[Mapping[str, Any], str | None]] = deque()
        self._logs_since: float | None = None  # when the oldest pending log arrived
        self._logs_dropped = 0
        self._created = time.monotonic()
        self._started: float | None = None
        self._running_pending = False
        self._result: Any = _MISSING
        self._error: Mapping[str, Any] | None = None
        self._end: Mapping[str, Any] | None = None
        self._closing = False
        self._deadline: float | None = None

        self._warned: set[str] = set()
        # Fail fast once the backend is known to be away: snapshots are replaced by the next one,
        # and a dead backend must not add its whole retry budget to the end of every run.
        self._healthy: bool | None = None
        with_retries = getattr(client, "with_retries", None)
        budget = int(getattr(client, "retries", 1))
        self._clients = {
            n: (with_retries(min(n, budget)) if callable(with_retries) else client) for n in (0, 1)
        }
        self._running_owed = False  # RUNNING failed: repeat it with the next snapshot
        self._running_tried = threading.Event()  # the first RUNNING request has been answered (or failed)
        self._stopped = False  # after auth / job-not-found failures nothing more is sent
        self._logs_stopped = False
        self._last_snapshot = float("-inf")
        self._thread = threading.Thread(target=self._run, name=f"synapse-job-reporter-{self._job_id}", daemon=True)
        self._thread.start()

    # -- producer side (any thread) -----------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> None:
        """Take one event; cheap and non-blocking (a lock held for microseconds), never raises."""
        try:
            kind = event.get("type")
            t = time.monotonic()
            wake = False
            with self._lock:
                if self._end is not None or self._closing:
                    return
                if kind == "progress":
                    self._progress.update(
                        event.get("category"), event.get("current") or 0, event.get("total") or 0,
                        event.get("percent"), t,
                    )
                    wake = not self._dirty
                    self._dirty = True
                elif kind == "metrics":
                    values = event.get("values")
                    if isinstance(values, Mapping) and event.get("category"):
                        self._metrics.update(event["category"], values)
                        wake = not self._dirty
                        self._dirty = True
                elif kind in LOG_EVENT_TYPES:
                    if len(self._logs) >= self._max_pending_logs:
                        self._logs.popleft()
                        self._logs_dropped += 1
                    # The step the entry was logged in, where the event says (real-package mode's
                    # logger always does, null outside steps); else the last progress category.
                    step = event["step"] if "step" in event else self._progress.current_step
                    self._logs.append((event, step))
                    if self._logs_since is None:
                        self._logs_since = t
                        wake = True
                    elif len(self._logs) == self._log_batch_size:
                        wake = True
                elif kind == "start":
                    self._started = t
                    self._running_pending = True
                    wake = True
                elif kind == "result":
                    self._result = event.get("result")
                elif kind == "error":
                    self._error = event
                elif kind == "end":
                    self._end = event
                    wake = True
            if wake:
                self._wake.set()
        except Exception:  # a malformed event must not break the run
            pass

    def wait_running(self, timeout: float = 2.0) -> bool:
        """Wait (at most ``timeout``) until the RUNNING status went out, as upstream's entrypoint sets
        RUNNING before the action starts: an action reading its own job sees it running. True when
        the request was answered or failed within the time; a slow backend only delays the start."""
        return self._running_tried.wait(max(0.0, timeout))

    def set_steps(self, proportions: Mapping[str, float], orders: Mapping[str, int] | None = None) -> None:
        """The run's steps, their proportions and registry order (from upstream's orchestrator, through
        the real-package logger): listed in every progress record from the first on, and ``overall``
        weighted by them. Ignored once progress was recorded, as upstream ignores it; never raises."""
        try:
            with self._lock:
                self._progress.configure(proportions, orders)
        except Exception:  # bad values from a plugin must not break the run
            pass

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is pending (the final status if ``end`` was seen) within ``timeout``; never raises."""
        try:
            with self._lock:
                self._closing = True
                self._deadline = time.monotonic() + max(0.0, timeout)
            self._wake.set()
            self._thread.join(max(0.0, timeout))
            if self._thread.is_alive():
                self._warn_once(
                    "close-timeout",
                    f"reporting job {self._job_id} to the Synapse backend did not finish within {timeout:g} s; "
                    "the platform may not show the final state",
                )
        except Exception:
            pass

    # -- consumer side (the background thread) ------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception as exc:  # never let the reporter die on a bug; say it once
                self._warn_once(f"internal:{type(exc).__name__}", f"job reporting error: {self._redact(str(exc))}")
                time.sleep(0.05)

    def _next_wait(self) -> float | None:
        now = time.monotonic()
        waits = []
        with self._lock:
            if self._dirty:
                waits.append(self._last_snapshot + self._interval - now)
            if self._logs_since is not None:
                waits.append(self._logs_since + self._log_interval - now)
        return max(0.0, min(waits)) if waits else None

    def _step(self) -> bool:
        """One round: wait for something due, send it. Returns True when the reporter is done."""
        self._wake.wait(self._next_wait())
        self._wake.clear()
        now = time.monotonic()
        with self._lock:
            final = self._end is not None or self._closing
            running = self._running_pending
            self._running_pending = False
        if running:
            self._running_owed = not self._patch({"status": "RUNNING"})
            self._running_tried.set()
        if final:
            self._finish()
            return True
        batch = self._take_logs(now, force=False)
        if batch:
            self._send_logs(batch)
        snapshot = None
        with self._lock:
            if self._dirty and now - self._last_snapshot >= self._interval:
                snapshot = self._records()
                self._dirty = False
        if snapshot:
            if self._running_owed:
                snapshot["status"] = "RUNNING"
            ok = self._patch(snapshot)
            if "status" in snapshot and ok:
                self._running_owed = False
            # Counted from the end of the request: a slow backend gets fewer requests, not a queue.
            self._last_snapshot = time.monotonic()
        return False

    def _finish(self) -> None:
        """The last round: every pending log, then the final status with the final records."""
        while self._time_left():
            batch = self._take_logs(time.monotonic(), force=True)
            if not batch:
                break
            self._send_logs(batch)
        with self._lock:
            end, error, result = self._end, self._error, self._result
            payload = self._records() if (self._dirty or end is not None) else {}
            self._dirty = False
            dropped = self._logs_dropped
        if dropped:
            self._warn_once("logs-dropped", f"{dropped} log entries were not sent to the Synapse backend: its "
                            f"buffer of {self._max_pending_logs} was full (the backend was unreachable or slower "
                            "than the run's output); the JSON-lines stream has them all")
        if end is not None:
            status = _FINAL_STATUS.get(str(end.get("status", "")).lower(), "FAILED")
            payload["status"] = status
            if status == "SUCCEEDED":
                if result is not _MISSING and result is not None:
                    payload["result"] = result if isinstance(result, (dict, list)) else {"result": result}
            elif error is not None:
                payload["result"] = {"error": str(error.get("message") or error.get("error_type") or "failed")}
            elif status == "FAILED":
                payload["result"] = {"error": f"the action failed (exit code {end.get('exit_code')})"}
        if payload and self._time_left():
            self._patch(payload, final=True)

    def _records(self) -> dict[str, Any]:
        """The current records (caller holds the lock); only those that ever received data."""
        elapsed = int(time.monotonic() - (self._started if self._started is not None else self._created))
        payload: dict[str, Any] = {}
        if self._progress.touched:
            payload["progress_record"] = self._progress.to_dict(time_elapsed=elapsed)
        if self._metrics.touched:
            payload["metrics_record"] = self._metrics.to_dict()
        return payload

    def _take_logs(self, now: float, *, force: bool) -> list[dict[str, Any]]:
        with self._lock:
            if not self._logs:
                return []
            due = force or len(self._logs) >= self._log_batch_size or (
                self._logs_since is not None and now - self._logs_since >= self._log_interval
            )
            if not due:
                return []
            raw = [self._logs.popleft() for _ in range(min(len(self._logs), self._log_batch_size))]
            self._logs_since = now if self._logs else None
        entries = []
        for event, step in raw:
            entry = log_entry(event, self._job_id, step)
            if entry is not None:
                entries.append(entry)
        return entries

    def _send_logs(self, entries: list[dict[str, Any]]) -> None:
        """Plain entries go in one request; an entry with a file goes alone (its body can be large)."""
        plain: list[dict[str, Any]] = []
        for entry in entries:
            if not entry.get("file"):
                plain.append(entry)
                continue
            if plain:
                self._call("create_logs", plain)
                plain = []
            try:
                entry["file"] = file_data_uri(entry["file"])
            except (OSError, ValueError) as exc:
                entry.pop("file")
                self._warn_once("log-file", f"a log attachment was not sent to the Synapse backend: {self._redact(str(exc))}")
            self._call("create_logs", [entry])
        if plain:
            self._call("create_logs", plain)

    def _patch(self, payload: dict[str, Any], *, final: bool = False) -> bool:
        return self._call("update_job", self._job_id, payload, final=final)

    def _call(self, op: str, *args: Any, final: bool = False) -> bool:
        """One request; True when it succeeded. Failures become (deduplicated) warnings."""
        if self._stopped or (op == "create_logs" and self._logs_stopped) or not self._time_left():
            return False
        if final and self._healthy is not False:
            client = self._client  # the final status is worth the full retry budget
        else:
            client = self._clients[0 if self._healthy is False else 1]
        try:
            getattr(client, op)(*args)
            self._healthy = True
            return True
        except Exception as exc:
            if isinstance(exc, BackendUnavailableError):
                self._healthy = False
            if isinstance(exc, BackendAuthError) or (isinstance(exc, BackendNotFoundError) and op == "update_job"):
                self._stopped = True  # every later request would fail the same way
                tail = "; reporting to the backend stops, the run continues"
            elif isinstance(exc, BackendNotFoundError):
                self._logs_stopped = True  # a backend without logs/: keep reporting status
                tail = "; log upload stops, the run continues"
            else:
                tail = "; the run continues"
            self._warn_once(
                f"{op}:{type(exc).__name__}",
                f"could not report job {self._job_id} to the Synapse backend ({op}): {self._redact(str(exc))}{tail}",
            )
            return False

    def _time_left(self) -> bool:
        deadline = self._deadline
        return deadline is None or time.monotonic() < deadline

    def _redact(self, text: str) -> str:
        redact = getattr(self._client, "redact", None)
        return redact(text) if callable(redact) else text

    def _warn_once(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        try:
            if self._warn_cb is not None:
                self._warn_cb(message)
            else:
                import logging

                logging.getLogger("synapse_runtime.backend").warning(message)
        except Exception:
            pass


__all__ = ["JobReporter"]
