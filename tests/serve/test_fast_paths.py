"""The two costs the serving bench found (bench/README.md), guarded so they cannot come back.

- Verified model tokens are kept (``models.verified_tokens``): PyJWT runs once per token and backend
  URL, not once per request; an ``exp`` claim still ends a token's life, and a failure is never kept.
- Answers on a kept-alive connection are not held back by Nagle's algorithm waiting out the client's
  40 ms delayed ACK (server.py ``_bind``: TCP_NODELAY on the listening socket, inherited on accept).
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.ci import require_module  # noqa: E402

jwt = require_module("jwt", "the serve extra and its test deps (pip install -e '.[test]')")
require_module("fastapi", "the serve extra and its test deps (pip install -e '.[test]')")
require_module("uvicorn", "the serve extra and its test deps (pip install -e '.[test]')")

from synapse_runtime.serve import models  # noqa: E402
from synapse_runtime.serve.models import ModelTokenError, ref_from_token  # noqa: E402
from tests.serve.helpers import BACKEND, token  # noqa: E402
from tests.serve.test_deployment import start  # noqa: E402


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``jwt.decode`` call, by token; the cache starts empty and is left empty."""
    calls: list[str] = []
    real = jwt.decode

    def counting(encoded: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(encoded)
        return real(encoded, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    models.verified_tokens.clear()
    yield calls
    models.verified_tokens.clear()


def signed(payload: dict[str, Any], key: str = BACKEND) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(payload, key, algorithm="HS256")


def test_a_verified_token_is_decoded_once(decodes: list[str]) -> None:
    tok = token(7, tenant="acme")
    refs = [ref_from_token(tok, BACKEND) for _ in range(50)]
    assert len(decodes) == 1
    assert {r.model_id for r in refs} == {"7"} and refs[0].tenant == "acme"
    assert refs[0].user_token == "user-secret-token-123"
    other = token(8)
    assert ref_from_token(other, BACKEND).model_id == "8"
    assert len(decodes) == 2


def test_the_backend_url_is_part_of_the_key(decodes: list[str]) -> None:
    tok = token(7)
    ref_from_token(tok, BACKEND)
    with pytest.raises(ModelTokenError, match="InvalidSignatureError"):
        ref_from_token(tok, "http://another-backend.test/")  # verified again, with that URL as the key
    assert len(decodes) == 2


def test_failures_are_never_kept(decodes: list[str]) -> None:
    forged = token(7, key="http://not-the-backend/")
    nameless = signed({"token": "user-secret-token-123"})
    for _ in range(3):
        with pytest.raises(ModelTokenError, match="not valid"):
            ref_from_token(forged, BACKEND)
        with pytest.raises(ModelTokenError, match="names no model"):
            ref_from_token(nameless, BACKEND)
    assert len(decodes) == 6
    assert len(models.verified_tokens) == 0


def test_an_expiring_token_is_rejected_once_it_expires(decodes: list[str]) -> None:
    exp = int(time.time()) + 2
    tok = signed({"model": "7", "token": "user-secret-token-123", "exp": exp})
    assert ref_from_token(tok, BACKEND).model_id == "7"
    assert ref_from_token(tok, BACKEND).model_id == "7"
    assert len(decodes) == 1  # kept while it is valid
    time.sleep(max(0.0, exp - time.time()) + 0.1)
    with pytest.raises(ModelTokenError, match="ExpiredSignatureError"):
        ref_from_token(tok, BACKEND)
    with pytest.raises(ModelTokenError, match="ExpiredSignatureError"):
        ref_from_token(tok, BACKEND)
    assert len(decodes) == 3
    already = signed({"model": "7", "exp": int(time.time()) - 5})
    with pytest.raises(ModelTokenError, match="ExpiredSignatureError"):
        ref_from_token(already, BACKEND)


def test_the_cache_is_bounded_least_recently_used_first(decodes: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.verified_tokens, "capacity", 4)
    toks = [token(i) for i in range(6)]
    for tok in toks:
        ref_from_token(tok, BACKEND)
    assert len(models.verified_tokens) == 4
    ref_from_token(toks[2], BACKEND)  # kept: no decode; now the most recent
    assert len(decodes) == 6
    ref_from_token(toks[0], BACKEND)  # evicted: decoded again, evicting toks[3]
    ref_from_token(toks[2], BACKEND)
    assert len(decodes) == 7
    ref_from_token(toks[3], BACKEND)
    assert len(decodes) == 8


def test_keep_alive_answers_are_not_held_by_delayed_acks(tmp_path: Path) -> None:
    """Without TCP_NODELAY each answer after the first on a connection waits ~40 ms (Linux delayed ACK)."""
    srv = start(tmp_path).wait_ready()
    try:
        url = urlsplit(srv.base)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {"content-type": "application/json", "serve_multiplexed_model_id": token(1)}
        body = json.dumps({"text": "hi"}).encode()
        times = []
        sock = None
        for _ in range(21):
            t0 = time.perf_counter()
            conn.request("POST", srv.prefix + "/", body, headers)
            resp = conn.getresponse()
            data = resp.read()
            times.append(time.perf_counter() - t0)
            assert resp.status == 200, data
            assert resp.getheader("connection", "").lower() != "close"
            assert json.loads(data) == {"model": "weights-one", "echo": "hi"}
            sock = sock or conn.sock
            assert conn.sock is sock and sock is not None, "the connection was not kept alive"
        conn.close()
        later = times[1:]  # the first one loads the model
        assert statistics.median(later) < 0.020, [round(t * 1000, 1) for t in later]
    finally:
        srv.kill()
