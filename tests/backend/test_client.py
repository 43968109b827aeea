"""BackendClient against a real local HTTP server that answers as upstream's API does."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import time

import pytest

from synapse_runtime.backend import resolve_model_source
from synapse_runtime.backend.client import BackendClient, Secret
from synapse_runtime.backend.exceptions import (
    BackendAuthError,
    BackendNotFoundError,
    BackendResponseError,
    BackendUnavailableError,
)
from synapse_runtime.backend.registry import ModelRegistry
from synapse_runtime.errors import BackendError, ValidationError
from tests.backend.backend_fake import TENANT, TOKEN, USER_TOKEN


def make(url: str, **kw: object) -> BackendClient:
    kw.setdefault("access_token", TOKEN)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("backoff", 0.01)
    return BackendClient(url, **kw)  # type: ignore[arg-type]


# -- success and headers ---------------------------------------------------------------------

def test_get_model_returns_detail_and_sends_access_token_header(backend):
    model = make(backend.url).get_model(123)
    assert model["id"] == 123 and model["name"] == "resnet50-demo" and model["category"] == "neural_net"
    assert model["file"].startswith("https://")
    (req,) = backend.calls("GET")
    assert req.path == "/models/123/"
    assert req.headers["Synapse-Access-Token"] == f"Token {TOKEN}"
    assert "Authorization" not in req.headers
    assert req.query == {}


def test_get_model_s3_file_is_passed_through(backend):
    assert make(backend.url).get_model("7")["file"] == "s3://bucket/models/7.zip"


def test_user_token_scheme_sends_authorization_and_tenant(backend):
    backend.auth = "user"
    client = make(backend.url, access_token=None, user_token=USER_TOKEN, tenant=TENANT)
    assert client.get_model(123)["id"] == 123
    (req,) = backend.calls("GET")
    assert req.headers["Authorization"] == f"Token {USER_TOKEN}"
    assert req.headers["Synapse-Tenant"] == f"Token {TENANT}"
    assert "Synapse-Access-Token" not in req.headers


def test_url_host_is_sent_as_query_parameter(backend):
    make(backend.url, url_host="internal").update_job("job-1", {"status": "RUNNING"})
    (req,) = backend.calls("PATCH")
    assert req.query == {"url_host": ["internal"]}
    assert req.path == "/jobs/job-1/"


def test_update_job_sends_allowed_keys_and_uppercases_status(backend):
    client = make(backend.url)
    answer = client.update_job("job-1", {"status": "running", "progress_record": {"record": {}}})
    assert answer["status"] == "RUNNING"
    assert backend.patches() == [{"status": "RUNNING", "progress_record": {"record": {}}}]


def test_update_job_rejects_unknown_keys_before_sending(backend):
    with pytest.raises(ValueError, match="progress"):
        make(backend.url).update_job("job-1", {"status": "RUNNING", "progress": 5})
    with pytest.raises(ValueError, match="status"):
        make(backend.url).update_job("job-1", {"status": "DONE"})
    assert backend.calls() == []


def test_server_rejects_unknown_keys_like_the_real_api(backend):
    """The fake must be as strict as the real server, or the client's own check proves nothing."""
    client = make(backend.url)
    with pytest.raises(BackendResponseError, match="400") as info:
        client.transport.request("PATCH", "jobs/job-1/", body={"bogus": 1}, what="job job-1")
    assert "bogus" in str(info.value)


def test_update_job_encodes_nan_as_null(backend):
    make(backend.url).update_job("job-1", {"metrics_record": {"record": {"steps": {"train": {"loss": float("nan")}}}}})
    assert backend.patches()[0]["metrics_record"]["record"]["steps"]["train"]["loss"] is None


def test_create_logs_posts_list_or_single_entry(backend):
    client = make(backend.url)
    entries = [{"event": "message", "data": {"content": f"m{i}"}, "datetime": "x", "job": "job-1"} for i in range(3)]
    client.create_logs(entries)
    client.create_logs(entries[:1])
    client.create_logs([])
    posts = backend.calls("POST", "/logs/")
    assert [type(p.body) for p in posts] == [list, dict]
    assert len(backend.logs) == 4


