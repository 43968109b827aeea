"""The images themselves: how they are built and what they are, before any contract test uses them."""

from __future__ import annotations

import json
import time
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml

from tests.ci import skip_or_fail

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent.name for p in (REPO / "plugins").glob("*/config.yaml"))
PY = "/opt/synapse/venv/bin/python"

pytestmark = pytest.mark.docker


def _python(run_image, code: str, **kw):
    """Run a Python snippet in the image (entrypoint replaced), hardened defaults kept."""
    return run_image(entrypoint=[PY, "-c", code], **kw)


# ------------------------------------------------------------------------------------------------ metadata


def test_image_config(docker_client, runtime_image):
    config = docker_client.images.get(runtime_image).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"][:2] == ["tini", "--"], config["Entrypoint"]
    assert config["Entrypoint"][2:] == [PY, "/opt/synapse/entrypoint.py"]
    assert set(config["Volumes"] or {}) == {"/mnt/output", "/var/cache/synapse"}
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    # The contract's default plugin location is /plugin: the image must not override it.
    assert "SYNAPSE_PLUGIN_DIR" not in env


def test_oci_labels(docker_client, runtime_image):
    labels = docker_client.images.get(runtime_image).attrs["Config"]["Labels"] or {}
    for key in ("title", "description", "version", "revision", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), f"label org.opencontainers.image.{key} missing"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.version"] == project["version"]
    assert labels["io.synapse.runtime.plugins-dir"] == "/opt/synapse/plugins"


# ------------------------------------------------------------------------------------------------ contents


def test_runs_as_non_root(run_image):
    run = _python(run_image, "import os; print(os.getuid(), os.getgid(), os.geteuid())")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.split() == ["10001", "10001", "10001"]


def test_python_version_and_runtime_importable(run_image):
    run = _python(
        run_image,
        "import sys, json, importlib.metadata as m, synapse_runtime, synapse_runtime.cli;"
        "print(json.dumps({'py': sys.version_info[:3], 'version': m.version('synapse-runtime'),"
        " 'file': synapse_runtime.__file__, 'prefix': sys.prefix}))",
    )
    assert run.exit_code == 0, run.stderr
    info = json.loads(run.stdout)
    assert tuple(info["py"]) >= (3, 12)
    assert info["prefix"] == "/opt/synapse/venv"
    assert info["file"].startswith("/opt/synapse/venv/lib/")
    assert info["version"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_console_script_and_help(run_image):
    run = run_image(["--help"])
    assert run.exit_code == 0, run.stderr
    assert "run" in run.stdout and "list" in run.stdout
    script = run_image(entrypoint=["synapse-runtime", "--version"])
    assert script.exit_code == 0, script.stderr


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_plugins_baked(run_image, name):
    """Each example in plugins/ is in the image and its actions are listed as in its config.yaml."""
    config = yaml.safe_load((REPO / "plugins" / name / "config.yaml").read_text())
    run = run_image(["list", "--plugin", f"/opt/synapse/plugins/{name}"])
    assert run.exit_code == 0, run.stderr
    listed = json.loads(run.stdout)
    assert {a["name"] for a in listed["actions"]} == set(config["actions"])


def test_plugin_requirements_installed(run_image):
    """Every example plugin's requirements.txt was installed from the wheelhouse, and they resolve."""
    reqs = []
    for path in sorted((REPO / "plugins").glob("*/requirements.txt")):
        if (path.parent / ".own-image").exists():
            continue  # built into its own image (scripts/plugin-image.sh, tests/integration/test_plugin_image.py)
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                reqs.append(line)
    if not reqs:
        skip_or_fail("no example plugin has a requirements.txt: the wheelhouse install is not checked")
    code = (
        "import json, re, importlib.metadata as m\n"
        f"reqs = {reqs!r}\n"
        "missing = []\n"
        "for r in reqs:\n"
        "    name = re.split(r'[<>=!~;\\[ ]', r, 1)[0]\n"
        "    try: m.version(name)\n"
        "    except m.PackageNotFoundError: missing.append(r)\n"
        "print(json.dumps(missing))\n"
    )
    run = _python(run_image, code)
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout) == []
    check = run_image(entrypoint=[PY, "-m", "pip", "check"])
    assert check.exit_code == 0, check.stdout + check.stderr


# ------------------------------------------------------------------------------------------------ hardening


def test_read_only_rootfs_noop_action(run_image):
    """With only /mnt/output, the cache and a tmpfs writable, an action runs and result.json is written."""
    run = run_image(plugin="faults", action="noop", read_only=True)
    assert run.exit_code == 0, run.stderr
    assert not run.extra["bad_lines"], run.extra["bad_lines"]
    assert run.events[-1]["type"] == "end" and run.events[-1]["status"] == "succeeded"
    assert run.result is not None and run.result["status"] == "succeeded"


