"""A local stand-in for the Synapse backend: a real HTTP server in a thread, answering as upstream's
API does (``GET /models/{id}/``, ``GET /jobs/{id}/``, ``PATCH /jobs/{id}/`` rejecting unknown keys with 400,
``POST /logs/``), checking the auth headers, and recording every request for assertions.

Faults are scripted per route: ``backend.fail("GET", "/models/1/", 500, times=1)`` answers the
next matching request with a 500; ``delay=`` makes it sleep first (for timeouts).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "sk-test-9f8e7d6c5b4a-SECRET"
USER_TOKEN = "drf-user-token-1234567890-SECRET"
TENANT = "acme"
JOB_KEYS = {"status", "progress_record", "metrics_record", "console_logs", "result", "meta"}
JOB_STATUSES = {"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    t: float


@dataclass
class Fault:
    method: str
    path: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0


class FakeBackend:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.models: dict[str, dict[str, Any]] = {
            "123": {
                "id": 123,
                "name": "resnet50-demo",
                "category": "neural_net",
                "file": "https://storage.example.com/models/123.zip?X-Amz-Signature=abc",
                "description": "demo",
                "configuration": {"num_classes": 10},
            },
            "7": {"id": 7, "name": "s3-model", "category": "neural_net", "file": "s3://bucket/models/7.zip"},
        }
        self.jobs: dict[str, dict[str, Any]] = {"job-1": {"id": "job-1", "status": "PENDING"}}
        self.logs: list[dict[str, Any]] = []
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.auth = "access"  # or "user"
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, 0), _make_handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, method: str, path: str, status: int, *, times: int = 1, headers: dict[str, str] | None = None,
             body: Any = None, delay: float = 0.0) -> None:
        self.faults.append(Fault(method, path, status, times, headers or {}, body, delay))

    def calls(self, method: str | None = None, prefix: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(prefix)]

    def patches(self, job_id: str = "job-1") -> list[dict[str, Any]]:
        return [r.body for r in self.calls("PATCH", f"/jobs/{job_id}/")]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.path == path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.auth == "access":
            return headers.get("Synapse-Access-Token") == f"Token {TOKEN}"
        return headers.get("Authorization") == f"Token {USER_TOKEN}" and headers.get("Synapse-Tenant") == f"Token {TENANT}"

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        fault = self._take_fault(method, path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            return fault.status, fault.headers, fault.body if fault.body is not None else {"detail": "injected"}
        if not self._authorized(headers):
            return 401, {}, {"detail": "Invalid token."}
        parts = [p for p in path.split("/") if p]
        if method == "GET" and len(parts) == 2 and parts[0] == "models":
            model = self.models.get(parts[1])
            return (200, {}, model) if model else (404, {}, {"detail": "Not found."})
        if method == "GET" and len(parts) == 2 and parts[0] == "jobs":  # upstream's get_job
            job = self.jobs.get(parts[1])
            return (200, {}, job) if job else (404, {}, {"detail": "Not found."})
        if method == "PATCH" and len(parts) == 2 and parts[0] == "jobs":
            job = self.jobs.get(parts[1])
            if job is None:
                return 404, {}, {"detail": "Not found."}
            if not isinstance(body, dict):
                return 400, {}, {"non_field_errors": ["Invalid data. Expected a dictionary."]}
            unknown = sorted(set(body) - JOB_KEYS)
            if unknown:
                return 400, {}, {key: ["Extra inputs are not permitted"] for key in unknown}
            if "status" in body and body["status"] not in JOB_STATUSES:
                return 400, {}, {"status": [f'"{body["status"]}" is not a valid choice.']}
            job.update(body)
            return 200, {}, job
        if method == "POST" and parts == ["logs"]:
            items = body if isinstance(body, list) else [body]
            for item in items:
                if not isinstance(item, dict) or "event" not in item or "job" not in item:
                    return 400, {}, {"detail": "invalid log entry"}
            self.logs.extend(items)
            return 201, {}, items
        return 404, {}, {"detail": "Not found."}


def _make_handler(backend: FakeBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k: v for k, v in self.headers.items()}
            with backend.lock:
                backend.requests.append(
                    Recorded(self.command, split.path, parse_qs(split.query), headers, body, time.monotonic())
                )
            status, extra, payload = backend.answer(self.command, split.path, headers, body)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        do_GET = do_PATCH = do_POST = _handle

    return Handler