def test_path_ids_cannot_escape_the_route(backend):
    with pytest.raises(ValueError):
        make(backend.url).get_model("../jobs/1")
    with pytest.raises(ValueError):
        make(backend.url).update_job("a/b", {"status": "RUNNING"})
    assert backend.calls() == []


# -- failures --------------------------------------------------------------------------------

def test_401_names_host_and_env_var_never_the_token(backend):
    client = make(backend.url, access_token="wrong-token-abcdef")
    with pytest.raises(BackendAuthError) as info:
        client.get_model(123)
    text = str(info.value)
    assert "SYNAPSE_ACCESS_TOKEN" in text and backend.url in text and "model 123" in text
    assert "wrong-token-abcdef" not in text + repr(info.value) + repr(info.value.details)
    assert info.value.status == 401
    assert len(backend.calls()) == 1  # never retried


def test_403_with_user_token_points_at_user_token_vars(backend):
    backend.fail("GET", "/models/123/", 403, body={"detail": "You do not have permission."})
    client = make(backend.url, access_token=None, user_token=USER_TOKEN, tenant=TENANT)
    with pytest.raises(BackendAuthError, match="SYNAPSE_PLUGIN_RUN_USER_TOKEN") as info:
        client.get_model(123)
    assert "permission" in str(info.value)


def test_404_says_which_model_on_which_host(backend):
    with pytest.raises(BackendNotFoundError) as info:
        make(backend.url).get_model(999)
    assert str(info.value) == f"model 999 not found on {backend.url}"
    assert isinstance(info.value, BackendError)
    with pytest.raises(BackendNotFoundError, match="job nope not found"):
        make(backend.url).update_job("nope", {"status": "RUNNING"})


def test_500_then_success_is_retried(backend):
    backend.fail("GET", "/models/123/", 500, times=2)
    assert make(backend.url, retries=3).get_model(123)["id"] == 123
    assert len(backend.calls("GET")) == 3


def test_persistent_500_fails_after_retries(backend):
    backend.fail("PATCH", "/jobs/job-1/", 503, times=100)
    with pytest.raises(BackendUnavailableError) as info:
        make(backend.url, retries=2).update_job("job-1", {"status": "RUNNING"})
    assert len(backend.calls("PATCH")) == 3
    assert "503" in str(info.value) and "3 attempts" in str(info.value) and "job job-1" in str(info.value)


def test_post_is_not_repeated_after_a_500_it_may_have_processed(backend):
    backend.fail("POST", "/logs/", 500, times=5)
    with pytest.raises(BackendUnavailableError):
        make(backend.url, retries=3).create_logs([{"event": "message", "data": {}, "datetime": "x", "job": "job-1"}])
    assert len(backend.calls("POST")) == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_post_is_never_repeated_after_an_answer(backend, status):
    """Issue 12, item 5: a 504 from a proxy is exactly the case where the log was already stored."""
    backend.fail("POST", "/logs/", status, times=5)
    with pytest.raises(BackendUnavailableError):
        make(backend.url, retries=3, backoff=0.01).create_logs([{"event": "message", "data": {}, "datetime": "x", "job": "job-1"}])
    assert len(backend.calls("POST")) == 1


def test_post_is_retried_when_it_never_reached_the_server(dead_url):
    import unittest.mock

    client = make(dead_url, retries=2, backoff=0.01)
    with unittest.mock.patch.object(client.transport, "_send_once", wraps=client.transport._send_once) as send:
        with pytest.raises(BackendUnavailableError):
            client.create_logs([{"event": "message", "data": {}, "datetime": "x", "job": "job-1"}])
    assert send.call_count == 3  # a refused connection: nothing was processed, so a retry is safe


