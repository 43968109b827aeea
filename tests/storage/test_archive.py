"""Archive extraction through fetch(extract=True): good archives, and malicious ones refused cleanly."""

from __future__ import annotations

import io
import os
import time
import tarfile
import zipfile
from pathlib import Path

import pytest

from synapse_runtime.errors import ArchiveError
from synapse_runtime.storage import fetch

from .conftest import cache_state


def _tar(members: list[tuple[str, bytes | None, dict]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            for k, v in attrs.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


GOOD = [("model/weights.bin", b"W" * 5000, {}), ("model/config.json", b"{}", {}),
        ("model/link.json", None, {"type": tarfile.SYMTYPE, "linkname": "config.json"})]


@pytest.mark.parametrize("name,mode", [("m.tar", "w"), ("m.tar.gz", "w:gz"), ("m.tgz", "w:gz")])
def test_tar_extracted_and_cached(s3, bucket: str, cache_dir: Path, name: str, mode: str, proxy) -> None:
    s3.put_object(Bucket=bucket, Key=name, Body=_tar(GOOD, mode))
    r = fetch(f"s3://{bucket}/{name}", cache_dir=cache_dir, extract=True)
    assert r.path.is_dir() and r.path.name == "m"
    assert (r.path / "model/weights.bin").read_bytes() == b"W" * 5000
    assert os.readlink(r.path / "model/link.json") == "config.json"
    proxy.reset_counts()
    again = fetch(f"s3://{bucket}/{name}", cache_dir=cache_dir, extract=True)
    assert again.cached and again.path == r.path and [m for m, _ in proxy.requests] == ["HEAD"]


def test_zip_extracted_to_dest(s3, bucket: str, cache_dir: Path, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="m.zip", Body=_zip({"a/b.txt": b"b", "c.txt": b"c"}))
    out = tmp_path / "out"
    r = fetch(f"s3://{bucket}/m.zip", cache_dir=cache_dir, extract=True, dest=out)
    assert r.path == out and (out / "a/b.txt").read_bytes() == b"b" and (out / "c.txt").read_bytes() == b"c"


def test_local_archive_extracted(tmp_path: Path, cache_dir: Path) -> None:
    arc = tmp_path / "local.zip"
    arc.write_bytes(_zip({"x.txt": b"x"}))
    r = fetch(str(arc), cache_dir=cache_dir, extract=True)
    assert (r.path / "x.txt").read_bytes() == b"x" and str(r.path).startswith(str(cache_dir))
    assert fetch(str(arc), cache_dir=cache_dir, extract=True).path == r.path


def _evil_zip_slip() -> bytes:
    return _zip({"ok.txt": b"ok", "../../evil.txt": b"evil"})


def _evil_zip_abs() -> bytes:
    return _zip({"/tmp/evil-abs.txt": b"evil"})


def _evil_tar_symlink() -> bytes:
    return _tar([("escape", None, {"type": tarfile.SYMTYPE, "linkname": "../../../../etc"})])


def _evil_tar_symlink_then_write() -> bytes:
    # a link inside the tree pointing up, then a file written "through" it
    return _tar([("d", None, {"type": tarfile.SYMTYPE, "linkname": "."}),
                 ("d/l", None, {"type": tarfile.SYMTYPE, "linkname": ".."})])


def _evil_tar_abs_link() -> bytes:
    return _tar([("abs", None, {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"})])


def _evil_tar_hardlink() -> bytes:
    return _tar([("h", None, {"type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"})])


def _evil_tar_device() -> bytes:
    return _tar([("dev", None, {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})])


def _too_many() -> bytes:
    return _zip({f"f{i}": b"" for i in range(30)})


def _too_big() -> bytes:
    return _zip({"bomb": b"\0" * (2 * 1024 * 1024)})  # deflates to ~2 KB


@pytest.mark.parametrize("maker,details,reason", [
    (_evil_zip_slip, {"cause": "path traversal", "member": "../../evil.txt"},
     "member path '../../evil.txt' leaves the target ('..') refused"),
    (_evil_zip_abs, {"cause": "absolute path", "member": "/tmp/evil-abs.txt"},
     "absolute member path '/tmp/evil-abs.txt' refused"),
    (_evil_tar_symlink, {"cause": "link escape", "member": "escape"},
     "symlink 'escape' -> '../../../../etc' leaves the target; refused"),
    (_evil_tar_symlink_then_write, {"cause": "link escape", "member": "d/l"},
     "member 'd/l' would be written through a link or file 'd'"),
    (_evil_tar_abs_link, {"cause": "link escape", "member": "abs"}, "symlink 'abs' -> '/etc/passwd' is absolute; refused"),
    (_evil_tar_hardlink, {"cause": "path traversal", "member": "../../etc/passwd"},
     "member path '../../etc/passwd' leaves the target ('..') refused"),
    (_evil_tar_device, {"cause": "special file", "member": "dev"}, "member 'dev' is a device or fifo; refused"),
    (_too_many, {"cause": "too many files", "knob": "SYNAPSE_EXTRACT_MAX_FILES"}, "more than 20 entries (archive bomb?)"),
    (_too_big, {"cause": "too big", "knob": "SYNAPSE_EXTRACT_MAX_BYTES", "limit": 1024 * 1024},
     "expands to more than 1048576 bytes (archive bomb?)"),
])
def test_malicious_archives_refused(s3, bucket: str, cache_dir: Path, tmp_path: Path, monkeypatch, maker, details,
                                    reason) -> None:
    """Each archive is refused for its own reason: the exact cause, member and message (a loose substring
    such as "link" or "more than" would pass for the wrong refusal)."""
    monkeypatch.setenv("SYNAPSE_EXTRACT_MAX_FILES", "20")
    monkeypatch.setenv("SYNAPSE_EXTRACT_MAX_BYTES", str(1024 * 1024))
    s3.put_object(Bucket=bucket, Key="evil.tar", Body=maker())
    with pytest.raises(ArchiveError) as ei:
        fetch(f"s3://{bucket}/evil.tar", cache_dir=cache_dir, extract=True, dest=tmp_path / "out")
    assert type(ei.value) is ArchiveError and ei.value.exit_code == 4
    assert ei.value.details == details
    assert ei.value.message == f"s3://{bucket}/evil.tar: {reason}"
    objects, tmp = cache_state(cache_dir)
    assert tmp == [] and len(objects) == 1  # only the (verified) archive itself; no extracted entry
    assert not (tmp_path / "out").exists()
    assert not Path("/tmp/evil-abs.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_not_an_archive(s3, bucket: str, cache_dir: Path) -> None:
    s3.put_object(Bucket=bucket, Key="plain.bin", Body=b"just bytes")
    with pytest.raises(ArchiveError) as ei:
        fetch(f"s3://{bucket}/plain.bin", cache_dir=cache_dir, extract=True)
    assert type(ei.value) is ArchiveError and ei.value.details == {"cause": "not an archive"}
    assert ei.value.message == f"s3://{bucket}/plain.bin: not a zip or tar archive"


def _written_bytes() -> int:
    """Bytes this process has passed to write() so far (Linux /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_bomb_refused_before_writing(tmp_path: Path, cache_dir: Path, kind: str) -> None:
    """Issue 12 item 9: ~3 MB that expand to 3 GiB of zeros are refused at once, nothing written."""
    from .bombs import tgz_of_zeros, zip_of_zeros

    bomb = tmp_path / f"weights.{'zip' if kind == 'zip' else 'tar.gz'}"
    bomb.write_bytes(zip_of_zeros("w.bin", 3072) if kind == "zip" else tgz_of_zeros("w.bin", 3072))
    assert bomb.stat().st_size < 4 * 1024 * 1024
    before, t0 = _written_bytes(), time.monotonic()
    with pytest.raises(ArchiveError) as ei:
        fetch(str(bomb), cache_dir=cache_dir, extract=True)
    elapsed, written = time.monotonic() - t0, _written_bytes() - before
    err = ei.value
    assert err.exit_code == 4 and "SYNAPSE_EXTRACT_MAX_RATIO" in str(err) and "declares 3.0 GiB, more than 100 times the archive's" in str(err)
    assert err.details["knob"] == "SYNAPSE_EXTRACT_MAX_RATIO" and err.details["cause"] == "expansion ratio"
    assert written < 1024 * 1024, written  # refused from the declared sizes: only metadata was written
    assert elapsed < 10, elapsed
    assert cache_state(cache_dir) == ([], [])


def test_ratio_check_off_still_refuses_what_cannot_fit(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    """SYNAPSE_EXTRACT_MAX_RATIO=0 turns the ratio check off; free space still bounds the extraction."""
    from synapse_runtime.storage import archive

    from .bombs import zip_of_zeros

    monkeypatch.setenv("SYNAPSE_EXTRACT_MAX_RATIO", "0")
    free = 512 * 1024 * 1024  # as if the cache volume had 512 MiB left
    monkeypatch.setattr(archive, "free_bytes", lambda path: free)
    bomb = tmp_path / "weights.zip"
    bomb.write_bytes(zip_of_zeros("w.bin", 1024))
    before = _written_bytes()
    with pytest.raises(ArchiveError) as ei:
        fetch(str(bomb), cache_dir=cache_dir, extract=True)
    assert _written_bytes() - before < 1024 * 1024
    assert ei.value.details["cause"] == "no space" and "SYNAPSE_CACHE_DIR" in str(ei.value)
    assert "more than the cache filesystem has free" in str(ei.value) and ei.value.exit_code == 4
    assert cache_state(cache_dir) == ([], [])
    # where it fits, an archive is extracted (a 64 MiB one keeps the test light)
    small = tmp_path / "small.zip"
    small.write_bytes(zip_of_zeros("w.bin", 64))
    r = fetch(str(small), cache_dir=cache_dir, extract=True)
    assert (r.path / "w.bin").stat().st_size == 64 * 1024 * 1024
