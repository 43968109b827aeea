"""A single Garage node on 127.0.0.1 (scripts/garage.sh node): the suite's real S3 server.

moto accepts any signature and re-reads an object for every ranged GET; Garage verifies SigV4
strictly and stores checksums, so the storage tests run against both (tests/storage/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .netutil import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "garage.sh"
#: test-only credentials in Garage's key format (GK + 24 hex; 64 hex); this server holds no real data
KEY_ID = "GK5e1a9c0ffee0123456789abc"
SECRET = "5ec7e7a11d0e5e0b1d5ec7e7a11d0e5e0b1d5ec7e7a11d0e5e0b1d5ec7e7a11d"
REGION = "garage"


class GarageUnavailable(RuntimeError):
    """No garage binary could be found or built (see scripts/garage.sh bin)."""


@dataclass
class Garage:
    proc: subprocess.Popen
    endpoint: str
    access: str = KEY_ID
    secret: str = SECRET
    region: str = REGION

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def garage_bin() -> str:
    """The binary scripts/garage.sh resolves ($GARAGE_BIN, the cache, ../shared/tools, cargo)."""
    proc = subprocess.run([str(SCRIPT), "bin"], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise GarageUnavailable(proc.stderr.strip()[-2000:])
    return proc.stdout.strip().splitlines()[-1]


def start_garage(workdir: Path, timeout: float = 60.0) -> Garage:
    """Start a configured node (key with create-bucket permission) and wait until it is ready."""
    binary = garage_bin()
    workdir.mkdir(parents=True, exist_ok=True)
    s3, rpc, admin = free_port(), free_port(), free_port()
    ready = workdir / "ready"
    env = {**os.environ, "GARAGE_BIN": binary, "GARAGE_DIR": str(workdir / "node"),
           "GARAGE_S3_ADDR": f"127.0.0.1:{s3}", "GARAGE_RPC_ADDR": f"127.0.0.1:{rpc}",
           "GARAGE_ADMIN_ADDR": f"127.0.0.1:{admin}", "GARAGE_REGION": REGION, "GARAGE_KEY_ID": KEY_ID,
           "GARAGE_SECRET_KEY": SECRET, "GARAGE_READY_FILE": str(ready)}
    log = open(workdir / "garage.log", "wb")
    proc = subprocess.Popen([str(SCRIPT), "node"], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"garage did not start: {(workdir / 'garage.log').read_text()[-2000:]}")
        time.sleep(0.05)
    wait_port(s3)
    return Garage(proc, f"http://127.0.0.1:{s3}")