def test_429_honours_retry_after(backend):
    backend.fail("GET", "/models/123/", 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert make(backend.url, backoff=0.01).get_model(123)["id"] == 123
    first, second = backend.calls("GET")
    assert second.t - first.t >= 0.95  # the server's hint, not the 10 ms backoff
    assert time.monotonic() - started < 5


def test_timeout_when_server_is_slower_than_the_client(backend):
    backend.fail("GET", "/models/123/", 200, times=5, delay=1.0)
    client = make(backend.url, timeout=0.2, retries=1)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=r"did not answer .* within 0\.2 s") as info:
        client.get_model(123)
    assert time.monotonic() - started < 1.5
    assert "2 attempts" in str(info.value)
    assert len(backend.calls("GET")) == 2


def test_post_is_not_repeated_after_a_read_timeout(backend):
    """The server got the POST and is slow to answer: it may store the log after the client gave up,
    and ``logs/`` has no idempotency key, so exactly one POST may reach it (GETs are retried: above)."""
    backend.fail("POST", "/logs/", 201, times=5, delay=1.0)
    client = make(backend.url, timeout=0.2, retries=3, backoff=0.01)
    with pytest.raises(BackendUnavailableError, match=r"did not answer POST .* within 0\.2 s \(after 1 attempt\)"):
        client.create_logs([{"event": "message", "data": {}, "datetime": "x", "job": "job-1"}])
    time.sleep(0.3)  # a retry sent late would have reached the server by now
    assert len(backend.calls("POST")) == 1


def test_timeout_then_success(backend):
    backend.fail("GET", "/models/123/", 200, times=1, delay=0.6)
    assert make(backend.url, timeout=0.2, retries=2).get_model(123)["id"] == 123


def test_connection_refused_is_retried_then_reported(dead_url):
    client = make(dead_url, retries=2)
    with pytest.raises(BackendUnavailableError, match="cannot reach") as info:
        client.get_model(123)
    assert "3 attempts" in str(info.value) and "model 123" in str(info.value)


def test_redirects_are_not_followed(backend):
    backend.fail("GET", "/models/123/", 302, headers={"Location": "http://evil.example/steal"})
    with pytest.raises(BackendResponseError, match="redirect"):
        make(backend.url).get_model(123)
    assert len(backend.calls()) == 1


def test_non_json_success_is_a_clear_error(backend):
    backend.fail("GET", "/models/123/", 200, body="<html>")  # a JSON string, not an object
    with pytest.raises(BackendResponseError, match="expected a JSON object"):
        make(backend.url).get_model(123)


# -- secrecy ---------------------------------------------------------------------------------

def test_token_never_in_repr_vars_or_pickle():
    client = BackendClient("https://api.example.com", access_token=TOKEN, user_token=USER_TOKEN, tenant=TENANT)
    assert TOKEN not in repr(client) and USER_TOKEN not in repr(client)
    assert TOKEN not in repr(vars(client)) and USER_TOKEN not in str(vars(client))
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))
    assert copy.deepcopy(client) is client  # dataclasses.asdict(ctx) must keep working


def test_bad_host_in_env_is_a_validation_error():
    with pytest.raises(ValidationError, match="SYNAPSE_HOST"):
        BackendClient.from_env({"SYNAPSE_HOST": "ftp://files.example", "SYNAPSE_ACCESS_TOKEN": TOKEN})


def test_token_redacted_even_when_the_server_echoes_it(backend):
    backend.fail("GET", "/models/123/", 400, body={"detail": f"bad header Token {TOKEN}"})
    with pytest.raises(BackendResponseError) as info:
        make(backend.url).get_model(123)
    assert TOKEN not in str(info.value) and "***" in str(info.value)


# -- construction from env -------------------------------------------------------------------

