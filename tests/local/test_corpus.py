"""The bad-input corpus (tests/corpus/NN-name/case.json): every case fails cleanly.

Each case gets: the documented exit code, one `error` event whose message names what is wrong
(and, for invalid input, how to fix it), no traceback as the only message, `result.json` saying
`failed`, and nothing written outside the output directory (and the checkpoint cache).

Storage cases (43 onward) say what to serve and fetch; everything is built at test time:

* ``"s3": {"objects": {KEY: SOURCE}, "credentials": false, "endpoint": "unreachable"}``: a fresh
  bucket on a moto S3 server (a subprocess on 127.0.0.1, started once for the module) holding the
  objects; the run gets dummy credentials (unless ``credentials`` is false) and the endpoint
  through boto3's own variables.
* ``"local_files": {NAME: SOURCE}``: files under ``{inputs}`` (for ``file://`` checkpoints).
* SOURCE is ``{"text": "..."}`` or ``{"archive": RECIPE}``, a malicious or broken archive made in
  Python (see ``RECIPES``): never a committed binary.
* ``"checkpoint"``: passed as ``--checkpoint``; strings in it, ``env`` and ``names`` may use
  ``{bucket}``, ``{endpoint}``, ``{inputs}``, ``{cache}``, ``{tmp}``.
* ``"cache": "unwritable"``: SYNAPSE_CACHE_DIR lies below a regular file.
* ``"names"``: strings the error message must contain (the URI, the endpoint, the cache dir);
  ``"hint"``: a string the error's hint must contain.
* ``"escapes"``: paths (with placeholders) that a malicious archive aims at: they must not exist.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from synapse_runtime.testing import RunResult, parse_events
from tests.conftest import PLUGINS, check_stream
from tests.secrets import register

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CASES = sorted(p for p in CORPUS.iterdir() if (p / "case.json").is_file())

#: dummy credentials for the storage cases (moto accepts anything); the secret must never be printed
ACCESS_KEY = "AKIACORPUSDUMMYKEY"
SECRET_KEY = "dummy-corpus-secret-not-real"
register(SECRET_KEY, "corpus-host-password", "corpus-token-not-real")  # 71-backend-host-with-password

MiB = 1024 * 1024


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 55
    assert sum(1 for p in CASES if "checkpoint" in (p / "case.json").read_text()) >= 15


# ---- archives, built in Python --------------------------------------------------------------
def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buf.getvalue()


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _ti(name: str, kind: bytes = tarfile.REGTYPE, **kw: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def _zip_symlink() -> bytes:
    link = zipfile.ZipInfo("model/weights")
    link.create_system = 3  # unix, so the mode bits count
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip([("model/config.json", b"{}"), (link, b"../../../../../../etc")])


RECIPES: dict[str, Callable[[dict[str, str]], bytes]] = {
    # extraction happens in {cache}/tmp/<work>/<stem>: four '..' reach {tmp}, where nothing may appear
    "zip_slip": lambda ctx: _zip([("model/config.json", b"{}"), ("../../../../zip-slip-escaped.txt", b"pwned")]),
    "zip_symlink": lambda ctx: _zip_symlink(),
    "zip_bomb": lambda ctx: _zip([("model/zeros.bin", bytes(16 * MiB))]),  # ~16 KiB packed, ratio ~1000:1
    "zip_many_files": lambda ctx: _zip([(f"model/f{i:04d}.txt", b"") for i in range(300)]),
    "tar_symlink_escape": lambda ctx: _tar([
        (_ti("model/weights", tarfile.SYMTYPE, linkname="../../../../../../etc"), None),
        (_ti("model/weights/evil.txt"), b"pwned"),
    ]),
    "tar_symlink_absolute": lambda ctx: _tar([(_ti("model/passwd", tarfile.SYMTYPE, linkname="/etc/passwd"), None)]),
    "tar_absolute_path": lambda ctx: _tar([
        (_ti("model/config.json"), b"{}"),
        (_ti(f"{ctx['tmp']}/tar-absolute-escaped.txt"), b"pwned"),
    ]),
    "tar_hardlink_escape": lambda ctx: _tar([(_ti("model/passwd", tarfile.LNKTYPE, linkname="../../../../etc/passwd"), None)]),
    "tar_device": lambda ctx: _tar([(_ti("model/mem", tarfile.CHRTYPE, devmajor=1, devminor=1), None)]),
    "targz_bomb": lambda ctx: _tar([(_ti("model/zeros.bin"), bytes(16 * MiB))], mode="w:gz"),
    "targz_truncated": lambda ctx: _tar([(_ti("model/weights.bin"), os.urandom(256 * 1024))], mode="w:gz")[: 100 * 1024],
}


def _source(spec: dict[str, Any], ctx: dict[str, str]) -> bytes:
    if "text" in spec:
        return spec["text"].encode()
    return RECIPES[spec["archive"]](ctx)


def _fill(value: Any, ctx: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in ctx.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [_fill(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ctx) for k, v in value.items()}
    return value


# ---- the S3 server, started once and only if a case needs it ----------------------------------
class _Moto:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""
        self._client: Any = None

    def client(self) -> Any:
        if self.proc is None:
            from tests.storage.netutil import start_moto

            self.proc, self.endpoint = start_moto()
            import boto3

            self._client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        return self._client

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def moto() -> Iterator[_Moto]:
    m = _Moto()
    yield m
    m.stop()


def _aws_free_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"SYNAPSE_ENV_DIR": "", "SYNAPSE_SECRET_DIR": ""})
    for k in ("SYNAPSE_ACTION_PARAMS", "SYNAPSE_CHECKPOINT", "SYNAPSE_CHECKPOINT_SHA256", "SYNAPSE_CHECKPOINT_EXTRACT",
              "SYNAPSE_CACHE_DIR"):
        env.pop(k, None)
    return env


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.lstat().st_size for p in sorted(root.rglob("*"))} if root.exists() else {}


@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_bad_input_fails_cleanly(case_dir: Path, tmp_path: Path, moto: _Moto) -> None:
    case = json.loads((case_dir / "case.json").read_text())
    work = tmp_path / "cwd"
    work.mkdir()
    out = tmp_path / "out"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cache = tmp_path / "cache"
    ctx = {"tmp": str(tmp_path), "inputs": str(inputs), "cache": str(cache)}
    env = _aws_free_env()
    env["SYNAPSE_CACHE_DIR"] = str(cache)  # never the user's ~/.cache
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(inputs / "no-credentials")
    env["AWS_CONFIG_FILE"] = str(inputs / "no-config")
    env["AWS_EC2_METADATA_DISABLED"] = "true"

    s3 = case.get("s3")
    if s3 is not None:
        client = moto.client()
        bucket = f"corpus-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        ctx["bucket"] = bucket
        endpoint = moto.endpoint
        if s3.get("endpoint") == "unreachable":
            from tests.storage.netutil import free_port

            endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        ctx["endpoint"] = endpoint
        for key, spec in s3.get("objects", {}).items():
            client.put_object(Bucket=bucket, Key=key, Body=_source(spec, ctx))
        env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "SYNAPSE_FETCH_RETRIES": "1",
                    "SYNAPSE_FETCH_BACKOFF": "0.01", "SYNAPSE_S3_CONNECT_TIMEOUT": "2"})
        if s3.get("credentials", True):
            env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
    for name, spec in case.get("local_files", {}).items():
        (inputs / name).write_bytes(_source(spec, ctx))
    if case.get("cache") == "unwritable":
        blocker = inputs / "cache-is-a-file"
        blocker.write_text("x")
        cache = blocker / "cache"
        ctx["cache"] = str(cache)
        env["SYNAPSE_CACHE_DIR"] = str(cache)
    inputs_before = _listing(inputs)

    plugin = case.get("plugin")
    plugin_path = case_dir / plugin if plugin and (case_dir / plugin).is_dir() else (
        PLUGINS / plugin if plugin and not plugin.startswith("/") else Path(plugin))
    env.update(_fill(case.get("env", {}), ctx))
    cmd = [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(plugin_path)]
    if case.get("action"):
        cmd += ["--action", case["action"]]
    if case.get("params_file"):
        cmd += ["--params", str(case_dir / case["params_file"])]
    if case.get("params_huge"):
        big = tmp_path / "huge.json"
        with big.open("wb") as f:
            f.write(b'{"tags": ["' + b"x" * case["params_huge"] + b'"]}')
        cmd += ["--params", str(big)]
    if case.get("env_file"):
        env["SYNAPSE_ENV_FILE"] = str(case_dir / case["env_file"])
    checkpoint = None
    if case.get("checkpoint"):
        checkpoint = _fill(case["checkpoint"], ctx)
        ctx["checkpoint"] = checkpoint
        cmd += ["--checkpoint", checkpoint]
    if case.get("output") == "file":
        blocker = tmp_path / "blocker"
        blocker.write_text("x")
        out = blocker / "out"
    cmd += ["--output", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, timeout=120)
    r = check_stream(RunResult(proc.returncode, parse_events(proc.stdout), None, proc.stdout, proc.stderr, out))

    assert r.exit_code == case["exit_code"], r.events[-2:]
    errors = r.of_type("error")
    assert len(errors) == 1
    e = errors[0]
    assert case["message"] in e["message"], e
    assert e["message"].strip() and not e["message"].startswith("Traceback")
    assert e["code"] == case["exit_code"]
    if case["exit_code"] in (2, 3, 4):
        assert e.get("hint") or e.get("details"), e
    if case["exit_code"] == 4:
        assert e.get("hint"), e  # storage errors say what to do
        if checkpoint is not None and case.get("cache") != "unwritable":
            assert (e.get("details") or {}).get("cause"), e
    if case.get("hint"):
        assert _fill(case["hint"], ctx) in (e.get("hint") or ""), e
    for needle in _fill(case.get("names", []), ctx):
        assert needle in e["message"], (needle, e)
    if case.get("field"):
        assert case["field"] in [x["loc"] for x in e["details"]["errors"]]
    assert proc.stderr == ""
    assert list(work.iterdir()) == []  # nothing written beside the output
    if case.get("output") != "file" and case["exit_code"] != 3 or out.exists():
        written = sorted(p.name for p in out.iterdir()) if out.exists() else []
        assert written in ([], ["result.json"])
        if written:
            assert json.loads((out / "result.json").read_text())["status"] == "failed"

    # nothing anywhere but the output, the cache and the (unchanged) inputs
    assert set(os.listdir(tmp_path)) <= {"cwd", "out", "inputs", "cache", "huge.json", "blocker"}, os.listdir(tmp_path)
    assert _listing(inputs) == inputs_before
    for target in _fill(case.get("escapes", []), ctx):
        assert not os.path.lexists(target), target
    if cache.is_dir():
        tmp_left = [n for n in os.listdir(cache / "tmp") if not n.startswith(".probe")] if (cache / "tmp").exists() else []
        assert tmp_left == [], tmp_left  # no temp files left behind
        assert set(os.listdir(cache)) <= {"objects", "tmp", "locks"}
        for meta in (cache / "objects").glob("*/meta.json"):  # a failed extraction is never published
            assert json.loads(meta.read_text())["kind"] != "extract", meta
