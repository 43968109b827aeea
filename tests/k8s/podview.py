"""Run the runtime image with the pod's view a deploy/k8s manifest gives it, under plain `docker run`.

What the kubelet would do for the Job's pod template, read from the manifest itself:
  env                  values with $(VAR) expanded as Kubernetes does; fieldRef labels['job-name'] -> the job name,
                       labels['batch.kubernetes.io/controller-uid'] -> a uid per job name (job_uid)
  configMap / secret   a directory laid out as the kubelet projects one (`..data` -> a timestamped dir,
                       one symlink per key), mounted read-only where the manifest mounts it; secret
                       files root:<fsGroup> 0440 as defaultMode and fsGroup make them
  persistentVolumeClaim  a host directory (or a Docker volume) per claim, shared by every container
  emptyDir             a tmpfs (group fsGroup)
  securityContext      --user runAsUser:runAsGroup, --group-add fsGroup, --read-only, --cap-drop ALL,
                       no-new-privileges
  terminationMessagePath  a host file bind-mounted there (the kubelet creates it world-writable)
  resources            the memory limit (no GPU here: the runtime reports CPU)
Every container carries the label synapse-runtime-test=1 (and this session's id) for cleanup.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEST_LABEL = "synapse-runtime-test"
SESSION = uuid.uuid4().hex[:10]
LABELS = {TEST_LABEL: "1", f"{TEST_LABEL}.session": SESSION}
IMAGE = os.environ.get("SYNAPSE_TEST_IMAGE", "synapse-runtime:dev")
_QUANTITY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} ... failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return out


def project(directory: Path, data: dict[str, str | bytes], *, mode: int = 0o644, gid: int | None = None) -> Path:
    """A ConfigMap/Secret volume as the kubelet's atomic writer lays it out."""
    directory.mkdir(parents=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{uuid.uuid4().int % 10**9:09d}"
    real = directory / stamp
    real.mkdir()
    for key, value in data.items():
        f = real / key
        f.write_bytes(value if isinstance(value, bytes) else value.encode())
        f.chmod(mode)
        if gid is not None:
            os.chown(f, 0, gid)
    (directory / "..data").symlink_to(stamp)
    for key in data:
        (directory / key).symlink_to(f"..data/{key}")
    for d in (directory, real):
        d.chmod(0o755 if gid is None else 0o750)
        if gid is not None:
            os.chown(d, 0, gid)
    return directory


def _bytes(quantity: str) -> int:
    m = re.fullmatch(r"(\d+)([A-Za-z]*)", str(quantity))
    assert m, quantity
    return int(m.group(1)) * _QUANTITY.get(m.group(2), 1)


def job_uid(job_name: str) -> str:
    """The uid Kubernetes would give this session's Job of that name (pods see it in the controller-uid
    label); a test that runs a Job "again" passes another SYNAPSE_RUN_ID."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"synapse-runtime-test/{SESSION}/{job_name}"))


def expand_env(container: dict, job_name: str, overrides: dict[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), str(e["value"]))
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.labels['job-name']":
            env[e["name"]] = job_name
        elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.labels['batch.kubernetes.io/controller-uid']":
            env[e["name"]] = job_uid(job_name)
        else:
            raise AssertionError(f"env {e['name']}: no stand-in for {e.get('valueFrom')}")
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


@dataclass
class Pod:
    """One container started from a manifest's pod template."""

    name: str
    job_name: str
    env: dict[str, str]
    termination_log: Path
    grace: int
    argv: list[str] = field(default_factory=list)

    def start(self) -> None:
        docker("start", self.name)

    def wait(self, timeout: float = 300) -> int:
        out = docker("wait", self.name, timeout=timeout)
        return int(out.stdout.strip().splitlines()[-1])

    def logs(self) -> str:
        """stdout and stderr, as `kubectl logs` shows them."""
        out = docker("logs", self.name, check=False)
        return out.stdout + out.stderr

    def events(self) -> list[dict[str, Any]]:
        """stdout only: JSON lines, one event each (the contract)."""
        stdout = docker("logs", self.name, check=False).stdout
        return [json.loads(line) for line in stdout.splitlines() if line.strip()]

    def state(self) -> dict[str, Any]:
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.name).stdout)

    def termination_message(self) -> dict[str, Any] | None:
        text = self.termination_log.read_text()
        return json.loads(text) if text.strip() else None


