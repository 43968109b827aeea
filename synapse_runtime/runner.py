"""One run, start to end: the only place that knows the order of things.

inputs → plugin and action → ``start`` → output dir → params model → checkpoint → context →
action → result → ``result.json`` → output upload → ``end``.  Every failure on the way becomes an
``error`` event, a ``result.json`` and an exit code from the table in ``errors.py``; SIGTERM and
SIGINT become a ``cancelled`` end, after step rollbacks and ``finally`` blocks have run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .errors import Cancelled, ExitCode, PluginError, ValidationError, exit_code_for
from .events import EventWriter, Redactor, secret_values
from .inputs import (
    Environment,
    collect_env,
    resolve_action_ref,
    resolve_checkpoint,
    resolve_job_id,
    resolve_output_dir,
    resolve_params,
    resolve_plugin_dir,
)
from .jsonable import to_jsonable


class RunOptions:
    """What the CLI (or a test) asks for; everything else comes from the environment.

    A plain class rather than a dataclass: generating dataclass code costs milliseconds at import,
    and start-up is part of every container's run.
    """

    def __init__(
        self,
        plugin: str | None = None,
        action: str | None = None,
        params: str | None = None,
        output: str | None = None,
        checkpoint: str | None = None,
        pretty: bool = False,
        color: bool = False,
        capture: bool = True,
        environ: Mapping[str, str] | None = None,
        events_fd: int = 1,
        reap_children: bool = False,
        held_signals: list[int] | None = None,
    ) -> None:
        self.plugin, self.action, self.params, self.output, self.checkpoint = plugin, action, params, output, checkpoint
        self.pretty, self.color, self.capture, self.environ, self.events_fd = pretty, color, capture, environ, events_fd
        # The CLI owns its process: it adopts and stops what the plugin leaves running (children.py).
        # In-process runs (tests, run_plugin) leave the host process's children alone.
        self.reap_children = reap_children
        # Signals caught before this run's handlers existed (cli.entrypoint holds them during imports);
        # the list is shared, so one arriving until the handlers are installed is seen too.
        self.held_signals = held_signals


class _State:
    """What the run has learned so far; written by the runner only."""

    def __init__(self) -> None:
        self.plugin: str | None = None
        self.action: str | None = None
        self.started_at = ""
        self.t0 = 0.0
        self.output_dir: Path | None = None
        self.status = "failed"
        self.exit_code = int(ExitCode.FAILED)
        self.result: Any = None
        self.error: dict[str, Any] | None = None
        self.finalizing = False
        self.cancelled_by: int | None = None
        self.start_emitted = False
        self.extra_signals: list[int] = []
        self.shard: dict[str, Any] | None = None


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _result_value(value: Any) -> Any:
    """Upstream's result rules: dicts as they are, models dumped, anything else wrapped."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if not isinstance(value, dict):
        value = {"result": value}
    return to_jsonable(value)


def _error_fields(exc: BaseException, redact: Redactor) -> dict[str, Any]:
    code = int(exit_code_for(exc))
    if isinstance(exc, Cancelled):
        name = "SIGINT" if exc.signum == signal.SIGINT else "SIGTERM"
        return {"code": code, "error_type": "Cancelled", "message": f"run cancelled by {name}", "details": {"signal": name}}
    if isinstance(exc, PluginError):
        fields = {"code": code, "error_type": exc.error_type, "message": exc.message or exc.error_type,
                  "details": to_jsonable(exc.details), "hint": exc.hint}
        cause = getattr(exc, "cause", None) or exc.__cause__
        if cause is not None and not isinstance(cause, PluginError):
            fields["traceback"] = redact("".join(traceback.format_exception(cause)))
        return fields
    # User code raised: the message says what, the traceback says where.
    cause = getattr(exc, "cause", None)
    where = _user_frame(cause if cause is not None else exc)
    location = f"{where.filename}:{where.lineno} in {where.name}" if where else None
    return {
        "code": code,
        "error_type": type(exc).__name__,
        "message": _message(exc),
        "details": {"location": location},
        "hint": None,
        "traceback": redact("".join(traceback.format_exception(exc))),
    }


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
    from .steps import StepFailedError

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


def _execute(resolved: Any, params: Any, ctx: Any) -> Any:
    from .base_action import validate_result

    target = resolved.target
    if isinstance(target, type):
        instance = target(params, ctx)
        runner = getattr(instance, "run", None) or instance.execute
        return validate_result(getattr(target, "result_model", None), runner())
    return validate_result(getattr(target, "result_model", None), target(params, ctx))


