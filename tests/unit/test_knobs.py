"""The one table of SYNAPSE_* knobs: parsing, errors, and the docs kept true in both directions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synapse_runtime import knobs
from synapse_runtime.contract.settings import Settings, attribute
from synapse_runtime.actions.env import PluginEnvironment
from synapse_runtime.errors import ExitCode, ValidationError

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bSYNAPSE_[A-Z0-9_]*[A-Z0-9]\b")
#: How test harnesses read their own knobs (documented in docs/reliability.md, not runtime knobs).
HARNESS_READ = re.compile(r"""(?:environ\.get|getenv|environ\[)\(?\s*["'](SYNAPSE_[A-Z0-9_]+)["']""")


def _names_in(paths: list[Path]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in paths:
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def _code_files() -> list[Path]:
    """The package's code, less the table and the settings object built from it (both name every knob)."""
    skip = {ROOT / "synapse_runtime" / "contract" / "knobs.py", ROOT / "synapse_runtime" / "contract" / "settings.py"}
    return [p for p in (ROOT / "synapse_runtime").rglob("*.py") if p not in skip]


def _doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_synapse_variable_in_the_code_is_in_the_table_and_every_knob_is_read() -> None:
    """A knob is read where the code names it (the inputs read the environment mapping by name) or
    reads its :class:`Settings` attribute (``settings.s3_chunk_size``)."""
    in_code = _names_in(_code_files())
    assert sorted(set(in_code) - set(knobs.KNOBS)) == [], "register these in synapse_runtime/contract/knobs.py"
    code = "\n".join(p.read_text(encoding="utf-8") for p in _code_files())
    read = set(in_code) | {name for name in knobs.KNOBS if re.search(rf"\.{attribute(name)}\b", code)}
    assert sorted(set(knobs.KNOBS) - read) == [], "knobs that no code reads: remove them"
    assert set(Settings.__slots__) == {attribute(name) for name in knobs.KNOBS}


def test_every_knob_is_documented_and_every_documented_variable_is_read() -> None:
    documented = _names_in(_doc_files())
    assert sorted(set(knobs.KNOBS) - set(documented)) == [], "document these knobs (docs/*.md or README.md)"
    harness: set[str] = set()
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]:
        harness.update(HARNESS_READ.findall(path.read_text(encoding="utf-8")))
    unread = {name: sorted(where) for name, where in documented.items() if name not in knobs.KNOBS and name not in harness}
    assert unread == {}, "documented but read by nothing"


def test_contract_knob_table_is_the_generated_one() -> None:
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    assert knobs.markdown_table() in text, "regenerate with synapse_runtime.contract.knobs.markdown_table()"


@pytest.mark.parametrize("name,raw,expected", [
    ("SYNAPSE_PROGRESS_INTERVAL", " 0.5 ", 0.5),
    ("SYNAPSE_PROGRESS_INTERVAL", "", 0.2),
    ("SYNAPSE_GPU_PROBE", "OFF", False),
    ("SYNAPSE_GPU_PROBE", "yes", True),
    ("SYNAPSE_S3_PART_SIZE", "8MiB", 8 * 1024 * 1024),
    ("SYNAPSE_S3_PART_SIZE", "1g", 1024 ** 3),
    ("SYNAPSE_S3_STRATEGY", "Parallel", "parallel"),
    ("SYNAPSE_FETCH_RETRIES", "0", 0),
    ("SYNAPSE_ENV_FILE", "a.env:b.env", "a.env:b.env"),
])
def test_values_parse_to_their_type(name: str, raw: str, expected: object) -> None:
    assert knobs.get(name, {name: raw}) == expected


@pytest.mark.parametrize("name,raw", [
    ("SYNAPSE_PROGRESS_INTERVAL", "abc"), ("SYNAPSE_PROGRESS_INTERVAL", "nan"), ("SYNAPSE_PROGRESS_INTERVAL", "-1"),
    ("SYNAPSE_CHILD_GRACE", "inf"), ("SYNAPSE_GPU_PROBE", "2"), ("SYNAPSE_S3_CONCURRENCY", "0"),
    ("SYNAPSE_S3_CONCURRENCY", "8.5"), ("SYNAPSE_S3_PART_SIZE", "1k"), ("SYNAPSE_S3_STRATEGY", "turbo"),
    ("SYNAPSE_EXTRACT_MAX_BYTES", "lots"), ("SYNAPSE_FETCH_RETRIES", "9" * 5000),
])
def test_bad_values_name_variable_value_and_what_is_allowed(name: str, raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        knobs.validate({name: raw})
    err = info.value
    assert err.exit_code == ExitCode.INVALID_INPUT
    assert err.details == {"variable": name, "value": raw, "allowed": knobs.KNOBS[name].allowed}
    assert name in err.message and "expected" in err.message and name in (err.hint or "")


def test_validate_ignores_other_variables_and_text_knobs() -> None:
    knobs.validate({"PATH": "x", "SYNAPSE_UNKNOWN": "?", "SYNAPSE_ACTION": "anything at all"})


def test_plugin_environment_get_bool_uses_the_same_vocabulary() -> None:
    env = PluginEnvironment({"A": "On", "B": "f", "C": "", "D": "perhaps"})
    assert (env.get_bool("A"), env.get_bool("B"), env.get_bool("C")) == (True, False, False)
    with pytest.raises(ValueError):
        env.get_bool("D")
    for word in knobs.TRUE_WORDS | knobs.FALSE_WORDS:
        assert env.__class__({"X": word}).get_bool("X") is knobs.parse_bool(word)


def test_storage_settings_read_through_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from synapse_runtime.storage.config import StorageSettings

    monkeypatch.setenv("SYNAPSE_S3_CONCURRENCY", "3")
    monkeypatch.setenv("SYNAPSE_S3_PART_SIZE", "8M")
    monkeypatch.setenv("SYNAPSE_VERIFY_ETAG", "off")
    s = StorageSettings.of()
    assert (s.concurrency, s.part_size, s.verify_etag) == (3, 8 * 1024 * 1024, False)
    monkeypatch.setenv("SYNAPSE_S3_CONCURRENCY", "many")
    with pytest.raises(ValidationError, match="SYNAPSE_S3_CONCURRENCY"):
        StorageSettings.of()


def test_empty_directory_list_means_none_not_the_default() -> None:
    assert knobs.get("SYNAPSE_ENV_DIR", {}) == "/mnt/synapse/env"
    assert knobs.get("SYNAPSE_ENV_DIR", {"SYNAPSE_ENV_DIR": ""}) == ""  # the suites rely on this to turn it off
    assert knobs.get("SYNAPSE_JOB_ID", {"SYNAPSE_JOB_ID": " "}) is None  # other empty values: unset
