"""Property-based tests (hypothesis): whatever a URL or an archive holds, nothing lands outside its directory.

Example counts: with ``CI=true`` each property runs a fixed number of examples (``CI_EXAMPLES``)
derandomized (a fixed seed, so a CI failure reproduces); locally more examples with fresh randomness
(``LOCAL_EXAMPLES``), and ``SYNAPSE_PROPERTY_EXAMPLES=N`` overrides both.  The settings are local to
this module (no global hypothesis profile), so other test modules keep their own.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings  # the test extra has it: never skipped silently
from hypothesis import strategies as st

from synapse_runtime.errors import ArchiveError
from synapse_runtime.storage import archive as arc
from synapse_runtime.storage.names import MAX_NAME_BYTES, safe_name
from synapse_runtime.storage.uri import parse

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
CI_EXAMPLES = 300
LOCAL_EXAMPLES = 1000


def _examples(factor: float = 1.0) -> int:
    raw = os.environ.get("SYNAPSE_PROPERTY_EXAMPLES", "").strip()
    base = int(raw) if raw.isdigit() else (CI_EXAMPLES if CI else LOCAL_EXAMPLES)
    return max(10, int(base * factor))


def _settings(factor: float = 1.0) -> settings:
    return settings(max_examples=_examples(factor), derandomize=CI, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- names derived from URIs -------------------------------------------------------------------
#: pieces that have broken path handling somewhere: separators (raw and percent-encoded, any case),
#: dots, NUL and control characters, Windows drive letters, reserved cache names, long runs
_NASTY = ["..", ".", "/", "\\", "%2F", "%2f", "%5C", "%5c", "%2E", "%2e%2E", "%00", "\x00", "%0A", "\n", "\t",
          "C:", "meta.json", ".meta.1.x", "~", " ", "%", "%%", "?", "#", "x" * 120, "é", "\u202e", "%C3%A9",
          "%ED%A0%80", "\ud800", ".tar.gz", ".zip", ".d"]
_piece = st.one_of(st.sampled_from(_NASTY), st.text(max_size=12),
                   st.text(max_size=6).map(lambda s: quote(s, safe="")))
_segment = st.lists(_piece, max_size=8).map("".join)


@st.composite
def _uris(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http://", "https://", "HTTPS://", "s3://", "S3://", "file://", ""]))
    # file:// URIs are local (an empty host or localhost): drawn valid, not thrown away by parse()
    hosts = ["", "localhost"] if scheme == "file://" else ["127.0.0.1:9", "bucket", "h.example", "b..", "x%2F.."]
    host = draw(st.sampled_from(hosts))
    segments = draw(st.lists(_segment, max_size=5))
    tail = draw(st.sampled_from(["", "/", "?X-Amz-Signature=s%2F..", "#..%2F", "/..", "/%2E%2E/"]))
    return scheme + host + "/" + "/".join(segments) + tail


def _assert_one_safe_component(name: str, directory: Path) -> None:
    assert name and name not in (".", "..") and name.strip(".")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(ord(c) < 32 or ord(c) == 127 for c in name)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name.lower() != "meta.json" and not name.lower().startswith(".meta.")
    path = directory / name
    assert os.path.dirname(os.path.normpath(path)) == str(directory)
    # the filesystem agrees: the name can be created, and it is a direct child of the directory
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    assert os.path.realpath(path) == os.path.join(os.path.realpath(directory), name)
    os.unlink(path)


@_settings()
@given(_uris())
def test_uri_names_stay_in_their_directory(uri: str) -> None:
    """parse(uri).basename and the extraction directory derived from it are one safe component.
    Every drawn URI is valid (none is discarded), so each example checks the names."""
    p = parse(uri)
    with tempfile.TemporaryDirectory() as d:
        _assert_one_safe_component(p.basename, Path(d))
        _assert_one_safe_component(arc.archive_stem(p.basename), Path(d))


@_settings()
@given(st.one_of(st.text(), _segment, st.binary().map(lambda b: b.decode("latin-1"))))
def test_safe_name_of_anything(raw: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        name = safe_name(raw)
        _assert_one_safe_component(name, Path(d))
        _assert_one_safe_component(arc.archive_stem(name), Path(d))
        assert safe_name(name) == name  # idempotent: a safe name is kept as is


@_settings()
@given(st.lists(st.sampled_from(["a", "b", ".", "..", "/", "\\", "\x00", "C:", "~", "%2F"]), max_size=12).map("".join))
def test_prefix_member_names_stay_inside(key: str) -> None:
    """The rule for S3 prefix keys and archive members: refused, or a relative path below the target."""
    try:
        rel = arc.safe_member_path(key, "prop")
    except ArchiveError:
        return
    root = "/r/target"
    assert not rel.startswith("/") and ".." not in rel.split("/")
    assert os.path.normpath(os.path.join(root, rel)).startswith(root)


# ---- archive extraction ------------------------------------------------------------------------
_ABS = "<ABS>"  # replaced by the sandbox's absolute path at run time: absolute names that point somewhere real
_name_part = st.sampled_from(["a", "b", "d", "l", "..", ".", "", "x.bin", _ABS])
_member_name = st.lists(_name_part, min_size=1, max_size=5).flatmap(
    lambda parts: st.sampled_from(["/", "\\"]).map(lambda sep: sep.join(parts)))
_kinds = st.sampled_from(["file", "file", "dir", "symlink", "symlink", "hardlink", "fifo"])
_member = st.tuples(_kinds, _member_name, _member_name, st.binary(max_size=64))


def _fill(text: str, sandbox: Path) -> str:
    return text.replace(_ABS, str(sandbox))


def _build_tar(members: list[tuple[str, str, str, bytes]], sandbox: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, name, target, data in members:
            info = tarfile.TarInfo(_fill(name, sandbox))
            if kind == "file":
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[kind]
            info.linkname = _fill(target, sandbox) if kind in ("symlink", "hardlink") else ""
            tf.addfile(info)
    return buf.getvalue()


def _build_zip(members: list[tuple[str, str, str, bytes]], sandbox: Path) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are part of the test
        for kind, name, target, data in members:
            name = _fill(name, sandbox) or "empty"
            if kind == "dir":
                name = name.rstrip("/") + "/"
            zi = zipfile.ZipInfo(name)
            if kind == "symlink":  # how Info-ZIP stores a link: mode S_IFLNK, the target as the data
                zi.external_attr = (stat.S_IFLNK | 0o777) << 16
                data = _fill(target, sandbox).encode()
            elif kind == "dir":
                zi.external_attr = (stat.S_IFDIR | 0o755) << 16
                data = b""
            zf.writestr(zi, data)
    return buf.getvalue()


def _snapshot(root: Path) -> set[str]:
    return {os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files}


def _check_extraction(fmt: str, members: list[tuple[str, str, str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        sandbox = Path(d)
        deep = sandbox / "s1" / "s2" / "s3"
        deep.mkdir(parents=True)
        (sandbox / "victim.txt").write_bytes(b"keep")
        archive = sandbox / f"a.{fmt}"
        archive.write_bytes((_build_tar if fmt == "tar" else _build_zip)(members, sandbox))
        before = _snapshot(sandbox)
        target = deep / "target"
        try:
            arc.extract(archive, target, max_bytes=1 << 20, max_files=100, label="prop")
            refused = False
        except ArchiveError:
            refused = True  # the caller removes the partial tree; nothing may have left it meanwhile
        created = _snapshot(sandbox) - before
        outside = sorted(p for p in created if not (p == str(target) or p.startswith(str(target) + os.sep)))
        assert outside == [], (members, outside)
        assert (sandbox / "victim.txt").read_bytes() == b"keep"
        real_target = os.path.realpath(target)
        for p in [] if refused else created:  # a kept tree: every path resolves inside the target
            real = os.path.realpath(p)
            assert real == real_target or real.startswith(real_target + os.sep), (members, p, real)


_members = st.lists(_member, min_size=1, max_size=8)


@_settings(0.5)
@given(_members)
def test_tar_extraction_writes_nothing_outside_the_target(members: list[tuple[str, str, str, bytes]]) -> None:
    """Whatever the members (``..``, absolute names, symlinks, hard links, links through links,
    duplicates, fifos), extraction either refuses with ArchiveError or writes only below the target,
    and every path of a kept tree resolves inside it."""
    _check_extraction("tar", members)


@_settings(0.5)
@given(_members)
def test_zip_extraction_writes_nothing_outside_the_target(members: list[tuple[str, str, str, bytes]]) -> None:
    """The same for zip: symlinks (S_IFLNK members), directories, ``..``, absolute and backslash names."""
    _check_extraction("zip", members)
