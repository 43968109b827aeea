"""Test servers on 127.0.0.1: a moto S3 subprocess and a TCP proxy that counts requests and injects faults."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

_REQ = re.compile(rb"(?:^|\r\n)(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/1\.[01]\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def start_moto(env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


#: S3-style error bodies for injected status responses
_ERROR_BODIES = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
#: fault kinds that replace the upstream response with an error status
STATUS_KINDS = {"500": 500, "503": 503}
KINDS = ("reset", "stall", "truncate", "corrupt", *STATUS_KINDS)


def error_response(status: int, code: str | None = None, message: str | None = None) -> bytes:
    """A complete S3-style XML error response (``Connection: close``)."""
    default_code, default_message = _ERROR_BODIES.get(status, ("InternalError", "injected"))
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code or default_code}</Code>'
            f"<Message>{message or default_message}</Message><RequestId>FAULT</RequestId></Error>").encode()
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            "x-amz-request-id: FAULT\r\nConnection: close\r\n\r\n").encode()
    return head + body


@dataclass
class Fault:
    """What to do to one response.

    ``kind``:

    * ``reset``: RST after ``after`` bytes;
    * ``stall``: send ``after`` bytes, hang ``seconds``, then RST;
    * ``truncate``: send ``after`` bytes, then close cleanly (FIN) although Content-Length promised more;
    * ``corrupt``: flip ``length`` bytes starting at byte ``after``, keep the length (a wrong checksum);
    * ``"500"`` / ``"503"``: answer with that status and an S3 XML error (InternalError / SlowDown)
      instead of the upstream response, then close.

    ``after`` counts the response from its first byte (headers included) unless ``body`` is true,
    in which case it counts body bytes only (the headers always pass).
    """

    kind: str
    after: int = 0
    seconds: float = 5.0
    body: bool = False
    length: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")


@dataclass
class Proxy:
    """A threaded TCP proxy to 127.0.0.1:``upstream``; faults are consumed one per request, in order.

    Only requests whose method is in ``methods`` (GET by default) consume a fault; ``None`` in
    ``faults`` lets one such request through untouched.  ``method_faults`` holds separate queues
    for other methods (e.g. ``{"HEAD": [Fault("503")]}``), consumed before ``faults``.  ``injected`` records the kind of every
    fault that actually fired (one whose offset lies beyond the response is consumed but not fired).
    """

    upstream: int
    faults: list[Fault | None] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    connections: int = 0
    methods: tuple[str, ...] = ("GET",)
    injected: list[str] = field(default_factory=list)
    method_faults: dict[str, list[Fault | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str) -> int:
        with self.lock:
            return sum(1 for m, _ in self.requests if m == method)

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.injected.clear()

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _fired(self, kind: str) -> None:
        with self.lock:
            self.injected.append(kind)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
        except OSError:
            client.close()
            return
        # per response: the fault, bytes sent, header bytes seen (None until the blank line)
        state: dict = {"fault": None, "sent": 0, "hdr": None, "head": b""}
        threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                fault: Fault | None = state["fault"]
                sent = state["sent"]
                if fault is None:
                    client.sendall(data)
                    state["sent"] = sent + len(data)
                    continue
                if fault.kind in STATUS_KINDS:
                    # the upstream response is dropped; the connection ends with the error response
                    client.sendall(error_response(STATUS_KINDS[fault.kind]))
                    self._fired(fault.kind)
                    self._close_clean(client)
                    break
                if state["hdr"] is None:
                    head = state["head"] + data[: max(0, 65536 - len(state["head"]))]
                    end = head.find(b"\r\n\r\n")
                    if end >= 0:
                        state["hdr"] = end + 4
                    state["head"] = head
                limit = fault.after
                if fault.body:
                    if state["hdr"] is None:  # still inside the headers: pass them
                        client.sendall(data)
                        state["sent"] = sent + len(data)
                        continue
                    limit = state["hdr"] + fault.after
                if fault.kind == "corrupt":
                    lo, hi = max(limit, sent), min(limit + fault.length, sent + len(data))
                    if lo < hi:
                        buf = bytearray(data)
                        for i in range(lo - sent, hi - sent):
                            buf[i] ^= 0xFF
                        data = bytes(buf)
                        if lo == limit:
                            self._fired("corrupt")
                    client.sendall(data)
                    state["sent"] = sent + len(data)
                    continue
                if sent + len(data) <= limit:
                    client.sendall(data)
                    state["sent"] = sent + len(data)
                    continue
                cut = max(0, limit - sent)
                if cut:
                    client.sendall(data[:cut])
                self._fired(fault.kind)
                if fault.kind == "truncate":
                    self._close_clean(client)
                    break
                if fault.kind == "stall":
                    time.sleep(fault.seconds)
                # RST, not FIN: the client sees a reset mid-body
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                try:  # wake the request-reading thread without sending a FIN, so close() sends RST
                    client.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
                break
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    @staticmethod
    def _close_clean(client: socket.socket) -> None:
        """FIN after what was sent: the client reads a short but orderly response."""
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _up(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        buf = b""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buf = (buf + data)[-8192:]
                for m in _REQ.finditer(buf):
                    method = m.group(1).decode()
                    with self.lock:
                        self.requests.append((method, m.group(2).decode()))
                        queue = self.method_faults.get(method)
                        if queue:
                            fault = queue.pop(0)
                        elif method in self.methods:
                            fault = self.faults.pop(0) if self.faults else None
                        else:
                            fault = None
                        state.update(fault=fault, sent=0, hdr=None, head=b"")
                # keep only the unmatched tail
                last = None
                for last in _REQ.finditer(buf):
                    pass
                if last is not None:
                    buf = buf[last.end():]
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass


#: boto3's own variables that could point the code under test elsewhere; cleared before each test
AWS_VARS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
            "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
            "AWS_REGION", "AWS_DEFAULT_REGION", "SYNAPSE_CACHE_DIR"]


def fake_aws_env(monkeypatch, endpoint: str, home: "os.PathLike[str]", *, access: str, secret: str,
                 read_timeout: float, backoff_max: float | None = None) -> None:
    """The runtime's S3 configuration as the runner would put it in os.environ: dummy keys, the test
    server as the endpoint, no profile or credentials file of the machine, short timeouts."""
    for var in AWS_VARS + [v for v in os.environ if v.startswith("SYNAPSE_")]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.path.join(home, "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.path.join(home, "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("SYNAPSE_FETCH_BACKOFF", "0.01")
    if backoff_max is not None:
        monkeypatch.setenv("SYNAPSE_FETCH_BACKOFF_MAX", str(backoff_max))
    monkeypatch.setenv("SYNAPSE_S3_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("SYNAPSE_S3_READ_TIMEOUT", str(read_timeout))
