"""Containers under load and on full disks.

* Eight runtime containers started together on one named cache volume, all fetching the same S3
  checkpoint: every run succeeds and verifies the checkpoint's sha256; the object crosses the
  network once (the runtime's own `download` events, and, independently, the S3 container's
  transmitted bytes); peak memory per container is reported.
* A full output volume (a 1 MiB tmpfs) under an action that writes more than fits, and a cache
  volume too small for the checkpoint: clean error events and the documented exit codes, no
  partial file left where a later run would take it for a complete one.

Peak memory comes from a small wrapper around the entrypoint (tini → wrapper → runtime, stdout
untouched): the runtime process's max RSS (``getrusage(RUSAGE_CHILDREN)``) and the container's
cgroup high-water mark (``memory.peak`` on cgroup v2, ``memory.max_usage_in_bytes`` on v1; that one
includes page cache, so it grows with the bytes written to the cache). The wrapper also lists given
directories after the run, so a tmpfs (gone with the container) can be inspected. It prints one
``synapse-test-report {json}`` line to stderr.

``SYNAPSE_LOAD_CONTAINERS`` (default 8) and ``SYNAPSE_LOAD_CHECKPOINT_MIB`` (default 64) size the
load test; with ``SYNAPSE_RELIABILITY_REPORT_DIR`` set, the figures go to ``container_load.json`` there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import check_stream
from tests.secrets import register

pytestmark = pytest.mark.docker

register("testing-secret")

CONTAINERS = int(os.environ.get("SYNAPSE_LOAD_CONTAINERS", "8"))
CKPT_MIB = int(os.environ.get("SYNAPSE_LOAD_CHECKPOINT_MIB", "64"))
REPORT_DIR = os.environ.get("SYNAPSE_RELIABILITY_REPORT_DIR")
CACHE = "/var/cache/synapse"
PYTHON = "/opt/synapse/venv/bin/python"
# The runtime streams the object to disk in chunks: its RSS must not grow with the object.
MAX_RSS_BYTES = 256 << 20

WRAPPER = r"""
import hashlib, json, os, resource, subprocess, sys
rc = subprocess.call([sys.executable, "/opt/synapse/entrypoint.py", *sys.argv[1:]])
report = {"rc": rc, "runtime_maxrss_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}
for path in ("/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"):
    try:
        with open(path) as f:
            report["cgroup_peak_bytes"] = int(f.read())
        report["cgroup_peak_source"] = path
        break
    except (OSError, ValueError):
        pass
listing = {}
for root in filter(None, os.environ.get("SYNAPSE_TEST_LIST", "").split(":")):
    files = []
    for dp, dns, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            files.append({"path": os.path.relpath(p, root), "size": os.lstat(p).st_size})
    try:
        st = os.statvfs(root)
        free = st.f_bavail * st.f_frsize
    except OSError:
        free = None
    listing[root] = {"files": files, "free_bytes": free}
    result = os.path.join(root, "result.json")
    if os.path.isfile(result):
        with open(result) as f:
            listing[root]["result.json"] = f.read()
report["listing"] = listing
print("synapse-test-report " + json.dumps(report), file=sys.stderr, flush=True)
sys.exit(rc)
"""


def wrapped() -> list[str]:
    return ["tini", "--", PYTHON, "-c", WRAPPER]


def wrapper_report(run: Any) -> dict[str, Any]:
    for line in reversed(run.stderr.splitlines()):
        if line.startswith("synapse-test-report "):
            return json.loads(line.split(" ", 1)[1])
    raise AssertionError(f"no wrapper report on stderr:\n{run.stderr[-3000:]}")


def ok(run: Any) -> Any:
    check_stream(run)
    assert not run.extra["bad_lines"], run.extra["bad_lines"][:5]
    return run


def container_tx_bytes(docker_client: Any, container_id: str) -> int:
    stats = docker_client.containers.get(container_id).stats(stream=False)
    return sum(n.get("tx_bytes", 0) for n in (stats.get("networks") or {}).values())


def report(name: str, data: dict[str, Any]) -> None:
    if REPORT_DIR:
        Path(REPORT_DIR).mkdir(parents=True, exist_ok=True)
        (Path(REPORT_DIR) / name).write_text(json.dumps(data, indent=1))


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / (1 << 20):.1f}"


# --------------------------------------------------------------------------------------------------------
# Eight containers, one cache volume.


def test_containers_at_once_on_one_cache_volume(run_image: Any, s3_server: Any, docker_volume: Any, docker_client: Any,
                                                concurrently: Any, capsys: pytest.CaptureFixture[str]) -> None:
    size = CKPT_MIB << 20
    blob = os.urandom(size)
    digest = hashlib.sha256(blob).hexdigest()
    bucket = s3_server.create_bucket()
    s3_server.client().upload_fileobj(io.BytesIO(blob), bucket, "ckpt/shared.bin")
    del blob
    uri = f"s3://{bucket}/ckpt/shared.bin"
    cache = docker_volume()
    env = {**s3_server.container_env(), "SYNAPSE_CHECKPOINT": uri, "SYNAPSE_CHECKPOINT_SHA256": digest}
    s3_id = s3_server.container.get_container_id()

    tx_before = container_tx_bytes(docker_client, s3_id)
    t0 = time.monotonic()
    starts = concurrently([
        (lambda: run_image.start(plugin="faults", action="noop", env=env, network=s3_server.network,
                                 volumes={cache: {"bind": CACHE, "mode": "rw"}}, entrypoint=wrapped()))
        for _ in range(CONTAINERS)
    ])
    started_s = time.monotonic() - t0
    runs = [ok(s.wait(timeout=300)) for s in starts]
    wall_s = time.monotonic() - t0
    tx_after = container_tx_bytes(docker_client, s3_id)

    assert all(r.exit_code == 0 for r in runs), [(r.exit_code, r.events[-2:], r.stderr[-500:]) for r in runs]
    finals = [r.of_type("download")[-1] for r in runs]
    assert all(d["uri"] == uri and d["total"] == size for d in finals), finals
    fetched = [r for r in runs if any(not d["cached"] and d["bytes"] > 0 for d in r.of_type("download"))]
    assert len(fetched) == 1, [r.of_type("download") for r in runs]
    transferred = sum(max([d["bytes"] for d in r.of_type("download") if not d["cached"]] or [0]) for r in runs)
    assert transferred == size, transferred
    assert sum(1 for d in finals if d["cached"]) == CONTAINERS - 1
    served = tx_after - tx_before  # what the S3 container sent, headers and all
    assert size <= served < 1.5 * size, f"the S3 server sent {served} bytes for a {size}-byte object"

    reports = [wrapper_report(r) for r in runs]
    rss = [rep["runtime_maxrss_bytes"] for rep in reports]
    peaks = [rep.get("cgroup_peak_bytes") for rep in reports]
    assert max(rss) < MAX_RSS_BYTES, rss
    downloader = runs.index(fetched[0])
    figures = {
        "containers": CONTAINERS, "checkpoint_bytes": size, "wall_s": round(wall_s, 2),
        "start_all_s": round(started_s, 2), "run_durations_s": [round(r.extra["duration_s"], 2) for r in runs],
        "downloads": len(fetched), "bytes_transferred_by_runtimes": transferred, "s3_server_tx_bytes": served,
        "downloader": downloader, "runtime_maxrss_bytes": rss, "cgroup_peak_bytes": peaks,
        "cgroup_peak_source": reports[0].get("cgroup_peak_source"),
    }
    report("container_load.json", figures)
    with capsys.disabled():
        print(f"\n{CONTAINERS} containers, one cache volume, {CKPT_MIB} MiB checkpoint: wall {wall_s:.1f} s "
              f"(all started after {started_s:.1f} s); downloads 1 (container {downloader}); S3 server sent "
              f"{mib(served)} MiB")
        for i, (r, a, b) in enumerate(zip(runs, rss, peaks)):
            print(f"  container {i}: {r.extra['duration_s']:.1f} s, runtime max RSS {mib(a)} MiB, "
                  f"cgroup peak {mib(b)} MiB{' (downloader)' if i == downloader else ''}")


# --------------------------------------------------------------------------------------------------------
# Full disks.


FILL_CONFIG = "name: fill\nactions:\n  fill: fill:fill\n"
FILL_CODE = '''
from pathlib import Path

from synapse_sdk.plugins import action


@action(name="fill")
def fill(params, ctx):
    """Writes a checkpoint of params["bytes"] bytes into the output directory, as a training action would."""
    target = Path(ctx.output_dir) / "checkpoint.bin"
    block = bytes(range(256)) * 256
    left = int(params["bytes"])
    with open(target, "wb") as f:
        while left > 0:
            f.write(block[:left])
            left -= len(block)
    return {"bytes": int(params["bytes"])}
'''


@pytest.fixture
def fill_plugin(tmp_path: Path) -> Path:
    plugin = tmp_path / "fill-plugin"
    plugin.mkdir()
    (plugin / "config.yaml").write_text(FILL_CONFIG)
    (plugin / "fill.py").write_text(FILL_CODE)
    for p in (plugin, *plugin.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return plugin


def test_full_output_volume_is_a_clean_action_error(run_image: Any, fill_plugin: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The output volume (1 MiB) is too small for the checkpoint the action writes (4 MiB)."""
    small = "/mnt/small"
    running = run_image.start(
        plugin_dir=fill_plugin, params={"bytes": 4 << 20}, entrypoint=wrapped(), termination_log=True,
        env={"SYNAPSE_OUTPUT_DIR": small, "SYNAPSE_TEST_LIST": small},
        tmpfs={"/tmp": "rw,nosuid,nodev,size=64m", small: "size=1m,uid=10001,gid=10001,mode=0775"},
    )
    run = ok(running.wait(timeout=120))
    rep = wrapper_report(run)
    assert run.exit_code == 1, (run.exit_code, run.events[-3:])  # docs/contract.md: the action failed
    err = run.error
    assert err is not None and err["code"] == 1
    text = f"{err['message']} {err.get('hint') or ''} {json.dumps(err.get('details'))}"
    assert "No space left on device" in err["message"], err
    assert small in text, f"the error does not name the output directory: {err}"
    assert err["message"].strip() and not err["message"].lstrip().startswith("Traceback"), err
    assert (err.get("details") or {}).get("location", "").startswith("/plugin/fill.py:"), err
    term = json.loads(run.extra["termination_message"])
    assert term["status"] == "failed" and term["exit_code"] == 1 and "No space left" in term["message"]
    listing = rep["listing"][small]
    # result.json is written when it fits (write-then-rename); when it does not, the stream says so
    if "result.json" in listing:
        result = json.loads(listing["result.json"])
        assert result["status"] == "failed" and result["exit_code"] == 1
    else:
        assert any("result.json" in e["message"] for e in run.of_type("error")), run.of_type("error")
    assert not [f for f in listing["files"] if f["path"].startswith(".result.json.")], listing  # no half-written temp
    with capsys.disabled():
        print(f"\nfull output volume: exit {run.exit_code}, {err['error_type']}: {err['message']} | hint: {err.get('hint')}"
              f" | result.json {'written' if 'result.json' in listing else 'not written'}; files {listing['files']}")


def test_cache_volume_too_small_is_storage_error_without_partial_file(run_image: Any, s3_server: Any,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The checkpoint (16 MiB) does not fit the cache (a 4 MiB tmpfs): exit 4, and nothing in the cache
    that a later run could take for the object."""
    size = 16 << 20
    bucket = s3_server.create_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="big/model.bin", Body=os.urandom(size))
    uri = f"s3://{bucket}/big/model.bin"
    running = run_image.start(
        plugin="faults", action="noop", entrypoint=wrapped(), termination_log=True, network=s3_server.network,
        env={**s3_server.container_env(), "SYNAPSE_CHECKPOINT": uri, "SYNAPSE_TEST_LIST": CACHE},
        tmpfs={"/tmp": "rw,nosuid,nodev,size=64m", CACHE: "size=4m,uid=10001,gid=10001,mode=0775"},
    )
    run = ok(running.wait(timeout=120))
    rep = wrapper_report(run)
    assert run.exit_code == 4, (run.exit_code, run.events[-3:])  # docs/contract.md: storage
    err = run.error
    assert err is not None and err["error_type"] == "StorageError", err
    assert "No space left on device" in err["message"] and uri in err["message"], err
    assert (err.get("details") or {}).get("cause") == "disk" or "disk" in json.dumps(err.get("details")), err
    assert err.get("hint") and "SYNAPSE_CACHE_DIR" in err["hint"], err
    assert not err["message"].lstrip().startswith("Traceback"), err
    assert run.result["status"] == "failed" and run.result["exit_code"] == 4
    files = rep["listing"][CACHE]["files"]
    data = [f for f in files if not f["path"].startswith("locks/")]
    assert not data, f"files left in the cache after a failed fetch: {data}"
    with capsys.disabled():
        print(f"\ncache too small: exit {run.exit_code}, {err['error_type']}: {err['message']} | hint: {err.get('hint')}"
              f" | cache files after: {files}")