class PodFactory:
    """Creates containers from a Job manifest's pod template; removes them (and its volumes) at close()."""

    def __init__(self, workdir: Path, claims: dict[str, str]) -> None:
        self.workdir = workdir
        self.claims = claims  # claimName -> host directory or Docker volume name
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def volume(self, prefix: str) -> str:
        name = f"{prefix}-{SESSION}-{uuid.uuid4().hex[:6]}"
        docker("volume", "create", *[f"--label={k}={v}" for k, v in LABELS.items()], name)
        self.volumes.append(name)
        return name

    def create(
        self,
        manifest: dict,
        *,
        job_name: str | None = None,
        configmaps: dict[str, dict[str, str]] | None = None,
        secrets: dict[str, dict[str, str]] | None = None,
        env: dict[str, str | None] | None = None,
        pod_suffix: str = "0",
    ) -> Pod:
        job_name = job_name or manifest["metadata"]["name"]
        pod = manifest["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        psc, csc = pod.get("securityContext", {}), container.get("securityContext", {})
        name = f"k8s-{job_name}-{pod_suffix}-{SESSION}-{uuid.uuid4().hex[:4]}"
        here = self.workdir / name
        here.mkdir(parents=True)
        args = ["create", "--name", name, "--hostname", f"{job_name}-{pod_suffix}"[:63]]
        args += [f"--label={k}={v}" for k, v in LABELS.items()]
        user, group = psc.get("runAsUser") or csc.get("runAsUser"), psc.get("runAsGroup", psc.get("runAsUser"))
        if user is not None:
            args += ["--user", f"{user}:{group}"]
        if psc.get("fsGroup") is not None:
            args += ["--group-add", str(psc["fsGroup"])]
        if csc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        for cap in (csc.get("capabilities") or {}).get("drop", []):
            args += ["--cap-drop", cap]
        if csc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        limits = (container.get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            args += ["--memory", str(_bytes(limits["memory"]))]
        for m in container.get("volumeMounts", []):
            vol, path = volumes[m["name"]], m["mountPath"]
            ro = ":ro" if m.get("readOnly") else ""
            if "configMap" in vol:
                data = (configmaps or {})[vol["configMap"]["name"]]
                items = vol["configMap"].get("items")
                if items:
                    data = {i["path"]: data[i["key"]] for i in items}
                src = project(here / f"cm-{m['name']}", data)
                args += ["-v", f"{src}:{path}{ro}"]
            elif "secret" in vol:
                sec = vol["secret"]
                data = (secrets or {}).get(sec["secretName"])
                if data is None:
                    assert sec.get("optional"), f"Secret {sec['secretName']} is required by the manifest"
                    data = {}
                src = project(here / f"secret-{m['name']}", data, mode=sec.get("defaultMode", 0o644), gid=psc.get("fsGroup"))
                args += ["-v", f"{src}:{path}{ro}"]
            elif "persistentVolumeClaim" in vol:
                args += ["-v", f"{self.claims[vol['persistentVolumeClaim']['claimName']]}:{path}{ro}"]
            elif "emptyDir" in vol:
                # At an image VOLUME path (/mnt/output) Docker gives the tmpfs the image directory's mode
                # (0775 root): group fsGroup makes it writable, as the kubelet's emptyDir is.
                owner = f",gid={psc['fsGroup']}" if psc.get("fsGroup") is not None else ""
                args += ["--tmpfs", f"{path}:rw,exec,mode=1777,size=512m{owner}"]
            else:
                raise AssertionError(f"volume {m['name']}: no stand-in")
        log = here / "termination-log"
        log.touch()
        log.chmod(0o666)
        args += ["-v", f"{log}:{container.get('terminationMessagePath', '/dev/termination-log')}"]
        full_env = expand_env(container, job_name, env or {})
        for k, v in full_env.items():
            args += ["-e", f"{k}={v}"]
        if container.get("command"):
            args += ["--entrypoint", container["command"][0]]
        args.append(container.get("image", IMAGE) if os.environ.get("SYNAPSE_TEST_IMAGE") is None else IMAGE)
        args += list(container.get("command", [])[1:]) + [str(a) for a in container.get("args", [])]
        docker(*args)
        self.containers.append(name)
        return Pod(name, job_name, full_env, log, int(pod.get("terminationGracePeriodSeconds", 30)), args)

    def close(self) -> None:
        for name in self.containers:
            docker("rm", "-f", "-v", name, check=False)
        for name in self.volumes:
            docker("volume", "rm", "-f", name, check=False)
        leftover = docker("ps", "-aq", "--filter", f"label={TEST_LABEL}.session={SESSION}", check=False).stdout.split()
        if leftover:
            docker("rm", "-f", "-v", *leftover, check=False)


def load_manifest(path: Path) -> dict:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


def docker_available() -> str | None:
    """None when usable, else why not."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    out = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return f"docker info failed: {out.stderr.strip()[-300:]}"
    return None