def test_no_writes_outside_volumes_and_tmp(run_image):
    """Without --read-only, a run still writes nothing to the image's filesystem (bytecode precompiled,
    no caches in $HOME): `docker diff` is empty but for the writable places."""
    running = run_image.start(plugin="digits", action="evaluate", read_only=False, tmpfs={})
    try:
        running.container.wait(timeout=300)
        changes = running.container.diff() or []
    finally:
        result = running.wait(timeout=60)
    allowed = ("/tmp", "/mnt/output", "/var/cache/synapse", "/dev", "/proc", "/sys", "/etc/hostname",
               "/etc/hosts", "/etc/resolv.conf", "/mnt", "/var", "/var/cache")
    unexpected = [c["Path"] for c in changes if not c["Path"].startswith(allowed)]
    assert not unexpected, f"written outside the volumes: {unexpected[:20]} (exit {result.exit_code})"


def test_pyc_precompiled(run_image):
    """Every .py of the venv and the plugins has a current .pyc, so a read-only root costs no compile."""
    code = (
        "import importlib.util, pathlib, sys\n"
        "stale = []\n"
        "for root in ('/opt/synapse/plugins', sys.prefix + '/lib'):\n"
        "    for py in pathlib.Path(root).rglob('*.py'):\n"
        "        if 'site-packages/pip/' in str(py) or '/_vendor/' in str(py): continue\n"
        "        pyc = pathlib.Path(importlib.util.cache_from_source(str(py)))\n"
        "        if not pyc.exists(): stale.append(str(py))\n"
        "print(len(stale)); print('\\n'.join(stale[:20]))\n"
    )
    run = _python(run_image, code)
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines()[0] == "0", run.stdout


def test_tini_is_pid1_and_forwards_sigterm(run_image):
    """PID 1 is tini; SIGTERM sent to the container reaches the runtime, which exits 143 promptly."""
    running = run_image.start(plugin="faults", action="slow", params={"seconds": 60})
    running.wait_for_event("start", timeout=60)
    pid1 = running.container.exec_run(["cat", "/proc/1/comm"]).output.decode().strip()
    assert pid1 == "tini"
    children = running.container.exec_run(["sh", "-c", "cat /proc/[0-9]*/comm"]).output.decode().split()
    assert "python" in children or any(c.startswith("python") for c in children), children
    t0 = time.monotonic()
    running.kill("SIGTERM")
    run = running.wait(timeout=60)
    assert run.exit_code == 143, (run.exit_code, run.stderr[-2000:])
    assert time.monotonic() - t0 < 30


# ------------------------------------------------------------------------------------------------ the S3 image


def test_s3_image_answers_from_host(s3_server):
    s3 = s3_server.client()
    bucket = s3_server.create_bucket()
    body = uuid.uuid4().bytes * 1000
    s3.put_object(Bucket=bucket, Key="dir/object.bin", Body=body)
    assert s3.get_object(Bucket=bucket, Key="dir/object.bin")["Body"].read() == body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["dir/object.bin"]


def test_s3_reachable_from_containers_on_the_network(s3_server, run_image):
    """The runtime image's own boto3 reaches the server by its network alias (as the tests' runs do)."""
    bucket = s3_server.create_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="hello.txt", Body=b"hello from the host")
    code = (
        "import boto3, os\n"
        "s3 = boto3.client('s3')\n"
        f"print(s3.get_object(Bucket={bucket!r}, Key='hello.txt')['Body'].read().decode())\n"
    )
    run = _python(run_image, code, env=s3_server.container_env(), network=s3_server.network)
    assert run.exit_code == 0, run.stderr
    assert run.stdout.strip() == "hello from the host"


# ------------------------------------------------------------------------------------------------ compose


def _compose_command() -> list[str] | None:
    import shutil
    import subprocess

    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_compose_end_to_end(runtime_image, s3_image):
    """compose.test.yml, as documented: train, upload to S3, fetch the checkpoint back, evaluate."""
    import os
    import subprocess

    compose = _compose_command()
    if compose is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("neither docker-compose nor `docker compose` is installed (CI=true)")
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    project = f"synapse-test-{uuid.uuid4().hex[:8]}"
    base = [*compose, "-f", str(REPO / "compose.test.yml"), "-p", project]
    env = {**os.environ, "SYNAPSE_IMAGE": runtime_image, "SYNAPSE_S3_IMAGE": s3_image}
    try:
        proc = subprocess.run(
            [*base, "up", "--abort-on-container-exit", "--exit-code-from", "runtime", "--no-color"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        )
    finally:
        subprocess.run([*base, "down", "-v", "--remove-orphans"], cwd=REPO, env=env, capture_output=True, timeout=120)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    # The runtime service's JSON lines, with compose's "runtime_1  | " prefixes removed.
    events = []
    for line in proc.stdout.splitlines():
        prefix, sep, rest = line.partition("| ")
        if sep and prefix.strip().startswith("runtime") and rest.startswith("{"):
            events.append(json.loads(rest))
    ends = [e for e in events if e["type"] == "end"]
    assert [e["status"] for e in ends] == ["succeeded", "succeeded"], log[-6000:]
    starts = [e["action"] for e in events if e["type"] == "start"]
    assert starts == ["train", "evaluate"]
    fetched = [e for e in events if e["type"] == "download" and e.get("direction") != "upload"]
    assert fetched and fetched[0]["uri"] == "s3://models/digits-e2e/model.zip"
