"""A real ``synapse-runtime serve`` process on loopback: start, wait for readiness, talk HTTP, SIGTERM, check.

Every event line the server wrote is validated against the schema when it stops (``stop``), and
no test secret may appear in its stdout or stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BACKEND = "http://backend.test/"  # the JWT key: what the deployment is bound with (SYNAPSE_HOST)


def token(model: Any, key: str = BACKEND, user_token: str = "user-secret-token-123", tenant: str | None = None) -> str:
    """Upstream's model header: ``create_serve_multiplexed_model_id`` (a JWT, HS256, keyed by the backend URL)."""
    import warnings

    import jwt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        payload = {"model": str(model), "token": user_token, **({"tenant": tenant} if tenant else {})}
        return jwt.encode(payload, key, algorithm="HS256")


def model_archive(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, *,
         raw: bytes | None = None, timeout: float = 30.0) -> Response:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    hdrs = {"content-type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback
            return Response(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return Response(exc.code, exc.read(), dict(exc.headers))


class Serving:
    """One server subprocess; its stdout lines are collected by a thread."""

    def __init__(self, plugin: Path, env: dict[str, str] | None = None, args: list[str] | None = None,
                 command: list[str] | None = None, python: str = sys.executable) -> None:
        full_env = {**os.environ, "SYNAPSE_SERVE_PORT": "0", "SYNAPSE_SERVE_HOST": "127.0.0.1",
                    "SYNAPSE_HOST": BACKEND, "SYNAPSE_JOB_ID": "serve-test", "SYNAPSE_GPU_PROBE": "0",
                    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
                    **(env or {})}
        cmd = command or [python, "-m", "synapse_runtime", "serve", "--plugin", str(plugin), *(args or [])]
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=plugin)
        self.lines: list[str] = []
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()
        self.base = ""
        self.prefix = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.decode())

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def wait_started(self, timeout: float = 30.0) -> Serving:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            start = next((e for e in self.events if e["type"] == "start"), None)
            if start is not None and "address" in start:
                self.base = start["address"]
                self.prefix = next(iter(start["routes"]))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"server did not start: {self.lines[-5:]} {self.stderr[-2000:]!r}")

    def wait_ready(self, timeout: float = 30.0) -> Serving:
        self.wait_started(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/-/healthz").status == 200:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"server not ready: {self.lines[-5:]} {self.stderr[-2000:]!r}")

    def get(self, path: str, **kw: Any) -> Response:
        return http("GET", self.base + path, **kw)

    def post(self, body: Any = None, *, model: str | None = None, path: str = "/", **kw: Any) -> Response:
        headers = dict(kw.pop("headers", {}) or {})
        if model is not None:
            headers["serve_multiplexed_model_id"] = model
        return http("POST", self.base + self.prefix + path, body, headers, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        self._err.join(5)
        check_events(self.events, code, self.lines, self.stderr)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def check_events(events: list[dict[str, Any]], code: int, lines: list[str], stderr: bytes) -> None:
    """Schema-valid, seq without gaps, ``end`` last with the exit code, no test secret anywhere."""
    from tests.conftest import event_validator
    from tests.secrets import scan_text

    validator = event_validator()
    for event in events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, f"event does not match the schema: {event}\n{errors[0].message}"
    assert [e["seq"] for e in events] == list(range(len(events)))
    first = next((e for e in events if e["type"] not in ("output", "log")), None)  # importing the plugin may print
    assert first is not None and first["type"] == "start", events[:3]
    assert events and events[-1]["type"] == "end" and events[-1]["exit_code"] == code, events[-3:]
    text = "".join(lines)
    assert not scan_text(text, "stdout") and not scan_text(stderr.decode("utf-8", "replace"), "stderr")
    assert "user-secret-token-123" not in text and "eyJ" not in text, "a model token reached the events"
