"""How a run meets the backend: ``ctx.client``, and the job reporter fed by the event stream.

The runner asks one question ("is there a backend, and may this run report to it?"); the answer's
rules live here with the rest of the backend: a client needs ``SYNAPSE_HOST`` and a token; job
status is reported only for a job id that was *given* (``SYNAPSE_JOB_ID``/``RAY_JOB_ID``), because
the host-name fallback names no job and would PATCH ``/jobs/<hostname>/``; ``SYNAPSE_REPORT_JOB=0``
turns reporting off. Every warning becomes a ``message`` event with context ``warning``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from synapse_runtime.events import EventWriter, shapes

if TYPE_CHECKING:
    from synapse_runtime.contract.settings import Settings


def connect(settings: "Settings", data: Mapping[str, str], job_id: str, job_id_given: bool, writer: EventWriter,
            plugin: str | None, action: str | None) -> tuple[Any, Any]:
    """(client or None, reporter or None) for this run; the reporter already listens to ``writer``.

    ``settings`` decide (SYNAPSE_HOST, SYNAPSE_REPORT_JOB); the client's credentials come from the
    run's environment ``data``, as upstream's client reads them (``BackendClient.from_env``)."""
    if not settings.host:
        return None, None
    from synapse_runtime.backend.client import BackendClient
    from synapse_runtime.backend.reporter import JobReporter

    client = BackendClient.from_env(data)
    if client is None:
        return None, None

    def warn(message: str) -> None:
        if writer.closed:  # after `end`: stdout is finished, say it on stderr
            print(f"synapse-runtime: backend: {message}", file=sys.stderr, flush=True)
        else:
            writer.emit("message", shapes.message(f"backend: {message}", "warning"))

    if not settings.report_job:
        return client, None
    if not job_id_given:
        warn(f"job status is not reported: no job id was given (SYNAPSE_JOB_ID or RAY_JOB_ID), "
             f"and the host name {job_id!r} names no job; ctx.client works as usual")
        return client, None
    reporter = JobReporter(client, job_id, warn=warn)
    writer.listeners.append(reporter.handle)
    # The reporter joined after `start`: tell it the run is underway.
    reporter.handle({"type": "start", "job_id": job_id, "plugin": plugin, "action": action})
    reporter.wait_running()  # RUNNING before the action starts, as upstream's entrypoint (bounded)
    return client, reporter


__all__ = ["connect"]
