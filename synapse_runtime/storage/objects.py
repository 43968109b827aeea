"""The common path of one object (S3 or HTTP), whoever serves it: into the cache, verified, extracted.

The order of events:

1. the caller's one revalidation request (HEAD for S3, the first GET's headers for presigned URLs)
   gave size, ETag and version, hence the cache key (all in one ``ObjectRequest``, request.py);
2. a complete entry under that key is a hit: pinned, touched (LRU), returned;
3. otherwise the cache makes the entry (``Cache.produce``: lock, look again, download into a temp,
   commit, trim); here is only what an object adds: the download, verified (size, ETag or stored
   checksum, sha256) and fsynced, downloaded once more when a check may have failed in transit;
4. extraction, when asked, is a second entry derived from the first, produced the same way.

The source (``sources.py``) only says how to open the object (``make_opener``) and how to word its
failures (``on_error``); nothing here knows S3 from HTTP.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ArchiveError, StorageError
from . import archive as arc
from .cache import Cache, entry_key, fsync_tree
from .config import StorageSettings
from .diagnose import checksum_error
from .progress import Throttle
from .request import ObjectRequest
from .result import FetchResult
from .transfer import ChecksumFailure, Hasher, ObjectInfo, Opener, download
from .uri import ParsedURI, redact

log = logging.getLogger("synapse_runtime.storage")


def fetch_object(req: ObjectRequest) -> FetchResult:
    """The object ``req`` names, from the cache, downloaded and verified first when needed; extracted when asked."""
    throttle = Throttle(req.progress, req.label, req.info.size, via=req.via)
    extract_key = req.extract_key
    hit = req.cache.lookup(extract_key or req.key)
    if hit is not None:
        if req.before_wait:
            req.before_wait()
        _check_hit_sha256(req, hit, extract_key)
        throttle.final(0, True)
        return FetchResult(Path(hit["path"]), req.label, 0, int(hit.get("total", hit["bytes"])), True, req.via)
    dl = _Download(req, throttle)
    obj, made = req.cache.produce(req.key, "dl", dl, before_wait=req.before_wait)
    if not made:  # cached, or another process just made it: the expected sha256 holds for it too
        _check_hit_sha256(req, obj, None)
    meta = obj
    if extract_key is not None:
        meta = ensure_extracted(req.cache, req.settings, req.key, Path(obj["path"]), req.parsed,
                                obj.get("sha256") or req.sha256)
    throttle.final(dl.done, dl.done == 0)
    return FetchResult(Path(meta["path"]), req.label, dl.done, req.info.size, dl.done == 0, req.via)


class _Download:
    """``make`` for ``Cache.produce``: the object into the temp directory, verified and fsynced.

    A failed check may be corruption in transit, so the object is downloaded once more before the
    failure is reported; a sha256 mismatch on bytes whose ETag matched is the object itself.
    """

    def __init__(self, req: ObjectRequest, throttle: Throttle) -> None:
        self.req = req
        self.throttle = throttle
        self.done = 0  # bytes transferred, all attempts together

    def on_bytes(self, n: int) -> None:
        self.done += n
        self.throttle.update(self.done)

    def __call__(self, work: Path) -> dict[str, Any]:
        req = self.req
        try:
            opener = req.make_opener()
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise req.on_error(exc) from None
        target = work / req.parsed.basename
        uncertain: str | None = None  # first download's digest when its multipart ETag was not verifiable
        for attempt in (1, 2):
            hasher = Hasher(req.info, req.sha256 is not None, req.settings.verify_etag)
            try:
                self._once(target, opener, hasher, attempt, uncertain)
            except ChecksumFailure as exc:
                if attempt == 1 and (exc.what != "sha256" or not hasher.etag_verified):
                    if exc.what == "multipart ETag" and not exc.certain:
                        uncertain = exc.actual
                    log.warning("%s: %s; downloading again", req.label, exc)
                    target.unlink(missing_ok=True)
                    continue
                raise checksum_error(req.parsed.raw, req.endpoint, exc.what, exc.expected, exc.actual) from None
            return {"name": req.parsed.basename, "bytes": req.info.size, "total": req.info.size, "uri": req.label,
                    "endpoint": req.endpoint, "etag": req.info.etag, "sha256": hasher.sha256_hex(),
                    "kind": "object", "verified": hasher.method or "size", **req.route()}
        raise AssertionError("unreachable")

    def _once(self, target: Path, opener: Opener, hasher: Hasher, attempt: int, uncertain: str | None) -> None:
        """One download into ``target``, checked and fsynced; ChecksumFailure when a check fails."""
        req = self.req
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            download(fd, req.info, opener, req.settings, hasher=hasher, on_bytes=self.on_bytes)
            size = os.fstat(fd).st_size
            if size != req.info.size:
                raise ChecksumFailure("size", str(req.info.size), str(size))
            try:
                hasher.check(req.sha256)  # an uncertain ETag mismatch comes after the sha256 check
            except ChecksumFailure as exc:
                if exc.what != "multipart ETag" or exc.certain:
                    raise
                # The part size was guessed: a mismatch may be the guess or corrupt bytes.  A
                # matching sha256 settles it; without one, a second download must agree.
                if req.sha256 is None and (attempt == 1 or exc.actual != uncertain):
                    raise ChecksumFailure(exc.what, exc.expected, exc.actual, certain=attempt > 1) from None
                log.warning("%s: multipart ETag not verifiable (part size unknown); %s", req.label,
                            "sha256 verified" if req.sha256 else "two downloads agree")
            os.fsync(fd)
        except (ChecksumFailure, StorageError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise req.on_error(exc) from None
        finally:
            os.close(fd)


def _check_hit_sha256(req: ObjectRequest, meta: dict[str, Any], extract_key: str | None) -> None:
    """An expected sha256 holds for cached content too: compare with the recorded or computed digest.

    ``meta`` is the object's entry, or the extracted tree's (``extract_key``), which records its archive's.
    """
    if req.sha256 is None:
        return
    recorded = meta.get("archive_sha256" if extract_key else "sha256")
    if recorded is None:
        # the object itself; when the archive was evicted after extraction, fetched again to verify
        again = replace(req, info=_info_from_meta(meta), progress=None, before_wait=None)
        obj, _ = req.cache.produce(req.key, "dl", _Download(again, Throttle(None, req.parsed.raw, None)))
        recorded = obj.get("sha256") or sha256_file(Path(obj["path"]))
        req.cache.update_meta(req.key, sha256=recorded)
        if extract_key:
            req.cache.update_meta(extract_key, archive_sha256=recorded)
    if recorded != req.sha256:
        raise checksum_error(req.parsed.raw, req.endpoint, "sha256", req.sha256, recorded)


def _info_from_meta(meta: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(size=int(meta.get("total", 0)), etag=meta.get("etag"))


def ensure_extracted(cache: Cache, settings: StorageSettings, base_key: str, archive: Path, parsed: ParsedURI,
                     archive_sha256: str | None) -> dict[str, Any]:
    """The extracted tree of ``archive`` (the entry ``base_key``, or a local file) as an entry of its own."""
    label = redact(parsed.raw)
    stem = arc.archive_stem(parsed.basename)

    def make(work: Path) -> dict[str, Any]:
        written = arc.extract(archive, work / stem, max_bytes=settings.max_extract_bytes,
                              max_files=settings.max_extract_files, label=label, max_ratio=settings.max_extract_ratio)
        fsync_tree(work / stem)
        return {"name": stem, "bytes": written, "total": archive.stat().st_size, "uri": label, "kind": "extract",
                "archive_sha256": archive_sha256}

    try:
        meta, _ = cache.produce(entry_key(kind="extract", base=base_key), "x", make)
    except ArchiveError:
        raise
    except OSError as exc:
        raise ArchiveError(f"cannot extract {label}: {exc.strerror or exc}",
                           hint="free space in SYNAPSE_CACHE_DIR", details={"cause": "disk"}) from exc
    return meta


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(4 << 20):
            h.update(block)
    return h.hexdigest()
