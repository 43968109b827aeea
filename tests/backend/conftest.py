"""Fixtures for the backend tests: a fake Synapse backend on 127.0.0.1 and a dead URL."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from tests.backend.backend_fake import FakeBackend


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    server = FakeBackend()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