def test_from_env_needs_host_and_a_token():
    assert BackendClient.from_env({}) is None
    assert BackendClient.from_env({"SYNAPSE_HOST": "https://h"}) is None
    assert BackendClient.from_env({"SYNAPSE_ACCESS_TOKEN": TOKEN}) is None
    assert BackendClient.from_env({"SYNAPSE_HOST": "  ", "SYNAPSE_ACCESS_TOKEN": TOKEN}) is None
    client = BackendClient.from_env({"SYNAPSE_HOST": "api.example.com/", "SYNAPSE_ACCESS_TOKEN": TOKEN + "\n"})
    assert client is not None and client.host == "https://api.example.com"
    assert client.transport._headers(False)["Synapse-Access-Token"] == f"Token {TOKEN}"


def test_from_env_user_token_wins_with_tenant_and_url_host(backend):
    backend.auth = "user"
    client = BackendClient.from_env({
        "SYNAPSE_HOST": backend.url,
        "SYNAPSE_ACCESS_TOKEN": TOKEN,
        "SYNAPSE_PLUGIN_RUN_USER_TOKEN": USER_TOKEN,
        "SYNAPSE_PLUGIN_RUN_TENANT": TENANT,
        "SYNAPSE_PLUGIN_RUN_URL_HOST": "internal",
    })
    assert client is not None
    client.get_model(123)
    (req,) = backend.calls("GET")
    assert "Synapse-Access-Token" not in req.headers
    assert req.headers["Authorization"] == f"Token {USER_TOKEN}"
    assert req.query["url_host"] == ["internal"]


def test_resolve_model_source(tmp_path):
    models = tmp_path / "models.json"
    models.write_text('{"1": {"file": "s3://b/k.zip"}}')
    assert resolve_model_source({}) is None
    assert isinstance(resolve_model_source({"SYNAPSE_MODELS_FILE": str(models)}), ModelRegistry)
    both = {"SYNAPSE_MODELS_FILE": str(models), "SYNAPSE_HOST": "https://h", "SYNAPSE_ACCESS_TOKEN": TOKEN}
    assert isinstance(resolve_model_source(both), BackendClient)


def test_import_is_cheap():
    """Importing the package must not pull in the HTTP stack (or yaml): start-up time is measured."""
    code = (
        "import sys, synapse_runtime.backend as b; b.BackendClient; b.JobReporter; b.ModelRegistry;"
        "heavy = [m for m in ('urllib.request', 'http.client', 'ssl', 'yaml', 'requests') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_retry_after_parsing_is_capped():
    from email.utils import formatdate

    from synapse_runtime.backend.transport import MAX_RETRY_AFTER_S, _parse_retry_after

    assert _parse_retry_after("2") == 2.0
    assert _parse_retry_after("-5") == 0.0
    assert _parse_retry_after("99999") == MAX_RETRY_AFTER_S
    assert _parse_retry_after("soon") is None and _parse_retry_after(None) is None
    assert 8 <= _parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10


# -- issue 12, item 4: a password in the host never appears, a bad port is not retried ----------------


def test_host_with_userinfo_is_refused_without_echoing_it():
    from synapse_runtime.errors import ValidationError

    with pytest.raises(ValueError) as info:
        BackendClient("https://user:pw-in-host-9@backend.invalid", access_token=TOKEN)
    assert "pw-in-host-9" not in str(info.value) and "user:password@" in str(info.value)
    with pytest.raises(ValidationError) as verr:
        BackendClient.from_env({"SYNAPSE_HOST": "https://user:pw-in-host-9@backend.invalid", "SYNAPSE_ACCESS_TOKEN": TOKEN})
    assert "pw-in-host-9" not in str(verr.value) and verr.value.details == {"env": "SYNAPSE_HOST"}


def test_invalid_port_is_not_retried_and_names_the_variable():
    import unittest.mock

    client = make("https://backend.invalid:notaport", retries=3, backoff=0.01)
    with unittest.mock.patch.object(client.transport, "_send_once", wraps=client.transport._send_once) as send:
        with pytest.raises(BackendResponseError) as info:
            client.get_model(1)
    assert send.call_count == 1
    assert "SYNAPSE_HOST" in (info.value.hint or "")
