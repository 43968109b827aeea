"""Property-based tests (hypothesis) of what reads untrusted text: params (JSON, YAML, env), env files
and directories, and of redaction. Profiles (fixed seed and example count in CI): tests/hypothesis_profiles.py.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import assume, example, given
from hypothesis import strategies as st

from synapse_runtime.actions.env import read_dotenv, read_env_dir
from synapse_runtime.errors import ValidationError
from synapse_runtime.events import EventWriter, Redactor
from synapse_runtime.events.redact import MASK, MIN_SECRET_LENGTH
from synapse_runtime.contract.inputs import parse_params, resolve_params

# -- strategies ------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)
#: Numbers as text, some far beyond Python's 4300-digit int conversion limit (issue 12, item 8).
long_numbers = st.integers(1, 6000).map(lambda n: "9" * n)
env_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,15}", fullmatch=True)
#: Secrets as the runtime meets them: at least MIN_SECRET_LENGTH characters, any of them but the mask's.
secrets = st.text(min_size=MIN_SECRET_LENGTH, max_size=12).filter(lambda s: "*" not in s)


def _params_or_validation_error(raw: bytes, where: str, kind: str | None = None) -> Any:
    """The property of every params reader: a mapping, or a ValidationError; nothing else escapes."""
    try:
        data = parse_params(raw, where, kind=kind)
    except ValidationError as e:
        assert e.message and e.details is not None
        return None
    assert isinstance(data, dict)
    return data


# -- params: JSON, YAML, env ------------------------------------------------------------------------


@given(json_objects)
def test_json_params_round_trip(doc: dict) -> None:
    assert parse_params(json.dumps(doc).encode(), "params.json") == doc


@given(json_objects)
def test_yaml_params_round_trip(doc: dict) -> None:
    import yaml

    assert parse_params(yaml.safe_dump(doc, allow_unicode=False).encode(), "params.yaml") == doc


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode) | long_numbers.map(lambda n: f'{{"n": {n}}}'.encode()),
       st.sampled_from(["params.json", "params.yaml", "stdin", "params"]))
@example(b'{"n": ' + b"9" * 5000 + b"}", "params.json")
@example(b"n: " + b"9" * 5000, "params.yaml")
def test_any_bytes_give_params_or_a_validation_error(raw: bytes, where: str) -> None:
    _params_or_validation_error(raw, where)


@given(st.text(max_size=300) | json_objects.map(json.dumps) | long_numbers.map(lambda n: f'{{"n": {n}}}'))
def test_params_from_env_are_a_mapping_or_a_validation_error(text: str) -> None:
    assume("\x00" not in text)  # an env value cannot hold NUL
    try:
        value = resolve_params(None, {"SYNAPSE_ACTION_PARAMS": text}).value
    except ValidationError:
        return
    assert isinstance(value, dict)


# -- env files (dotenv) and env directories -----------------------------------------------------------


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


@given(st.dictionaries(env_keys, st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")), max_size=8),
       st.booleans())
def test_dotenv_round_trips_double_quoted_values(data: dict[str, str], export: bool) -> None:
    lines = ["# written by the property test", ""]
    lines += [f"{'export ' if export else ''}{k}={_quote(v)}" for k, v in data.items()]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "job.env"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert read_dotenv(path) == data


@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_env_file_gives_a_mapping_or_a_validation_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "job.env"
        path.write_bytes(raw)
        try:
            data = read_dotenv(path)
        except ValidationError as e:
            assert str(path) in e.message
            return
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())


@given(st.dictionaries(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,15}", fullmatch=True),
                       st.text(st.characters(exclude_categories=["Cs"])), max_size=6))
def test_env_directory_round_trips_one_file_per_key(data: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        for key, value in data.items():
            Path(d, key).write_bytes(value.encode("utf-8"))
        expected = {k: (v[:-1] if v.endswith("\n") and v.count("\n") == 1 else v) for k, v in data.items()}
        assert read_env_dir(d) == expected


# -- redaction ----------------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    """Every string of a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    return []


def _shape(text: str) -> Any:
    """The parsed document with every string (key or value) replaced by a marker and objects kept as
    lists of pairs (so keys masked into duplicates still count): what redaction must never change."""
    def mark(value: Any) -> Any:
        if isinstance(value, str):
            return "<str>"
        if isinstance(value, list):
            return [mark(v) for v in value]
        if isinstance(value, tuple):
            return ("object", [("<str>", mark(v)) for _, v in value[1]])
        return value

    return mark(json.loads(text, object_pairs_hook=lambda pairs: ("object", pairs)))


@st.composite
def docs_with_secrets(draw: st.DrawFn) -> tuple[Any, list[str]]:
    """A JSON document and secrets, some of them embedded in its strings (alone or inside longer text),
    some equal to JSON literals or numbers that also appear in it."""
    chosen = draw(st.lists(secrets | st.sampled_from(["null", "true", "false", "1234", "-1.5e10"]), min_size=1, max_size=4))
    holder = st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), st.sampled_from(chosen), st.text(max_size=5))
    leaves = json_scalars | holder | st.sampled_from([None, True, False, 1234, -1.5e10])
    doc = draw(st.recursive(leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6) | holder, c, max_size=4),
                            max_leaves=20))
    return doc, chosen


@given(docs_with_secrets(), st.booleans())
def test_redacted_json_is_valid_keeps_structure_and_hides_every_secret(case: tuple[Any, list[str]], ascii_only: bool) -> None:
    doc, chosen = case
    text = json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":"))
    out = Redactor(chosen).json(text)
    back = json.loads(out)  # always valid JSON
    for string in _strings(back):
        assert not any(secret in string for secret in chosen)
    assert _shape(out) == _shape(text)  # no literal, number, bracket or key count changed
    if not any(secret in string for string in _strings(doc) for secret in chosen):
        assert out == text  # nothing to hide: the line is untouched


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.lists(secrets, min_size=1, max_size=3))
def test_every_event_line_stays_json_whatever_the_secrets(fields: dict, chosen: list[str]) -> None:
    fields = {f"f_{k}": v for k, v in fields.items()}  # never shadow the common fields
    with tempfile.TemporaryFile() as f:
        writer = EventWriter(f.fileno(), job_id=chosen[0], redactor=Redactor(chosen))
        writer.emit("event", {"event": chosen[-1], "data": fields, "file": None})
        writer.close("end", {"status": "succeeded", "exit_code": 0, "duration_s": 0})
        f.seek(0)
        lines = f.read().decode("ascii").split("\n")[:-1]
    assert len(lines) == 2
    for line in lines:
        event = json.loads(line)
        for s in _strings(event):
            assert not any(secret in s for secret in chosen)
