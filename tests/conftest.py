"""Shared test helpers: every run's stdout is checked against the event schema, line by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from synapse_runtime.events import SCHEMA_PATH
from synapse_runtime.testing import RunResult, run_local
from tests.secrets import scan_text, scan_tree
from tests import hypothesis_profiles  # noqa: F401,E402 - loads the ci/dev profile before any property runs

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"

_validator = None


def event_validator() -> Any:
    global _validator
    if _validator is None:
        import jsonschema

        schema = json.loads(SCHEMA_PATH.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        _validator = jsonschema.Draft202012Validator(schema)
    return _validator


def check_stream(result: RunResult) -> RunResult:
    """The contract's stream invariants: schema-valid lines, seq 0..n, start first, end last;
    and no secret the tests set anywhere in stdout or stderr."""
    assert result.events, f"no events on stdout; stderr: {result.stderr[-2000:]}"
    hits = scan_text(result.stdout, "stdout") + scan_text(result.stderr, "stderr")
    assert not hits, hits
    validator = event_validator()
    for event in result.events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, f"event does not match the schema: {event}\n{errors[0].message}"
    assert [e["seq"] for e in result.events] == list(range(len(result.events)))
    assert result.events[0]["type"] == "start", f"the first event is not start (docs/events.md): {result.events[0]}"
    assert [e["type"] for e in result.events].count("start") == 1
    assert [e["type"] for e in result.events].count("end") == 1
    assert result.events[-1]["type"] == "end"
    assert result.events[-1]["exit_code"] == result.exit_code
    return result


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One real S3 server (moto over HTTP, a subprocess) for the session's storage and reliability tests."""
    from tests.storage.netutil import start_moto

    proc, endpoint = start_moto()
    yield endpoint
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run a plugin through the CLI in a subprocess; the stream is schema-checked."""
    counter = iter(range(1000))

    def _run(plugin: str | Path, action: str | None = None, params: dict | None = None, **kw: Any) -> RunResult:
        if isinstance(plugin, str) and "/" not in plugin:
            plugin = PLUGINS / plugin
        kw.setdefault("output_dir", tmp_path / f"out{next(counter)}")
        return check_stream(run_local(plugin, action, params, **kw))

    return _run


@pytest.fixture(scope="session", autouse=True)
def secrets_never_written(tmp_path_factory: pytest.TempPathFactory):
    """After every test of the session: scan every file the suites left behind for secrets."""
    yield
    root = tmp_path_factory.getbasetemp()
    files, size, hits = scan_tree(root)
    print(f"\nsecret scan: {files} files, {size} bytes under {root}: {len(hits)} hits")
    assert not hits, hits[:20]
