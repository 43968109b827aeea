"""Fixtures for the container suite: the images, an S3 server, and `docker run` of the runtime image.

Session-scoped:
  docker_client   docker SDK client; skips the suite without Docker, *fails* it when CI is set
  runtime_image   the runtime image: `make images` once per session, or $SYNAPSE_TEST_IMAGE as it is;
                  with SYNAPSE_TEST_SDK_MODE=real, the runtime image with the real synapse-sdk installed
                  (`make sdk-image` too: real-package mode, `make test-sdk-image`). Either way the image is
                  checked once to resolve `synapse_sdk` as the mode says (the shim, or upstream's package)
  s3_image        the S3 test server image (same `make images`, or $SYNAPSE_TEST_S3_IMAGE): Garage's by
                  default, moto's with SYNAPSE_TEST_S3_SERVER=moto
  test_network    a dedicated Docker network (removed at teardown)
  s3_server       the S3 server on that network (Garage: strict SigV4, stored checksums): `endpoint_url` for the host, `internal_endpoint_url`
                  for containers on `network` (and `internal_ip`), `client()`, `container_env()`
Function-scoped:
  run_image       `run_image(...)` runs the image as `docker run` would and returns a RunResult;
                  `run_image.start(...)` returns a handle for signals (`kill`, `stop`, `wait_for_event`)
  docker_volume   `docker_volume()` creates a named volume (removed at teardown)

The synapse-sdk mode (SYNAPSE_TEST_SDK_MODE: shim, the default, or real) also decides which tests run:
`@pytest.mark.sdk_mode("shim", reason=...)` keeps a test to that mode; in the other it is deselected
(never skipped) and the summary lists it with its reason.

Everything started here carries the label synapse-runtime-test=1 and this session's
synapse-runtime-test.session=<id>; at session end whatever still has this session's label is removed
(another session's containers on the same engine are left alone).
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Ryuk (testcontainers' reaper container) would need an image pulled from a registry; cleanup is ours.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TEST_LABEL = "synapse-runtime-test"
SESSION_LABEL = "synapse-runtime-test.session"
SESSION_ID = uuid.uuid4().hex[:12]
LABELS = {TEST_LABEL: "1", SESSION_LABEL: SESSION_ID}
S3_ALIAS = "s3"
PLUGINS_IN_IMAGE = "/opt/synapse/plugins"
# The container suite's S3 server: Garage (a real server: it refuses wrong signatures and regions) unless
# SYNAPSE_TEST_S3_SERVER=moto.  Test credentials only, in each server's key format; never real ones.
S3_SERVER_KIND = os.environ.get("SYNAPSE_TEST_S3_SERVER", "garage").strip().lower() or "garage"
if S3_SERVER_KIND == "moto":
    S3_PORT = 5000
    S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                      "AWS_DEFAULT_REGION": "us-east-1"}
else:
    S3_PORT = 3900
    S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "GKc0ffee0123456789abcdef01",
                      "AWS_SECRET_ACCESS_KEY": "c0ffee" * 10 + "0123", "AWS_DEFAULT_REGION": "garage"}


# The synapse-sdk mode of the image under test (docs/compat.md): "shim" (the runtime image: synapse_sdk is the
# runtime's stand-in) or "real" (make sdk-image: upstream's synapse-sdk installed beside the runtime).
SDK_MODES = ("shim", "real")
SDK_MODE = os.environ.get("SYNAPSE_TEST_SDK_MODE", "shim").strip().lower() or "shim"
if SDK_MODE not in SDK_MODES:
    raise pytest.UsageError(f"SYNAPSE_TEST_SDK_MODE={SDK_MODE!r}: say shim (the default) or real")
#: (node id, reason) of the tests left out because they check the other mode; listed in the summary.
_OTHER_MODE: list[tuple[str, str]] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# --------------------------------------------------------------------------------------------------------
# Collection: every test here is a `docker` test.


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.docker)
        marker = item.get_closest_marker("sdk_mode")
        if marker is None:
            kept.append(item)
            continue
        mode, reason = (marker.args[0] if marker.args else None), marker.kwargs.get("reason", "")
        if mode not in SDK_MODES or len(reason) < 10:
            raise pytest.UsageError(f"{item.nodeid}: write @pytest.mark.sdk_mode('shim' or 'real', reason='why "
                                    f"the test means nothing in the other mode'), not {marker}")
        if mode == SDK_MODE:
            kept.append(item)
        else:
            dropped.append(item)
            _OTHER_MODE.append((item.nodeid, reason))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str:
    return f"synapse-sdk mode of the runtime image under test: {SDK_MODE} (SYNAPSE_TEST_SDK_MODE)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _OTHER_MODE:
        terminalreporter.write_sep("-", f"deselected: {len(_OTHER_MODE)} test(s) of the other synapse-sdk mode "
                                        f"(this run: {SDK_MODE})")
        for nodeid, reason in _OTHER_MODE:
            terminalreporter.write_line(f"{nodeid}: {reason}")


def _unavailable(reason: str) -> None:
    """Without Docker: skip on a developer's machine, fail loudly in CI (never a silent green)."""
    if in_ci():
        pytest.fail(f"Docker is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"Docker is not available: {reason}")


# --------------------------------------------------------------------------------------------------------
# Docker, images, cleanup.


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        import docker
    except ImportError as e:  # the test extra is not installed
        _unavailable(f"the docker SDK is not installed ({e}); pip install -e '.[test]'")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure to reach the engine
        _unavailable(f"{type(e).__name__}: {e}")
    volumes_before = {v.name for v in client.volumes.list()}
    yield client
    _remove_labelled(client)
    leaked = _leaked_anonymous_volumes(client, volumes_before)
    client.close()
    if leaked:
        pytest.fail(f"the suite left {len(leaked)} anonymous volume(s) behind (removed now): {sorted(leaked)[:5]}; "
                    "remove containers with their volumes (container.remove(v=True), docker rm -v; the SDK's "
                    "containers.run(remove=True) does not)", pytrace=False)


@pytest.fixture(autouse=True)
def _requires_docker(docker_client: Any) -> None:
    """Every test in this directory needs the engine (skip/fail decided once, in docker_client)."""


def _remove_labelled(client: Any) -> None:
    """Remove this session's containers, then networks, then volumes (order matters: attachments)."""
    flt = {"label": [f"{TEST_LABEL}=1", f"{SESSION_LABEL}={SESSION_ID}"]}
    for container in client.containers.list(all=True, filters=flt):
        try:
            container.remove(force=True, v=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
    for network in client.networks.list(filters=flt):
        try:
            network.remove()
        except Exception:  # noqa: BLE001
            pass
    for volume in client.volumes.list(filters=flt):
        try:
            volume.remove(force=True)
        except Exception:  # noqa: BLE001
            pass


def _leaked_anonymous_volumes(client: Any, before: set[str]) -> list[str]:
    """Unnamed volumes (64 hex digits) that appeared during the session and no container uses: removed here,
    returned so the session fails (each image run creates two, for the image's VOLUMEs)."""
    leaked = []
    for volume in client.volumes.list(filters={"dangling": True}):
        name = volume.name
        if name in before or len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
            continue
        try:
            volume.remove(force=True)
        except Exception:  # noqa: BLE001 - another process's volume that just got attached
            continue
        leaked.append(name)
    return leaked


def _make_images(targets: Sequence[str] = ("images",)) -> dict[str, str]:
    """`make images` (and any other targets) once; returns the image names the Makefile used (`make print-images`)."""
    names = dict(
        line.split("=", 1)
        for line in subprocess.run(
            ["make", "-s", "print-images"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if "=" in line
    )
    timeout = float(os.environ.get("SYNAPSE_TEST_BUILD_TIMEOUT", "2700"))
    started = time.monotonic()
    proc = subprocess.run(
        ["make", *targets], cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        pytest.fail(
            f"`make {' '.join(targets)}` failed (exit {proc.returncode}) after {time.monotonic() - started:.0f} s\n"
            f"--- stdout (tail)\n{proc.stdout[-6000:]}\n--- stderr (tail)\n{proc.stderr[-6000:]}",
            pytrace=False,
        )
    names["_build_seconds"] = f"{time.monotonic() - started:.1f}"
    names["_build_log"] = proc.stdout[-20000:] + proc.stderr[-20000:]
    return names


@pytest.fixture(scope="session")
def built_images(docker_client: Any) -> dict[str, str]:
    """The images the tests use. $SYNAPSE_TEST_IMAGE (and $SYNAPSE_TEST_S3_IMAGE) reuse existing images as
    they are, with no build; otherwise `make images` runs once per session (its steps are cached), and in
    real-package mode `make sdk-image` with it, whose image is then the one under test (IMAGE)."""
    image = os.environ.get("SYNAPSE_TEST_IMAGE")
    if image:
        default_s3 = "synapse-runtime-s3:dev" if S3_SERVER_KIND == "moto" else "synapse-runtime-garage:dev"
        names = {"IMAGE": image, "S3_IMAGE": os.environ.get("SYNAPSE_TEST_S3_IMAGE", default_s3)}
    else:
        names = _make_images(("images", "sdk-image") if SDK_MODE == "real" else ("images",))
        if S3_SERVER_KIND != "moto":
            names["S3_IMAGE"] = names["GARAGE_IMAGE"]
        if SDK_MODE == "real":
            names["IMAGE"] = names["SDK_IMAGE"]
    for key in ("IMAGE", "S3_IMAGE"):
        try:
            docker_client.images.get(names[key])
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"image {names[key]} ({key}) is not there: {e}", pytrace=False)
    return names


# Where `synapse_sdk` resolves in an image, as the runner resolves it (the shim appended to sys.path last),
# without importing it (upstream's import takes seconds): the file, the installed distribution, shim or not.
SDK_PROBE = """
import importlib.metadata, importlib.util, json
from synapse_runtime.compat import SHIM_DIR, install
install()
spec = importlib.util.find_spec("synapse_sdk")
try:
    version = importlib.metadata.version("synapse-sdk")
except importlib.metadata.PackageNotFoundError:
    version = None
origin = spec.origin if spec else None
print(json.dumps({"file": origin, "version": version, "shim": bool(origin and origin.startswith(SHIM_DIR))}))
"""


def sdk_in_image(client: Any, image: str) -> dict[str, Any]:
    """Where `synapse_sdk` resolves in IMAGE: {"file", "version" (the installed synapse-sdk), "shim"}."""
    container = client.containers.run(image, entrypoint=["/opt/synapse/venv/bin/python", "-c", SDK_PROBE],
                                      detach=True, network_mode="none", labels=dict(LABELS))
    try:
        status = container.wait(timeout=120)
        out = container.logs(stdout=True, stderr=False).decode()
        assert status["StatusCode"] == 0, container.logs().decode()[-2000:]
    finally:
        container.remove(force=True, v=True)
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def runtime_image(built_images: dict[str, str], docker_client: Any) -> str:
    """The image under test, checked once to be in SDK_MODE: a run can never be shim mode silently."""
    image = built_images["IMAGE"]
    found = sdk_in_image(docker_client, image)
    if found["shim"] != (SDK_MODE == "shim"):
        pytest.fail(f"SYNAPSE_TEST_SDK_MODE={SDK_MODE} but in {image} synapse_sdk resolves to {found['file']} "
                    f"(synapse-sdk installed: {found['version']}); real-package mode needs `make sdk-image`'s image",
                    pytrace=False)
    return image


@pytest.fixture(scope="session")
def s3_image(built_images: dict[str, str]) -> str:
    return built_images["S3_IMAGE"]


# --------------------------------------------------------------------------------------------------------
# Network and S3.


@pytest.fixture(scope="session")
def test_network(docker_client: Any) -> Iterator[Any]:
    """A dedicated bridge network: containers on it reach each other by alias, nothing else joins it."""
    from testcontainers.core.network import Network

    network = Network(docker_network_kw={"labels": dict(LABELS), "driver": "bridge"})
    network.name = f"synapse-test-{SESSION_ID}"
    network.create()
    yield network
    try:
        network.remove()
    except Exception:  # noqa: BLE001 - containers still attached are removed by label, then retried
        _remove_labelled(docker_client)


@dataclass
class S3Server:
    endpoint_url: str  # from the host (the test process)
    internal_endpoint_url: str  # from containers on `network` (by alias)
    internal_ip: str  # the server's address on `network`
    network: str  # network name: pass as run_image(network=...)
    container: Any  # testcontainers DockerContainer
    credentials: dict[str, str] = field(default_factory=lambda: dict(S3_CREDENTIALS))

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.credentials["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def container_env(self) -> dict[str, str]:
        """The env a runtime container on `network` needs to use this server (boto3's own names)."""
        return {**self.credentials, "AWS_ENDPOINT_URL": self.internal_endpoint_url}

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server(s3_image: str, test_network: Any, docker_client: Any) -> Iterator[S3Server]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import (
        CompositeWaitStrategy,
        HealthcheckWaitStrategy,
        HttpWaitStrategy,
    )

    container = (
        DockerContainer(s3_image)
        .with_env("GARAGE_KEY_ID", S3_CREDENTIALS["AWS_ACCESS_KEY_ID"])  # ignored by moto's image
        .with_env("GARAGE_SECRET_KEY", S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        .with_exposed_ports(S3_PORT)
        .with_network(test_network)
        .with_network_aliases(S3_ALIAS)
        .with_name(f"synapse-test-s3-{SESSION_ID}")
        .with_kwargs(labels=dict(LABELS))
        .waiting_for(
            # Answers HTTP on the mapped port from the host (moto: ListBuckets unsigned; Garage refuses
            # that with 403, after signature checks), and the image's own health check (server up,
            # key and buckets made) says healthy.
            CompositeWaitStrategy(
                HttpWaitStrategy(S3_PORT, "/").for_status_code(200 if S3_SERVER_KIND == "moto" else 403),
                HealthcheckWaitStrategy(),
            ).with_startup_timeout(90)
        )
    )
    container.start()
    try:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(S3_PORT)
        attrs = docker_client.containers.get(container.get_container_id()).attrs
        internal_ip = attrs["NetworkSettings"]["Networks"][test_network.name]["IPAddress"]
        yield S3Server(
            endpoint_url=f"http://{host}:{port}",
            internal_endpoint_url=f"http://{S3_ALIAS}:{S3_PORT}",
            internal_ip=internal_ip,
            network=test_network.name,
            container=container,
        )
    finally:
        container.stop()


# --------------------------------------------------------------------------------------------------------
# Running the runtime image.


@dataclass
class RunningContainer:
    """A started runtime container: send signals, watch its events, then `wait()` for the RunResult."""

    container: Any
    output_dir: Path
    started: float
    cleanup: list[Callable[[], None]]
    termination_log: Path | None = None

    @property
    def id(self) -> str:
        return self.container.id

    def stdout_so_far(self) -> str:
        return self.container.logs(stdout=True, stderr=False).decode("utf-8", "replace")

    def events_so_far(self) -> list[dict[str, Any]]:
        """The complete JSON lines printed so far (a partial last line is left out)."""
        events = []
        for line in self.stdout_so_far().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events

    def wait_for_event(
        self, predicate: str | Callable[[dict[str, Any]], bool], timeout: float = 60, poll: float = 0.1
    ) -> dict[str, Any]:
        """Block until an event of that type (or matching the predicate) is on stdout."""
        match = (lambda e: e.get("type") == predicate) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events_so_far():
                if match(event):
                    return event
            self.container.reload()
            if self.container.status == "exited":
                break
            time.sleep(poll)
        raise AssertionError(
            f"no event matching {predicate!r} within {timeout}s; stdout so far:\n{self.stdout_so_far()[-4000:]}"
            f"\nstderr:\n{self.container.logs(stdout=False, stderr=True).decode('utf-8', 'replace')[-4000:]}"
        )

    def kill(self, signal: str | int = "SIGTERM") -> None:
        """`docker kill -s SIGNAL`: the signal goes to PID 1 (tini), which forwards it."""
        self.container.kill(signal=signal)

    def stop(self, grace: float = 10) -> None:
        """`docker stop -t GRACE`: STOPSIGNAL, then SIGKILL after the grace period."""
        self.container.stop(timeout=int(grace))

    def wait(self, timeout: float = 600) -> Any:
        """Wait for exit; returns synapse_runtime.testing.RunResult (extra: duration_s, termination_message,
        container_id, bad_lines). Non-JSON stdout lines are kept in extra['bad_lines'] (assert on them)."""
        from synapse_runtime.testing import RunResult

        try:
            status = self.container.wait(timeout=timeout)
        except Exception as e:  # noqa: BLE001 - requests' ReadTimeout / ConnectionError
            self.container.kill()
            raise AssertionError(
                f"container did not exit within {timeout}s ({type(e).__name__}); stdout so far:\n"
                f"{self.stdout_so_far()[-4000:]}"
            ) from None
        duration = time.monotonic() - self.started
        stdout = self.container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = self.container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        events, bad = [], []
        for line in stdout.splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                bad.append(line)
                continue
            (events if isinstance(event, dict) else bad).append(event if isinstance(event, dict) else line)
        result_path = self.output_dir / "result.json"
        result = json.loads(result_path.read_text()) if result_path.is_file() else None
        termination = None
        if self.termination_log is not None and self.termination_log.exists():
            termination = self.termination_log.read_text() or None
        run = RunResult(
            exit_code=int(status["StatusCode"]),
            events=events,
            result=result,
            stdout=stdout,
            stderr=stderr,
            output_dir=self.output_dir,
            extra={
                "duration_s": duration,
                "termination_message": termination,
                "container_id": self.container.id,
                "bad_lines": bad,
            },
        )
        self.close()
        return run

    def close(self) -> None:
        try:
            self.container.remove(force=True, v=True)
        except Exception:  # noqa: BLE001 - already removed
            pass
        while self.cleanup:
            self.cleanup.pop()()


class ImageRunner:
    """Runs the runtime image the way `docker run` would, with the contract's mounts spelled out.

    Defaults follow the hardened deployment: read-only root filesystem, a tmpfs at /tmp, the image's own
    user, no host environment (only what `env` gives: the host's *_CA_BUNDLE paths would not exist inside).
    """

    def __init__(self, client: Any, image: str, tmp_path: Path) -> None:
        self.client = client
        self.image = image
        self.tmp_path = tmp_path
        self._counter = itertools.count(1)
        self._running: list[RunningContainer] = []

    def _dir(self, prefix: str) -> Path:
        path = self.tmp_path / f"{prefix}-{next(self._counter)}"
        path.mkdir(parents=True)
        return path

    def start(
        self,
        args: Sequence[str] | str = (),
        *,
        plugin: str | None = None,
        plugin_dir: str | Path | None = None,
        action: str | None = None,
        params: Mapping[str, Any] | None = None,
        params_name: str = "params.json",
        env: Mapping[str, str] | None = None,
        env_dir: Mapping[str, str] | None = None,
        files: Mapping[str, str | bytes] | None = None,
        volumes: Mapping[str, Mapping[str, str]] | None = None,
        output_dir: Path | None = None,
        network: str | None = None,
        user: str | None = None,
        read_only: bool = True,
        tmpfs: Mapping[str, str] | None = None,
        termination_log: bool = False,
        entrypoint: str | Sequence[str] | None = None,
        image: str | None = None,
        name: str | None = None,
        **docker_kwargs: Any,
    ) -> RunningContainer:
        """Start the image detached.

        plugin       a plugin baked in the image: sets SYNAPSE_PLUGIN_DIR=/opt/synapse/plugins/NAME
        plugin_dir   a host plugin directory mounted read-only at /plugin (the contract's default)
        action       sets SYNAPSE_ACTION
        params       written to a host file mounted read-only at /mnt/synapse/<params_name>
        env_dir      {KEY: value} projected like a Kubernetes ConfigMap/Secret volume (..data symlinks)
                     and mounted read-only at /mnt/synapse/env (the contract's SYNAPSE_ENV_DIR default)
        files        {container path: content}: extra read-only files (single-file bind mounts)
        volumes      docker SDK `volumes` entries, e.g. {volume_name: {"bind": "/var/cache/synapse", "mode": "rw"}}
        output_dir   host directory for /mnt/output (default: a fresh one under tmp_path)
        termination_log  mount a host file at /dev/termination-log (see extra['termination_message'])
        """
        environment = dict(env or {})
        if plugin is not None:
            environment.setdefault("SYNAPSE_PLUGIN_DIR", f"{PLUGINS_IN_IMAGE}/{plugin}")
        if action is not None:
            environment.setdefault("SYNAPSE_ACTION", action)
        mounts: dict[str, dict[str, str]] = {}

        out = output_dir or self._dir("output")
        out.mkdir(parents=True, exist_ok=True)
        out.chmod(0o777)  # the image's user (uid 10001) writes here
        mounts[str(out)] = {"bind": "/mnt/output", "mode": "rw"}
        if plugin_dir is not None:
            mounts[str(Path(plugin_dir).resolve())] = {"bind": "/plugin", "mode": "ro"}
        if params is not None:
            pdir = self._dir("params")
            path = pdir / params_name
            if params_name.endswith((".yaml", ".yml")):
                import yaml

                path.write_text(yaml.safe_dump(dict(params)))
            else:
                path.write_text(json.dumps(params))
            path.chmod(0o644)
            mounts[str(path)] = {"bind": f"/mnt/synapse/{params_name}", "mode": "ro"}
        if env_dir is not None:
            mounts[str(project_env_dir(self._dir("envdir"), env_dir))] = {"bind": "/mnt/synapse/env", "mode": "ro"}
        for cpath, content in (files or {}).items():
            host = self._dir("file") / Path(cpath).name
            host.write_bytes(content.encode() if isinstance(content, str) else content)
            host.chmod(0o644)
            mounts[str(host)] = {"bind": cpath, "mode": "ro"}
        for key, spec in (volumes or {}).items():
            mounts[key] = dict(spec)
        term = None
        if termination_log:
            term = self._dir("termination") / "termination-log"
            term.touch()
            term.chmod(0o666)
            mounts[str(term)] = {"bind": "/dev/termination-log", "mode": "rw"}

        command = shlex.split(args) if isinstance(args, str) else list(args)
        kwargs: dict[str, Any] = {
            "command": command,
            "environment": environment,
            "volumes": mounts,
            "read_only": read_only,
            "tmpfs": dict(tmpfs) if tmpfs is not None else {"/tmp": "rw,nosuid,nodev,size=256m"},
            "labels": dict(LABELS),
            "detach": True,
            "stdin_open": False,
            "name": name or f"synapse-test-{SESSION_ID}-{uuid.uuid4().hex[:8]}",
        }
        if network is not None:
            kwargs["network"] = network
        if user is not None:
            kwargs["user"] = user
        if entrypoint is not None:
            kwargs["entrypoint"] = entrypoint
        kwargs.update(docker_kwargs)
        started = time.monotonic()
        container = self.client.containers.run(image or self.image, **kwargs)
        running = RunningContainer(container, out, started, cleanup=[], termination_log=term)
        self._running.append(running)
        return running

    def __call__(self, args: Sequence[str] | str = (), *, timeout: float = 600, **kwargs: Any) -> Any:
        """Run to completion: `run_image(plugin="faults", action="noop")` → RunResult."""
        return self.start(args, **kwargs).wait(timeout=timeout)

    def close(self) -> None:
        for running in self._running:
            running.close()
        self._running.clear()


def project_env_dir(root: Path, values: Mapping[str, str]) -> Path:
    """Lay out {KEY: value} as kubelet projects a ConfigMap/Secret volume:
    root/..2026_..._<id>/KEY (the data), root/..data -> that dir, root/KEY -> ..data/KEY (symlinks)."""
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + uuid.uuid4().hex[:9]
    data = root / stamp
    data.mkdir(parents=True)
    for key, value in values.items():
        (data / key).write_text(value)
        (data / key).chmod(0o644)
    (root / "..data").symlink_to(stamp)
    for key in values:
        (root / key).symlink_to(f"..data/{key}")
    root.chmod(0o755)
    data.chmod(0o755)
    return root


@pytest.fixture
def run_image(docker_client: Any, runtime_image: str, tmp_path: Path) -> Iterator[ImageRunner]:
    runner = ImageRunner(docker_client, runtime_image, tmp_path)
    yield runner
    runner.close()


@pytest.fixture
def docker_volume(docker_client: Any) -> Iterator[Callable[[], str]]:
    """`docker_volume()` → the name of a fresh named volume, removed after the test."""
    created: list[Any] = []

    def make() -> str:
        volume = docker_client.volumes.create(name=f"synapse-test-{SESSION_ID}-{uuid.uuid4().hex[:8]}", labels=dict(LABELS))
        created.append(volume)
        return volume.name

    yield make
    for volume in created:
        try:
            volume.remove(force=True)
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture(scope="session")
def stopwatch() -> Callable[[], float]:
    """A monotonic clock, for tests that time things (signals, grace periods)."""
    return time.monotonic


def _run_concurrently(fns: Sequence[Callable[[], Any]]) -> list[Any]:
    results: list[Any] = [None] * len(fns)
    errors: list[BaseException] = []

    def call(i: int, fn: Callable[[], Any]) -> None:
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=call, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


@pytest.fixture(scope="session")
def concurrently() -> Callable[[Sequence[Callable[[], Any]]], list[Any]]:
    """`concurrently([lambda: run_image(...), ...])` → their results, run in parallel threads."""
    return _run_concurrently
