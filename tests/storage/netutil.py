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


@dataclass
class Fault:
    """What to do to one GET response: 'reset' or 'stall' after ``after`` bytes (headers included)."""

    kind: str
    after: int
    seconds: float = 5.0


@dataclass
class Proxy:
    """A threaded TCP proxy to 127.0.0.1:``upstream``; faults are consumed one per GET request, in order."""

    upstream: int
    faults: list[Fault | None] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    connections: int = 0

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

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
        except OSError:
            client.close()
            return
        state: dict = {"fault": None, "sent": 0}
        threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                fault, sent = state["fault"], state["sent"]
                if fault is not None and sent + len(data) > fault.after:
                    cut = max(0, fault.after - sent)
                    if cut:
                        client.sendall(data[:cut])
                    if fault.kind == "stall":
                        time.sleep(fault.seconds)
                    # RST, not FIN: the client sees a reset mid-body
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    try:  # wake the request-reading thread without sending a FIN, so close() sends RST
                        client.shutdown(socket.SHUT_RD)
                    except OSError:
                        pass
                    break
                client.sendall(data)
                state["sent"] = sent + len(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _up(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        buf = b""
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                buf = (buf + data)[-8192:]
                for m in _REQ.finditer(buf):
                    with self.lock:
                        self.requests.append((m.group(1).decode(), m.group(2).decode()))
                        if m.group(1) == b"GET":
                            state["fault"] = self.faults.pop(0) if self.faults else None
                            state["sent"] = 0
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
