"""The settings object: one attribute per knob, defaults from the one table, and the docs held to it.

The storage defaults once lived twice (knobs.py said 200 MiB/s, 1 s, 1 MiB; storage's code and
docs/storage.md the measured 2048 MiB/s, 0.05 s, 256 KiB) and the wrong copy won unnoticed. These
tests fail on any such difference: every default a doc states (the default columns of the knob
tables and every "`SYNAPSE_X` (default V)" in prose) against the table, and what a clean
environment hands to the download engine against the measured values.
"""

from __future__ import annotations

import http.server
import re
import threading
import typing
from pathlib import Path
from typing import Any

import pytest

from synapse_runtime import knobs, settings
from synapse_runtime.errors import ValidationError
from synapse_runtime.contract.settings import Settings, attribute, build

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
#: What the tuning commits measured (docs/storage.md, bench/README.md): the defaults storage must get.
MEASURED = {"split_below": 2048 * MiB, "split_after": 0.05, "chunk": 256 * 1024}
#: The Python type each kind of knob parses to.
KIND_TYPES = {"text": str, "path": str, "paths": str, "choice": str, "bool": bool, "int": int, "size": int, "float": float}


def _doc_value(knob: knobs.Knob, cell: str) -> Any:
    """A default as a doc writes it, parsed as the knob's value would be ("unset" is None)."""
    text = cell.strip().strip("`").strip()
    if text in ("unset", ""):
        return None
    return knobs.parse(knob, text)


def _table_defaults(path: Path) -> list[tuple[str, str]]:
    """(variable, default cell) for each row of each markdown table whose header has a ``default`` column."""
    rows: list[tuple[str, str]] = []
    column = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column is None:
            column = cells.index("default") if "default" in cells else -1
            continue
        if column < 0 or set(cells[0]) <= set("-: "):
            continue
        names = re.findall(r"`(SYNAPSE_[A-Z0-9_]+)`", cells[0])
        values = [v.strip() for v in cells[column].split(" / ")]
        if len(names) > 1:  # `A` / `B` | `x` / `y`
            assert len(values) == len(names), f"{path.name}: {line}"
            rows.extend(zip(names, values))
        elif names:
            rows.append((names[0], cells[column]))
    return rows


#: Knobs whose table default is None because the value is computed where it is used; the docs
#: describe the computation in words (checked by hand), or name the built-in fallback.
COMPUTED = {"SYNAPSE_CACHE_DIR", "SYNAPSE_CACHE_MAX_BYTES", "SYNAPSE_TERMINATION_LOG"}


def test_the_docs_default_columns_are_the_tables_defaults() -> None:
    """docs/contract.md and docs/storage.md have a default column (docs/backend.md's table has none:
    the backend's knobs have no defaults)."""
    checked = 0
    for doc in ("contract.md", "storage.md", "backend.md"):
        for name, cell in _table_defaults(ROOT / "docs" / doc):
            knob = knobs.KNOBS[name]
            if name in COMPUTED:
                continue
            assert _doc_value(knob, cell) == knob.default, f"docs/{doc}: {name} default {cell} != knobs.py {knob.default!r}"
            checked += 1
    assert checked >= 25, "the table parser found too few rows: did the docs' table layout change?"


def test_the_computed_defaults_name_the_code_s_fallback() -> None:
    from synapse_runtime.storage.config import DEFAULT_CACHE_DIR

    rows = dict(_table_defaults(ROOT / "docs" / "storage.md"))
    assert rows["SYNAPSE_CACHE_DIR"].strip("`") == DEFAULT_CACHE_DIR


PROSE_DEFAULT = re.compile(r"`(SYNAPSE_[A-Z0-9_]+)`(?: seconds)?(?:,| \()\s*default `?([^`,;)\s]+)")


