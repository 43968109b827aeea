"""The image runs under any uid: `--user "$(id -u):$(id -g)"` leaves the output files the caller's own,
and OpenShift's arbitrary uids (gid 0) write the output and cache volumes as the default user does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("uid,gid", [(4242, 4242), (1000650000, 0)], ids=["any-uid", "openshift-uid-gid0"])
def test_arbitrary_uid_writes_output_owned_by_it(run_image, docker_volume, tmp_path: Path, uid: int, gid: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, uid, gid)  # the caller's own directory, as `mkdir out` gives a user
    out.chmod(0o755)
    cache = docker_volume()  # a fresh named volume starts as the image's /var/cache/synapse (its mode)
    run = run_image(
        plugin="text-tools", action="slugify", params={"titles": ["Any Uid Works"]},
        output_dir=out, user=f"{uid}:{gid}",
        volumes={cache: {"bind": "/var/cache/synapse", "mode": "rw"}},
    )
    assert run.exit_code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = out / "result.json"
    assert json.loads(result.read_text())["status"] == "succeeded"
    for path in out.rglob("*"):
        st = path.lstat()
        assert (st.st_uid, st.st_gid) == (uid, gid), f"{path} owned by {st.st_uid}:{st.st_gid}"


def test_arbitrary_uid_can_use_the_cache_volume(run_image, docker_volume) -> None:
    cache = docker_volume()
    code = (
        "import os, tempfile; d = tempfile.mkdtemp(dir='/var/cache/synapse'); "
        "open(os.path.join(d, 'x'), 'w').write('ok'); print(os.getuid(), os.getgid())"
    )
    run = run_image(
        entrypoint=["/opt/synapse/venv/bin/python", "-c", code], user="1000650000:0",
        volumes={cache: {"bind": "/var/cache/synapse", "mode": "rw"}},
    )
    assert run.exit_code == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["1000650000", "0"]
