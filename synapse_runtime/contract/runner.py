"""One run, start to end: the only place that knows the order of things.

inputs → plugin and action → ``start`` → output dir → params model → checkpoint → context →
action → result → ``result.json`` → output upload → ``end``.  Every failure on the way becomes an
``error`` event, a ``result.json`` and an exit code from the table in ``errors.py``; SIGTERM and
SIGINT become a ``cancelled`` end, after step rollbacks and ``finally`` blocks have run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import Cancelled, ExitCode, PluginError, ValidationError
from ..events import EventWriter, Redactor, secret_values, shapes
from .cancellation import SignalCanceller
from .failures import error_fields
from .inputs import (
    Environment,
    add_plugin_env,
    collect_env,
    resolve_action_ref,
    resolve_checkpoint,
    resolve_job_id,
    resolve_output_dir,
    resolve_params,
    resolve_plugin_dir,
)
from .settings import Settings, build


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


class Run:
    """A single run; ``Run(options).execute()`` returns the exit code."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.state = _State()
        self.writer: EventWriter | None = None
        self.reporter: Any = None
        self.env_data: Mapping[str, str] = {}
        # Every knob, typed: built from the environment and env files before anything runs, and
        # again (final) once config.yaml's env: is known; handed down to every stage.
        self.settings: Settings = build({})
        self.settings_valid = True  # False: a bad knob is the run's error, and its values count as unset
        self._on_signal = SignalCanceller(self.state, lambda: self.writer)

    # -- the run ----------------------------------------------------------------------------------

    def execute(self) -> int:
        opts = self.options
        st = self.state
        st.t0 = time.monotonic()
        st.started_at = shapes.timestamp()
        environ = dict(os.environ if opts.environ is None else opts.environ)
        env_error: BaseException | None = None
        try:
            env = collect_env(environ)
        except PluginError as e:
            env_error = e
            env = Environment(data=environ, secrets=secret_values(environ))
        try:
            # Every SYNAPSE_* knob, before anything runs: a bad value is exit 2 with an error
            # event naming it, not a crash halfway (or after the action) with no `end`.
            self.settings = build(env.data)
        except ValidationError as e:
            env_error = env_error or e
            self.settings = build(env.data, strict=False)  # the run still ends: bad values as unset
            self.settings_valid = False
        self.env_data = env.data
        job = resolve_job_id(env.data)
        job_id = job.value
        redactor = Redactor(env.secrets)

        capture = None
        events_fd = opts.events_fd
        if opts.capture:
            from ..events.capture import OutputCapture

            capture = OutputCapture()
            events_fd = capture.start()
        renderer = None
        if opts.pretty:
            from ..events.pretty import PrettyRenderer

            renderer = PrettyRenderer(color=opts.color)
        writer = self.writer = EventWriter(
            events_fd, job_id=job_id, redactor=redactor, progress_interval=self.settings.progress_interval,
            renderer=renderer,
        )
        if capture is not None:
            capture.set_emit(writer.emit)
        previous_handlers = self._on_signal.install()
        if opts.reap_children:
            from .children import become_subreaper

            become_subreaper()
        try:
            try:
                if env_error is not None:
                    raise env_error
                # Env files and Secret dirs reach boto3 and subprocesses the same way as real env.
                os.environ.update(env.overlay)
                self._run(env, job)
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
            try:
                self._finish(redactor, job_id)
            finally:  # never leave our handler behind, even when the end itself fails
                self._on_signal.restore(previous_handlers)
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

        stopped = terminate_descendants(grace=self.settings.child_grace)
        if stopped and self.writer is not None:
            self.writer.emit("message", shapes.message(
                f"stopped {len(stopped)} process(es) the action left running (pids {', '.join(map(str, stopped))})",
                "warning"))

    def _emit_start(self, env: Environment) -> None:
        from .gpu import detect_gpus

        report = detect_gpus(env.data, probe=self.settings.gpu_probe)
        assert self.writer is not None
        self.state.start_emitted = True
        self.writer.emit("start", shapes.start(self.state.plugin, self.state.action, __version__, sys.version.split()[0],
                                               report.gpus, device=report.device, device_note=report.note))

    def _run(self, env: Environment, job: Any) -> None:
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
        add_plugin_env(data, plugin.config.env, export=True)  # config.yaml's env:, lowest precedence
        try:  # config.yaml's env: may set knobs too: the run's final settings
            self.settings = build(data)
        except ValidationError:
            self.settings = build(data, strict=False)
            self.settings_valid = False
            raise
        if name is None and entrypoint is None and len(plugin.config.actions) == 1:
            st.action = next(iter(plugin.config.actions))
        self._emit_start(env)
        resolved = resolve_action(plugin, name, entrypoint)
        st.action = resolved.name

        spec = None
        if any(data.get(k) for k in ("SYNAPSE_SHARD_COUNT", "SYNAPSE_SHARD_INDEX", "JOB_COMPLETION_INDEX")):
            from .sharding import enter_shard_dir, shard_from_env, split_for_shard

            spec = shard_from_env(data)
            if spec is not None:
                # Each shard owns its directory, so shards sharing one volume never clash, and a
                # shard's own failure is reported there, where `merge` looks for it. An earlier
                # run's files there are removed first: the merge must never see them as this run's.
                st.output_dir = prepare_output_dir(st.output_dir / spec.name)
                st.shard = enter_shard_dir(st.output_dir, spec, self.settings)
        raw_params = resolve_params(opts.params, data).value
        shard_info = None
        if spec is not None:
            raw_params, shard_info = split_for_shard(raw_params, spec, self.settings)
            st.shard = shard_info
        data["SYNAPSE_OUTPUT_DIR"] = str(st.output_dir)

        # Our classes or upstream's (real synapse-sdk installed): drivers.py picks the driver.
        from .drivers import driver_for

        driver = driver_for(resolved)
        params = driver.validate(raw_params)

        checkpoint = self._fetch_checkpoint(data)
        job_id = job.value
        from ..backend.wiring import connect

        given = job.source != "hostname"  # the host-name fallback names no job: never sent upstream's way
        client, self.reporter = connect(self.settings, data, job_id, given, writer, st.plugin, st.action)
        ctx = driver.context(writer=writer, data=data, job_id=job_id, client=client, checkpoint=checkpoint,
                             output_dir=st.output_dir, job_id_given=given, reporter=self.reporter)
        from .workdir import action_workdir

        with action_workdir(plugin.root, data):  # writable, showing the plugin's files (docs/contract.md)
            value = driver.execute(params, ctx)
        st.finalizing = True
        from .outputs import emit_result, result_value

        st.result = result_value(value)
        if shard_info is not None:
            st.result["shard"] = shard_info
        writer.flush_progress()
        emit_result(writer, st.result, st.output_dir, self.reporter)  # one short line; the whole in result.json
        st.status, st.exit_code = "succeeded", int(ExitCode.SUCCEEDED)

    def _fetch_checkpoint(self, data: Mapping[str, str]) -> dict[str, Any] | None:
        uri, category = resolve_checkpoint(self.options.checkpoint, data)
        if not uri:
            return None
        from ..storage import fetch

        writer = self.writer
        assert writer is not None

        def progress(u: str, done: int, total: int | None, cached: bool, via: str | None = None) -> None:
            writer.emit("download", shapes.download(u, done, total, cached, via))

        settings = self.settings
        result = fetch(uri, extract=settings.checkpoint_extract, sha256=settings.checkpoint_sha256, progress=progress,
                       settings=settings)
        return {"category": category, "path": os.path.abspath(result.path), "uri": uri}  # the action runs elsewhere

    # -- failure and the end -----------------------------------------------------------------------

    def _fail(self, exc: BaseException, redactor: Redactor) -> None:
        st, writer = self.state, self.writer
        assert writer is not None
        fields = error_fields(exc, redactor, st.output_dir)
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
            "finished_at": shapes.timestamp(),
            "duration_s": duration,
            "exit_code": st.exit_code,
        }
        if st.shard is not None:
            record["shard"] = st.shard
        from .outputs import deliver, write_termination_log

        if st.output_dir is not None:
            record = deliver(record, st.output_dir, writer, redactor, self.settings, cancelled=st.status == "cancelled",
                             upload=self.settings_valid)
            st.status, st.exit_code = record["status"], record["exit_code"]

        write_termination_log(record, redactor, self.settings.termination_log)
        if self.reporter is not None:
            # The final status goes out before `end`, so a backend outage is a warning event on
            # stdout (where a job controller reads), not a line on stderr after the stream ended.
            self.reporter.handle({"type": "end", "status": record["status"], "exit_code": record["exit_code"]})
            self.reporter.close()
        writer.close("end", shapes.end(record["status"], record["exit_code"], round(time.monotonic() - st.t0, 3)))


def run(options: RunOptions | None = None, **kwargs: Any) -> int:
    """Run one action per the contract; returns the exit code (the CLI exits with it)."""
    return Run(options or RunOptions(**kwargs)).execute()


__all__ = ["RunOptions", "Run", "run", "ValidationError"]
