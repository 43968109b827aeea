"""Test helpers for plugin authors: run a plugin as the container would, get events back.

Registered as a pytest plugin (entry point ``synapse_runtime``), it provides two fixtures:

* ``synapse_run`` runs an action in a subprocess on this machine (``synapse-runtime run``);
* ``synapse_container`` runs it in the runtime image with ``docker run`` (params mounted as a
  file, output on a temporary directory), for the full container contract.

Both return a :class:`RunResult`: exit code, parsed events, ``result.json``, raw stderr.  Every
stdout line is parsed as JSON, so a stray ``print`` reaching stdout fails the test at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    """What a run produced, parsed."""

    exit_code: int
    events: list[dict[str, Any]]
    result: dict[str, Any] | None
    stdout: str
    stderr: str
    output_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type]

    @property
    def end(self) -> dict[str, Any]:
        return self.events[-1]

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of_type("error")
        return errors[0] if errors else None

    @property
    def value(self) -> Any:
        """The action's result, from the ``result`` event."""
        results = self.of_type("result")
        return results[-1]["result"] if results else None


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """Each line must be one JSON object: anything else is a contract violation."""
    events = []
    for n, line in enumerate(stdout.splitlines(), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            raise AssertionError(f"stdout line {n} is not JSON ({e.msg}): {line[:200]!r}") from None
        if not isinstance(event, dict):
            raise AssertionError(f"stdout line {n} is not a JSON object: {line[:200]!r}")
        events.append(event)
    return events


def _read_result(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / "result.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_local(
    plugin: str | Path,
    action: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    output_dir: str | Path | None = None,
    args: Sequence[str] = (),
    timeout: float = 300,
    inherit_env: bool = True,
) -> RunResult:
    """Run ``synapse-runtime run`` in a subprocess with params written to a file."""
    out = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="synapse-out-"))
    cmd = [sys.executable, "-m", "synapse_runtime", "run", "--plugin", str(plugin), "--output", str(out)]
    if action:
        cmd += ["--action", action]
    params_file = None
    if params is not None:
        fd, params_file = tempfile.mkstemp(prefix="params-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(params, f)
        cmd += ["--params", params_file]
    cmd += list(args)
    full_env = {**(os.environ if inherit_env else {}), **(env or {})}
    full_env.setdefault("SYNAPSE_ENV_DIR", "")
    full_env.setdefault("SYNAPSE_SECRET_DIR", "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)
    finally:
        if params_file:
            os.unlink(params_file)
    return RunResult(proc.returncode, parse_events(proc.stdout), _read_result(out), proc.stdout, proc.stderr, out)


def run_container(
    plugin: str,
    action: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    image: str | None = None,
    env: Mapping[str, str] | None = None,
    plugin_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    docker_args: Sequence[str] = (),
    timeout: float = 600,
) -> RunResult:
    """``docker run`` the runtime image: params mounted as a file, output on a host directory.

    ``plugin`` is a plugin baked into the image (``/opt/synapse/plugins/NAME``) unless
    ``plugin_dir`` mounts one from the host at ``/plugin``. The container runs as the Kubernetes Job
    in deploy/k8s does (read-only root filesystem, a tmpfs at /tmp), so a plugin that writes where
    it may not fails here first. A run past ``timeout`` is killed, never left running. ``image``:
    default ``SYNAPSE_TEST_IMAGE`` (the settings of this process, read at the call, not at import).
    """
    import shutil
    import uuid

    if image is None:
        from .contract.settings import from_process

        image = from_process(strict=False).test_image  # a bad unrelated knob is the run's to report

    out = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="synapse-out-"))
    out.chmod(0o777)
    name = f"synapse-test-{uuid.uuid4().hex[:12]}"
    cmd = ["docker", "run", "--rm", "--name", name, "--label", "synapse-runtime-test=1",
           "--read-only", "--tmpfs", "/tmp", "-v", f"{out}:/mnt/output"]
    if plugin_dir:
        cmd += ["-v", f"{Path(plugin_dir).resolve()}:/plugin:ro"]
    else:
        cmd += ["-e", f"SYNAPSE_PLUGIN_DIR=/opt/synapse/plugins/{plugin}"]
    params_dir = None
    try:
        if params is not None:
            params_dir = tempfile.mkdtemp(prefix="synapse-params-")
            Path(params_dir, "params.json").write_text(json.dumps(params))
            os.chmod(params_dir, 0o755)
            os.chmod(Path(params_dir, "params.json"), 0o644)
            cmd += ["-v", f"{params_dir}/params.json:/mnt/synapse/params.json:ro"]
        if action:
            cmd += ["-e", f"SYNAPSE_ACTION={action}"]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        cmd += [*docker_args, image]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, timeout=60)
            raise
    finally:
        if params_dir:
            shutil.rmtree(params_dir, ignore_errors=True)
    return RunResult(proc.returncode, parse_events(proc.stdout), _read_result(out), proc.stdout, proc.stderr, out)


try:  # the fixtures, when pytest loads this module as a plugin
    import pytest

    @pytest.fixture
    def synapse_run(tmp_path: Path) -> Any:
        """``synapse_run(plugin, action, params, env=...)`` → RunResult (local subprocess)."""

        def _run(plugin: str | Path, action: str | None = None, params: Mapping[str, Any] | None = None, **kw: Any) -> RunResult:
            kw.setdefault("output_dir", tmp_path / f"out-{len(list(tmp_path.iterdir()))}")
            return run_local(plugin, action, params, **kw)

        return _run

    @pytest.fixture
    def synapse_container(tmp_path: Path) -> Any:
        """``synapse_container(plugin, action, params, env=...)`` → RunResult (docker run)."""

        def _run(plugin: str, action: str | None = None, params: Mapping[str, Any] | None = None, **kw: Any) -> RunResult:
            kw.setdefault("output_dir", tmp_path / f"out-{len(list(tmp_path.iterdir()))}")
            Path(kw["output_dir"]).mkdir(parents=True, exist_ok=True)
            return run_container(plugin, action, params, **kw)

        return _run

    def pytest_configure(config: Any) -> None:
        from .compat import install

        install()

except ImportError:  # pytest is a test-time dependency only
    pass


__all__ = ["RunResult", "parse_events", "run_container", "run_local"]