def test_defaults_stated_in_prose_are_the_tables_defaults() -> None:
    found = 0
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for name, value in PROSE_DEFAULT.findall(path.read_text(encoding="utf-8")):
            knob = knobs.KNOBS[name]
            assert _doc_value(knob, value) == knob.default, f"{path.name}: {name} (default {value}) != {knob.default!r}"
            found += 1
    assert found >= 10, "the prose pattern found too few defaults: did the wording change?"


def test_one_attribute_per_knob_with_the_kind_s_type() -> None:
    hints = typing.get_type_hints(Settings)
    assert set(hints) == set(Settings.__slots__) == {attribute(n) for n in knobs.KNOBS}
    for name, knob in knobs.KNOBS.items():
        hint = hints[attribute(name)]
        allowed = set(typing.get_args(hint)) or {hint}
        assert KIND_TYPES[knob.kind] in allowed, f"{name}: {knob.kind} but annotated {hint}"
        assert (knob.default is None) == (type(None) in allowed) or knob.kind == "paths", f"{name}: None-ness"


def test_a_clean_environment_gives_the_table_defaults() -> None:
    clean = settings.defaults()
    assert dict(clean.items()) == {name: knob.default for name, knob in knobs.KNOBS.items()}


def test_precedence_and_empty_values() -> None:
    s = build({"SYNAPSE_PROGRESS_INTERVAL": "0.5", "SYNAPSE_S3_CHUNK_SIZE": "", "SYNAPSE_ENV_DIR": ""})
    assert s.progress_interval == 0.5  # the environment over the table
    assert s.s3_chunk_size == 256 * 1024  # empty counts as unset
    assert s.env_dir == ""  # except for directory lists, where empty means none


def test_bad_values_raise_the_first_in_table_order_or_count_as_unset() -> None:
    env = {"SYNAPSE_S3_CONCURRENCY": "many", "SYNAPSE_PROGRESS_INTERVAL": "abc"}
    with pytest.raises(ValidationError) as info:
        build(env)
    assert info.value.details["variable"] == "SYNAPSE_PROGRESS_INTERVAL"  # listed first in knobs.py
    lenient = build(env, strict=False)
    assert (lenient.progress_interval, lenient.s3_concurrency) == (0.2, 8)


def test_frozen_and_no_token_in_repr() -> None:
    s = build({"SYNAPSE_ACCESS_TOKEN": "tok-123", "SYNAPSE_HOST": "https://x"})
    with pytest.raises(AttributeError):
        s.host = "other"  # type: ignore[misc]
    assert "tok-123" not in repr(s) and "https://x" in repr(s)
    assert s == build({"SYNAPSE_ACCESS_TOKEN": "tok-123", "SYNAPSE_HOST": "https://x"}) != settings.defaults()


def test_a_clean_environment_gives_storage_the_measured_defaults() -> None:
    from synapse_runtime.storage.config import StorageSettings

    st = StorageSettings.of(settings.defaults())
    assert {"split_below": st.split_below, "split_after": st.split_after, "chunk": st.chunk} == MEASURED


def test_fetch_in_a_clean_environment_runs_the_engine_with_the_measured_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the public ``fetch`` with no SYNAPSE_* variable set: the settings the download engine
    receives, not a copy computed beside it."""
    from synapse_runtime.storage import fetch, objects

    for name in knobs.KNOBS:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "model.bin").write_bytes(b"x" * 70_000)
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen: list[Any] = []
    real = objects.download

    def recording(fd: int, info: Any, opener: Any, st: Any, **kw: Any) -> None:
        seen.append(st)
        real(fd, info, opener, st, **kw)

    monkeypatch.setattr(objects, "download", recording)
    try:
        result = fetch(f"http://127.0.0.1:{server.server_address[1]}/model.bin", cache_dir=tmp_path / "cache")
    finally:
        server.shutdown()
        server.server_close()
    assert result.path.read_bytes() == b"x" * 70_000
    assert len(seen) == 1
    assert {"split_below": seen[0].split_below, "split_after": seen[0].split_after, "chunk": seen[0].chunk} == MEASURED
