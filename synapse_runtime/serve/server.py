"""``synapse-runtime serve``: load the plugin, start uvicorn, serve until SIGTERM, drain, exit.

The order, and why: the events writer and the output capture first (every later failure is an
``error`` event); knobs and serve_options checked (exit 2); the plugin and the action resolved and
checked to be servable (exit 3); the socket bound and the ``start`` event written with the address
and routes, so probes get 503 (not a refused connection) while the deployment is constructed and a
default model (``SYNAPSE_CHECKPOINT``) loads (its storage failure: exit 4); then ready. On SIGTERM
(or SIGINT) readiness goes off at once, the listener closes, in-flight requests get
``SYNAPSE_SERVE_DRAIN`` seconds; exit 0 when they all finished, 143 (130) when the drain was cut short
or a second signal came. The ``end`` event is always the last line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..errors import ExitCode, PluginError, StorageError, ValidationError
from ..contract import signals
from ..events import EventWriter, secret_values, shapes
from .asgi import ServeApp
from .metrics import Metrics
from .redact import ServeRedactor

#: Error events per error type and metrics interval (the rest are counted in the metrics only).
ERRORS_PER_INTERVAL = 5
#: Seconds uvicorn gives connections after our drain (the drain itself waited for the requests).
_UVICORN_GRACE = 1.0
#: Output lines (the plugin's prints) per metrics interval; upstream's get_model prints one per request.
OUTPUT_PER_INTERVAL = 50


@dataclass
class ServeArgs:
    plugin: str | None = None
    action: str | None = None
    host: str | None = None
    port: int | None = None
    held_signals: list[int] | None = None  # SIGTERM/SIGINT received before our handlers were installed


class _Throttle:
    """Per-key counts per interval: ``allow`` says whether this occurrence is written, ``reset`` returns the dropped."""

    def __init__(self, limit: int) -> None:
        self.limit, self.counts, self.dropped = limit, {}, 0  # type: ignore[var-annotated]

    def allow(self, key: str) -> bool:
        n = self.counts.get(key, 0) + 1
        self.counts[key] = n
        if n > self.limit:
            self.dropped += 1
        return n <= self.limit

    def reset(self) -> int:
        dropped, self.dropped, self.counts = self.dropped, 0, {}
        return dropped


class Server:
    def __init__(self, args: ServeArgs) -> None:
        self.args = args
        self.data = dict(os.environ)
        self.metrics = Metrics()
        self.redactor = ServeRedactor(secret_values(self.data))
        self.writer: EventWriter | None = None
        self.errors = _Throttle(ERRORS_PER_INTERVAL)
        self.outputs = _Throttle(OUTPUT_PER_INTERVAL)
        self.t0 = time.monotonic()
        self.app: ServeApp | None = None
        self.signals: list[int] = []
        self.drain_s = 30.0
        self.started = False
        self.plugin: str | None = None
        self._drainer: Any = None

    # -- events -----------------------------------------------------------------------------------

    def emit(self, type: str, fields: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.emit(type, fields)

    def _captured(self, type: str, fields: dict[str, Any]) -> None:
        if type != "output" or self.outputs.allow("output"):
            self.emit(type, fields)

    def on_error(self, exc: BaseException, status: int, error_type: str, message: str) -> None:
        if status < 500 or not self.errors.allow(error_type):
            return
        self.emit("error", shapes.error(ExitCode.FAILED, error_type, self.redactor(message), {"status": status},
                                        traceback=self.redactor("".join(traceback.format_exception(exc)))))

    def on_progress(self, uri: str, done: int, total: int | None, cached: bool, via: str | None = None) -> None:
        self.emit("download", shapes.download(uri, done, total, cached, via))

    def on_load(self, ref: Any, seconds: float, error: BaseException | None) -> None:
        if error is None:
            self.metrics.model_loads += 1
            self.emit("message", shapes.message(f"model {ref.model_id} loaded in {seconds:.3f} s", "info"))
        else:
            self.metrics.model_load_failures += 1
            if self.app is None or not self.app.state.ready:
                return  # the default model at start: its failure is the run's own error event (exit 4 or 1)
            if not self.errors.allow(getattr(error, "error_type", "ModelLoadFailed")):
                return
            status = getattr(error, "status", 502)
            self.emit("error", shapes.error(ExitCode.FAILED, getattr(error, "error_type", "ModelLoadFailed"),
                                            self.redactor(str(error)), {"status": status, "model": ref.model_id}))

    def on_batch(self, size: int) -> None:
        self.metrics.batches += 1
        self.metrics.batched_items += size

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> int:
        from ..events.capture import OutputCapture

        capture = OutputCapture(self._captured)
        events_fd = capture.start()
        from ..contract.inputs import resolve_job_id

        self.writer = EventWriter(events_fd, job_id=resolve_job_id(self.data).value, redactor=self.redactor)
        from .stdout import LineEmitter

        real_stdout = sys.stdout  # prints become events in-process, throttled before any write (stdout.py)
        emitter = sys.stdout = LineEmitter("stdout", self._captured, real_stdout)
        code, status = int(ExitCode.FAILED), "failed"
        try:
            code = asyncio.run(self._main())
            status = "succeeded" if code == 0 else "cancelled" if code >= 128 else "failed"
        except PluginError as exc:
            self._fail(exc)
            code = int(exc.exit_code)
        except Exception as exc:  # the plugin's constructor or loader raised
            self._fail(exc)
        finally:
            sys.stdout = real_stdout
            emitter.close()
            capture.stop()
            self.writer.close("end", shapes.end(status, code, round(time.monotonic() - self.t0, 3)))
            try:
                os.close(events_fd)
            except OSError:
                pass
        return code

    def _fail(self, exc: BaseException) -> None:
        from ..contract.failures import error_fields

        if not self.started:  # the contract: `start` first, also when what it names could not be loaded
            self.emit("start", shapes.start(self.plugin, self.args.action or self.data.get("SYNAPSE_ACTION"),
                                            __version__, sys.version.split()[0], []))
        self.emit("error", error_fields(exc, self.redactor))

    async def _main(self) -> int:
        from ..contract.settings import build as build_settings
        from ..contract.plugin import load_plugin, resolve_action
        from .context import install_ray_hook
        from .host import host_deployment, host_seed, kind_of
        from .options import resolve

        from ..contract.inputs import add_plugin_env, collect_env, resolve_plugin_dir

        env = collect_env(self.data)  # env files and ConfigMap/Secret directories, as a run reads them
        self.redactor.add(env.secrets)
        self.data = data = dict(env.data)
        build_settings(data)  # a bad knob is exit 2 before the plugin is loaded
        plugin = load_plugin(resolve_plugin_dir(self.args.plugin, data).value)
        self.plugin = plugin.config.identifier
        add_plugin_env(data, plugin.config.env, export=True)  # config.yaml's env:, lowest precedence
        settings = build_settings(data)  # final, with config.yaml's env: below the environment (settings.py)
        name = self.args.action or data.get("SYNAPSE_ACTION") or _only_serving_action(plugin)
        resolved = resolve_action(plugin, name)
        kind = kind_of(resolved.target, resolved.entrypoint)
        cfg = plugin.config
        serve_options = {**(cfg.actions["deployment"].serve_options if "deployment" in cfg.actions else {}),
                         **(resolved.config.serve_options if resolved.config else {})}
        opts = resolve(serve_options, data, code=cfg.code or cfg.name, version=cfg.version,
                       host=self.args.host, port=self.args.port, settings=settings)
        app_name = f"{cfg.code or cfg.name}@{cfg.version}"
        self.app = app = ServeApp(prefix=opts.prefix, app_name=app_name, max_ongoing=opts.max_ongoing,
                                  max_body=opts.max_body, metrics=self.metrics, on_error=self.on_error)
        sock = _bind(opts.host, opts.port)
        address = sock.getsockname()
        from ..contract.gpu import detect_gpus

        gpu = detect_gpus(data, probe=settings.gpu_probe)
        self.started = True
        self.emit("start", shapes.start(cfg.identifier, resolved.name, __version__, sys.version.split()[0], gpu.gpus,
                                        device=gpu.device, address=f"http://{_host_text(address[0])}:{address[1]}",
                                        routes={opts.prefix or "/": app_name}, serve_kind=kind,
                                        serve_options_ignored=list(opts.ignored)))
        self.drain_s = opts.drain_s
        server = _uvicorn_server(app)
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        loop = asyncio.get_running_loop()
        signals.on_loop(loop, self._on_signal, server)  # signals.py owns the handlers; the drain is ours
        for sig in list(self.args.held_signals or []):
            self._on_signal(sig, server)
        reporter = asyncio.ensure_future(self._report(opts.metrics_interval))
        try:
            ray = install_ray_hook()
            common = dict(title=app_name, capacity=opts.max_models, default_uri=settings.checkpoint,
                          progress=self.on_progress, on_load=self.on_load, batch=opts.batch, on_batch=self.on_batch)
            if kind == "deployment":
                hosted = host_deployment(resolved.target, data=data, **common)  # type: ignore[arg-type]
            else:
                hosted = host_seed(resolved, data=data, writer=self.writer, **common)  # type: ignore[arg-type]
            app.inner = hosted.app
            self._install_error_handlers(hosted.app)
            if hosted.default is not None:
                hosted.store.pinned.add(hosted.default.key)
                try:
                    await hosted.store.get(hosted.default)
                except Exception as exc:
                    raise _default_model_error(exc) from exc
            app.state.ready = not app.state.draining
            self.emit("message", shapes.message(f"ready: serving {resolved.name} ({kind}, ray: {ray}) at "
                                                f"{opts.prefix or '/'}", "success"))
        except BaseException:
            server.should_exit = True
            await serving
            reporter.cancel()
            raise
        await serving
        reporter.cancel()
        self._write_interval()
        self.emit("metrics", shapes.metrics("serve_totals", self.metrics.totals()))
        if app.state.cut_short or server.force_exit:
            return 128 + (self.signals[0] if self.signals else signal.SIGTERM)
        return 0

    def _install_error_handlers(self, inner: Any) -> None:
        from fastapi.responses import JSONResponse

        from .asgi import BodyTooLarge
        from .models import ServeRequestError

        assert self.app is not None
        outer = self.app

        async def handler(request: Any, exc: Exception) -> Any:
            status, body = outer.error_response(exc)
            return JSONResponse(body, status_code=status)

        async def too_large(request: Any, exc: Any) -> Any:
            return JSONResponse({"detail": exc.detail, "error_type": "BodyTooLarge"}, status_code=413,
                                headers={"connection": "close"})

        inner.add_exception_handler(ServeRequestError, handler)
        inner.add_exception_handler(BodyTooLarge, too_large)
        inner.add_exception_handler(Exception, handler)

    def _on_signal(self, sig: int, server: Any) -> None:
        if self.signals and sig == signal.SIGTERM:
            return  # a repeated SIGTERM (a forwarding parent, a second kill) changes nothing: the drain goes on
        self.signals.append(sig)
        if self.app is not None:
            self.app.state.draining = True
            self.app.state.ready = False
        if len(self.signals) > 1:
            server.force_exit = True  # SIGINT during the drain (Ctrl-C twice): stop now
            return
        self.emit("message", shapes.message(f"{signal.Signals(sig).name}: draining {self.metrics.in_flight} "
                                            "in-flight request(s)", "warning"))
        self._drainer = asyncio.ensure_future(self._drain(server))

    async def _drain(self, server: Any) -> None:
        """Readiness is already off and new requests get 503; wait for the in-flight ones, then stop uvicorn."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_s
        while self.metrics.in_flight and loop.time() < deadline and not server.force_exit:
            await asyncio.sleep(0.01)
        if self.metrics.in_flight and self.app is not None:
            self.app.state.cut_short = True
        server.should_exit = True

    async def _report(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._write_interval()

    def _write_interval(self) -> None:
        values = self.metrics.interval()
        dropped_errors, dropped_output = self.errors.reset(), self.outputs.reset()
        if values is None and not (dropped_errors or dropped_output):
            return
        values = dict(values or {})
        if dropped_errors:
            values["error_events_dropped"] = dropped_errors
        if dropped_output:
            values["output_lines_dropped"] = dropped_output
        self.emit("metrics", shapes.metrics("serve", values))


def _only_serving_action(plugin: Any) -> str | None:
    """With no action named: the plugin's one serving action (method serve/restapi), else its only action."""
    serving = [name for name, a in plugin.config.actions.items() if a.serves]
    return serving[0] if len(serving) == 1 else None


def _default_model_error(exc: BaseException) -> BaseException:
    """A storage failure under the default model's load (exit 4), else the load's own error (exit 1)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, StorageError):
            return cause
        cause = cause.__cause__
    return exc


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted sockets only when their proto says
    # TCP, and without it a response's two writes (head, body) wait out a 40 ms delayed ACK each time.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValidationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              details={"host": host, "port": port},
                              hint="choose another port (--port or SYNAPSE_SERVE_PORT) or stop what uses it") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _uvicorn_server(app: ServeApp) -> Any:
    import contextlib

    import uvicorn

    config = uvicorn.Config(app, lifespan="off", access_log=False, log_level="warning",
                            timeout_graceful_shutdown=_UVICORN_GRACE, log_config=None, server_header=False)

    class _Server(uvicorn.Server):
        """uvicorn without its own signal handling (ours drains and picks the exit code)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

        def install_signal_handlers(self) -> None:
            pass

    return _Server(config)


def serve(args: ServeArgs) -> int:
    """The command: exit code of the serving process."""
    return Server(args).run()


__all__ = ["ServeArgs", "serve"]
