"""What accelerators this run sees, for the ``start`` event.

Asked of ``nvidia-smi`` when it is on PATH (it is, under the NVIDIA container runtime), else
of the driver's ``/proc`` entries; no CUDA library is imported, so the probe costs nothing on
CPU-only machines and cannot fail a run.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC_GPUS = Path("/proc/driver/nvidia/gpus")


@dataclass
class GpuReport:
    gpus: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"


def _int(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None


def _from_nvidia_smi(exe: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [exe, "--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0].isdigit():
            gpus.append({
                "index": int(parts[0]),
                "name": parts[1],
                "memory_mb": _int(parts[2]) if len(parts) > 2 else None,
                "uuid": parts[3] if len(parts) > 3 else None,
            })
    return gpus


def _from_proc(root: Path) -> list[dict[str, Any]]:
    gpus = []
    for i, entry in enumerate(sorted(root.iterdir())):
        info = {}
        try:
            for line in (entry / "information").read_text().splitlines():
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
        except OSError:
            pass
        gpus.append({"index": i, "name": info.get("Model", "NVIDIA GPU"), "memory_mb": None, "uuid": info.get("GPU UUID")})
    return gpus


def detect_gpus(environ: Mapping[str, str], *, probe: bool = True) -> GpuReport:
    """GPUs visible to this process, and a sentence saying why there are none when so.

    ``probe``: the run's ``SYNAPSE_GPU_PROBE`` (its settings); ``environ``: the run's environment
    (env files included), where the device variables (``NVIDIA_VISIBLE_DEVICES``, ``PATH``) are read."""
    env = environ
    if not probe:
        return GpuReport(note="GPU probe disabled (SYNAPSE_GPU_PROBE=0); running on CPU")
    visible = env.get("NVIDIA_VISIBLE_DEVICES")
    if visible in ("none", "void", ""):
        return GpuReport(note=f"NVIDIA_VISIBLE_DEVICES={visible!r}: no GPU requested; running on CPU")
    exe = shutil.which("nvidia-smi", path=env.get("PATH"))
    if exe:
        try:
            gpus = _from_nvidia_smi(exe)
        except (OSError, subprocess.SubprocessError) as e:
            return GpuReport(note=f"nvidia-smi failed ({type(e).__name__}); running on CPU")
        if gpus:
            return GpuReport(gpus=gpus, note=f"{len(gpus)} GPU(s) via nvidia-smi")
        return GpuReport(note="nvidia-smi found no GPU; running on CPU")
    if PROC_GPUS.is_dir():
        gpus = _from_proc(PROC_GPUS)
        if gpus:
            return GpuReport(gpus=gpus, note=f"{len(gpus)} GPU(s) via {PROC_GPUS}")
    return GpuReport(note="no NVIDIA driver found (no nvidia-smi, no /proc/driver/nvidia); running on CPU")


__all__ = ["GpuReport", "detect_gpus"]