class Run:
    """A single run; ``Run(options).execute()`` returns the exit code."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.state = _State()
        self.writer: EventWriter | None = None
        self.reporter: Any = None

    # -- signals ----------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        st = self.state
        if st.finalizing or st.cancelled_by is not None:
            st.extra_signals.append(signum)  # rollback or final writes in progress: let them finish
            return
        st.cancelled_by = signum
        from .steps import defer_cancellation

        if defer_cancellation(signum):
            return  # a step rollback is running: it finishes, then raises Cancelled
        writer = self.writer
        if writer is not None and writer.writing_in_this_thread():
            # Mid-write: raise right after the line is out, so the stream stays whole.
            writer.defer(lambda: self._raise_cancelled(signum))
            return
        raise Cancelled(signum)

    def _raise_cancelled(self, signum: int) -> None:
        if not self.state.finalizing:
            raise Cancelled(signum)

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    # -- the run ----------------------------------------------------------------------------------

    def execute(self) -> int:
        opts = self.options
        st = self.state
        st.t0 = time.monotonic()
        st.started_at = _now()
        environ = dict(os.environ if opts.environ is None else opts.environ)
        env_error: BaseException | None = None
        try:
            env = collect_env(environ)
        except PluginError as e:
            env_error = e
            env = Environment(data=environ, secrets=secret_values(environ))
        job_id = resolve_job_id(env.data).value
        redactor = Redactor(env.secrets)

        capture = None
        events_fd = opts.events_fd
        if opts.capture:
            from .events.capture import OutputCapture

            capture = OutputCapture()
            events_fd = capture.start()
        renderer = None
        if opts.pretty:
            from .events.pretty import PrettyRenderer

            renderer = PrettyRenderer(color=opts.color)
        interval = float(env.data.get("SYNAPSE_PROGRESS_INTERVAL") or 0.2)
        writer = self.writer = EventWriter(
            events_fd, job_id=job_id, redactor=redactor, progress_interval=interval, renderer=renderer
        )
        if capture is not None:
            capture.set_emit(writer.emit)
        previous_handlers = self._install_signals()
        if opts.reap_children:
            from .children import become_subreaper

            become_subreaper()
        try:
            try:
                if env_error is not None:
                    raise env_error
                # Env files and Secret dirs reach boto3 and subprocesses the same way as real env.
                os.environ.update(env.overlay)
                self._run(env, job_id)
            except BaseException as exc:  # noqa: BLE001 - every failure ends as an event
                st.finalizing = True
                if st.output_dir is None:  # an env file error: result.json still goes where it was asked
                    self._output_dir_quietly(env)
                if not st.start_emitted:
                    self._emit_start(env)
                self._fail(exc, redactor)
        finally:
            st.finalizing = True
            if opts.reap_children:
                self._stop_leftover_processes()
            if capture is not None:
                capture.stop()
            self._finish(redactor, job_id)
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            if capture is not None:
                try:
                    os.close(events_fd)
                except OSError:
                    pass
        return st.exit_code

    def _output_dir_quietly(self, env: Environment) -> None:
        from .outputs import prepare_output_dir

        try:
            self.state.output_dir = prepare_output_dir(resolve_output_dir(self.options.output, env.data).value)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass

    def _stop_leftover_processes(self) -> None:
        from .children import terminate_descendants

        stopped = terminate_descendants(grace=float(os.environ.get("SYNAPSE_CHILD_GRACE") or 2.0))
        if stopped and self.writer is not None:
            self.writer.emit("message", {
                "message": f"stopped {len(stopped)} process(es) the action left running (pids {', '.join(map(str, stopped))})",
                "context": "warning",
            })

    def _emit_start(self, env: Environment) -> None:
        from .gpu import detect_gpus

        report = detect_gpus(env.data)
        assert self.writer is not None
        self.state.start_emitted = True
        self.writer.emit("start", {
            "plugin": self.state.plugin,
            "action": self.state.action,
            "runtime_version": __version__,
            "python": sys.version.split()[0],
            "gpus": report.gpus,
            "device": report.device,
            "device_note": report.note,
        })

    def _run(self, env: Environment, job_id: str) -> None:
        from .plugin import load_plugin, resolve_action

        opts, st, writer = self.options, self.state, self.writer
        assert writer is not None
        data = env.data

        from .outputs import prepare_output_dir

        # The output directory first: every later failure (not-found plugin included) is then
        # reported in result.json too, where job controllers look for it.
        st.output_dir = prepare_output_dir(resolve_output_dir(opts.output, data).value)
        if opts.held_signals:  # cancelled while the runtime was still importing: now it can say so
            self._on_signal(opts.held_signals[0], None)
        plugin_dir = resolve_plugin_dir(opts.plugin, data).value
        name, entrypoint, _ = resolve_action_ref(opts.action, data)
        st.action = name or entrypoint
        try:
            plugin = load_plugin(plugin_dir, require_config=not entrypoint)
        except PluginError:
            st.plugin = plugin_dir.name or str(plugin_dir)
            raise
        st.plugin = plugin.config.identifier
        for key, value in plugin.config.env.items():  # config.yaml's env: defaults, lowest precedence
            if key not in data:
                data[key] = str(value)
                os.environ.setdefault(key, str(value))
        if name is None and entrypoint is None and len(plugin.config.actions) == 1:
            st.action = next(iter(plugin.config.actions))
        self._emit_start(env)
        resolved = resolve_action(plugin, name, entrypoint)
        st.action = resolved.name

        spec = None
        if any(data.get(k) for k in ("SYNAPSE_SHARD_COUNT", "SYNAPSE_SHARD_INDEX", "JOB_COMPLETION_INDEX")):
            from .sharding import apply_shard, shard_from_env

            spec = shard_from_env(data)
            if spec is not None:
                # Each shard owns its directory, so shards sharing one volume never clash, and a
                # shard's own failure is reported there, where `merge` looks for it.
                st.output_dir = prepare_output_dir(st.output_dir / spec.name)
                st.shard = {"index": spec.index, "count": spec.count}
        raw_params = resolve_params(opts.params, data).value
        shard_info = None
        if spec is not None:
            raw_params, shard_info = apply_shard(raw_params, spec, data.get("SYNAPSE_SHARD_KEY") or "inputs")
            st.shard = shard_info
        data["SYNAPSE_OUTPUT_DIR"] = str(st.output_dir)

        params = raw_params
        if resolved.params_model is not None:
            from .base_action import validate_params

            params = validate_params(resolved.params_model, raw_params)

        checkpoint = self._fetch_checkpoint(data)
        client = self._backend(data, job_id)

        from .context import RuntimeContext
        from .env import PluginEnvironment
        from .loggers import EventLogger

        ctx = RuntimeContext(
            logger=EventLogger(writer),
            env=PluginEnvironment(data),
            job_id=job_id,
            client=client,
            checkpoint=checkpoint,
            language=data.get("SYNAPSE_LANGUAGE"),
            output_dir=st.output_dir,
        )
        value = _execute(resolved, params, ctx)
        st.finalizing = True
        st.result = _result_value(value)
        if shard_info is not None:
            st.result["shard"] = shard_info
        writer.flush_progress()
        writer.emit("result", {"result": st.result})
        st.status, st.exit_code = "succeeded", int(ExitCode.SUCCEEDED)

    def _fetch_checkpoint(self, data: Mapping[str, str]) -> dict[str, Any] | None:
        uri, category = resolve_checkpoint(self.options.checkpoint, data)
        if not uri:
            return None
        from .storage import fetch

        writer = self.writer
        assert writer is not None

        def progress(u: str, done: int, total: int | None, cached: bool, via: str | None = None) -> None:
            fields: dict[str, Any] = {"uri": u, "bytes": done, "total": total, "cached": cached}
            if via is not None:  # which path served: a fallback from the fast path to boto3 shows
                fields["via"] = via
            writer.emit("download", fields)

        extract = (data.get("SYNAPSE_CHECKPOINT_EXTRACT") or "").lower() in ("1", "true", "yes")
        result = fetch(uri, extract=extract, sha256=data.get("SYNAPSE_CHECKPOINT_SHA256") or None, progress=progress)
        return {"category": category, "path": str(result.path), "uri": uri}

    def _backend(self, data: Mapping[str, str], job_id: str) -> Any:
        if not data.get("SYNAPSE_HOST"):
            return None
        from .backend import BackendClient, JobReporter

        client = BackendClient.from_env(data)
        if client is None:
            return None
        writer = self.writer
        assert writer is not None

        def warn(message: str) -> None:
            if writer.closed:  # after `end`: stdout is finished, say it on stderr
                print(f"synapse-runtime: backend: {message}", file=sys.stderr, flush=True)
            else:
                writer.emit("message", {"message": f"backend: {message}", "context": "warning"})

        if data.get("SYNAPSE_REPORT_JOB", "1").lower() not in ("0", "false", "no"):
            self.reporter = JobReporter(client, job_id, warn=warn)
            writer.listeners.append(self.reporter.handle)
            # The reporter joined after `start`: tell it the run is underway.
            self.reporter.handle({"type": "start", "job_id": job_id, "plugin": self.state.plugin, "action": self.state.action})
        return client

    # -- failure and the end -----------------------------------------------------------------------

    def _fail(self, exc: BaseException, redactor: Redactor) -> None:
        st, writer = self.state, self.writer
        assert writer is not None
        fields = _error_fields(exc, redactor)
        if not fields.get("hint") and st.output_dir is not None and _no_space(exc):
            # "[Errno 28] No space left on device" from a write names no file: say where the
            # action's output goes and how full it is (the usual culprit of a full disk).
            free = _free_bytes(st.output_dir)
            fields["details"] = {**(fields.get("details") or {}), "output_dir": str(st.output_dir),
                                 "output_free_bytes": free}
            fields["hint"] = (f"a filesystem is full; the output directory {st.output_dir} has "
                              f"{'?' if free is None else free} bytes free: free space there or mount a larger volume")
        st.exit_code = fields["code"]
        st.status = "cancelled" if isinstance(exc, Cancelled) else "failed"
        st.error = {"error_type": fields["error_type"], "message": fields["message"], "details": fields["details"]}
        writer.flush_progress()
        writer.emit("error", fields)

    def _finish(self, redactor: Redactor, job_id: str) -> None:
        st, writer = self.state, self.writer
        assert writer is not None
        duration = round(time.monotonic() - st.t0, 3)
        record = {
            "status": st.status,
            "result": st.result,
            "error": st.error,
            "job_id": job_id,
            "plugin": st.plugin,
            "action": st.action,
            "started_at": st.started_at,
            "finished_at": _now(),
            "duration_s": duration,
            "exit_code": st.exit_code,
        }
        if st.shard is not None:
            record["shard"] = st.shard
        if st.output_dir is not None:
            record = self._write_outputs(record, redactor)
        from .outputs import write_termination_log

        write_termination_log(record, redactor)
        writer.close("end", {"status": record["status"], "exit_code": record["exit_code"],
                             "duration_s": round(time.monotonic() - st.t0, 3)})
        if self.reporter is not None:
            self.reporter.close()

    def _write_outputs(self, record: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
        from .outputs import write_result

        st, writer = self.state, self.writer
        assert writer is not None and st.output_dir is not None
        try:
            write_result(st.output_dir, record, redactor)
        except OSError as e:
            err = {"error_type": "StorageError", "message": f"cannot write {st.output_dir}/result.json: {e.strerror or e}",
                   "details": {"output_dir": str(st.output_dir)}}
            writer.emit("error", {"code": int(ExitCode.STORAGE), **err, "hint": "check free space and permissions of the output volume"})
            if st.status == "succeeded":
                st.status, st.exit_code = "failed", int(ExitCode.STORAGE)
                record.update(status="failed", exit_code=st.exit_code, error=err)
            return record
        uri = os.environ.get("SYNAPSE_OUTPUT_URI")
        if uri:
            try:
                from .storage import upload_dir

                def progress(u: str, done: int, total: int | None, cached: bool) -> None:
                    writer.emit("download", {"uri": u, "bytes": done, "total": total, "cached": False, "direction": "upload"})

                upload_dir(st.output_dir, uri, progress=progress)
            except PluginError as e:
                fields = _error_fields(e, redactor)
                writer.emit("error", fields)
                if st.status == "succeeded":
                    st.status, st.exit_code = "failed", fields["code"]
                    record.update(status="failed", exit_code=st.exit_code,
                                  error={k: fields[k] for k in ("error_type", "message", "details")})
                    write_result(st.output_dir, record, redactor)
        return record


def run(options: RunOptions | None = None, **kwargs: Any) -> int:
    """Run one action per the contract; returns the exit code (the CLI exits with it)."""
    return Run(options or RunOptions(**kwargs)).execute()


__all__ = ["RunOptions", "Run", "run", "ValidationError"]
