"""S3 through boto3, configured only by boto3's own environment (see docs/storage.md).

boto3 is imported inside functions: importing it costs ~0.3 s, which a cache hit or a run without
checkpoint must not pay.  Client-level retries are off for downloads because the transfer engine
retries (and resumes) itself; uploads keep botocore's standard retries (s3transfer relies on them).
"""

from __future__ import annotations

from typing import Any, Iterator

from .config import StorageSettings
from .awsenv import env_endpoint, env_region
from .transfer import Body, ObjectInfo, Opener

_KNOWN_PART_SIZES = [8, 5, 16, 64, 32, 10, 50, 100, 128, 256, 15, 25, 512]  # MiB; boto3/awscli 8, s5cmd 50


class S3:
    """A boto3 client plus what messages need (its endpoint)."""

    def __init__(self, st: StorageSettings, *, upload: bool = False) -> None:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        session = boto3.session.Session()
        endpoint = env_endpoint() or _profile_endpoint(session)
        kwargs: dict[str, Any] = dict(
            connect_timeout=st.connect_timeout,
            read_timeout=st.read_timeout,
            max_pool_connections=max(10, st.concurrency * 2),
            retries={"mode": "standard", "total_max_attempts": (st.retries + 1) if upload else 1},
            tcp_keepalive=True,
        )
        try:  # botocore >= 1.36: no CRC work on top of our own MD5/sha256 verification
            Config(response_checksum_validation="when_required")
            kwargs["response_checksum_validation"] = "when_required"
            kwargs["request_checksum_calculation"] = "when_required"
        except TypeError:
            pass
        if endpoint:
            kwargs["s3"] = {"addressing_style": "path"}
        self.anonymous = session.get_credentials() is None
        if self.anonymous:
            kwargs["signature_version"] = UNSIGNED
        # env_region: AWS_DEFAULT_REGION, then AWS_REGION (which botocore alone ignores), so that boto3
        # and the fast path always sign for the same region; else the profile's, else us-east-1
        region = env_region() or session.region_name or "us-east-1"
        self.client = session.client("s3", region_name=region, config=Config(**kwargs))
        self.endpoint = self.client.meta.endpoint_url
        self.part_size = st.part_size  # tried first when a multipart object's part size must be guessed

    # ---- reads ---------------------------------------------------------------------------
    def head(self, bucket: str, key: str) -> ObjectInfo:
        # ChecksumMode: the object's CRC32/sha256 when it has one (cheaper to verify than the MD5 ETag)
        resp = self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        return info_from_headers(
            {k.lower(): v for k, v in resp["ResponseMetadata"].get("HTTPHeaders", {}).items()})

    name = "boto3"

    def confirm_part_size(self, bucket: str, key: str, info: ObjectInfo) -> None:
        """Learn a multipart object's part size from HEAD ?partNumber=1 (S3, MinIO); else guess it.

        A guessed size that fits the part count is used to verify the multipart ETag, but a
        mismatch under a guess only downgrades verification to size-only (see Hasher.check).
        """
        parts = info.parts
        if not parts or not info.md5_etag:
            return
        try:
            resp = self.client.head_object(Bucket=bucket, Key=key, PartNumber=1)
            headers = {k.lower(): v for k, v in resp["ResponseMetadata"].get("HTTPHeaders", {}).items()}
            count = int(headers.get("x-amz-mp-parts-count", "0") or 0)
            length = int(resp.get("ContentLength") or 0)
            if count == parts and 0 < length and (parts - 1) * length < info.size <= parts * length:
                info.part_size, info.part_size_confirmed = length, True
                return
        except Exception:  # noqa: BLE001 - servers without partNumber support: guess below
            pass
        info.part_size = guess_part_size(info.size, parts, self.part_size)

    def opener(self, bucket: str, key: str, info: ObjectInfo) -> Opener:
        client = self.client
        quoted = f'"{info.etag}"' if info.etag else None

        def open_range(start: int, end: int) -> Body:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if start > 0 or end < info.size:
                kwargs["Range"] = f"bytes={start}-{end - 1}"
            if quoted:
                kwargs["IfMatch"] = quoted
            if info.version_id:
                kwargs["VersionId"] = info.version_id
            resp = client.get_object(**kwargs)
            etag = (resp.get("ETag") or "").strip('"')
            if info.etag and etag and etag != info.etag:
                resp["Body"].close()
                raise _changed()
            return resp["Body"]

        return open_range

    def list_prefix(self, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def bucket_missing(self, bucket: str) -> bool:
        """After a 404 on HEAD (which has no body): is it the bucket or the key?"""
        try:
            self.client.head_bucket(Bucket=bucket)
            return False
        except Exception as exc:  # noqa: BLE001
            status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            return status == 404

    def is_prefix(self, bucket: str, key: str) -> bool:
        """Whether ``key/`` has objects below it (for the 'add a trailing slash' hint)."""
        try:
            resp = self.client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
            return bool(resp.get("KeyCount"))
        except Exception:  # noqa: BLE001
            return False


def _changed() -> Exception:
    from .retry import HTTPStatusError

    return HTTPStatusError(412, "PreconditionFailed", "ETag changed between HEAD and GET")


def _profile_endpoint(session: Any) -> str | None:
    try:
        cfg = session._session.get_scoped_config()  # noqa: SLF001 - boto3 has no public accessor
    except Exception:  # noqa: BLE001 - a broken profile is reported by the client call itself
        return None
    s3cfg = cfg.get("s3") if isinstance(cfg.get("s3"), dict) else {}
    return s3cfg.get("endpoint_url") or cfg.get("endpoint_url")


def info_from_headers(h: dict[str, str]) -> ObjectInfo:
    """ObjectInfo from lower-cased HEAD/GET headers (S3 or a plain HTTP server)."""
    size = None
    if "content-range" in h and "/" in h["content-range"]:
        total = h["content-range"].rsplit("/", 1)[1].strip()
        size = int(total) if total.isdigit() else None
    if size is None:
        size = int(h.get("content-length", "-1") or -1)
    etag = (h.get("etag") or "").strip()
    weak = etag.startswith("W/")
    etag = etag.removeprefix("W/").strip('"') or None
    sse = h.get("x-amz-server-side-encryption", "")
    encoded = h.get("content-encoding", "") not in ("", "identity")  # digests of other bytes than we store
    md5_like = bool(etag) and not weak and is_md5_etag(etag)
    if sse == "aws:kms" or "x-amz-server-side-encryption-customer-algorithm" in h or encoded:
        md5_like = False  # SSE-KMS/SSE-C ETags are not content MD5s
    checksums, checksum_type = checksums_from_headers(h) if not encoded else ({}, None)
    return ObjectInfo(size=size, etag=etag, version_id=h.get("x-amz-version-id") or None,
                      last_modified=h.get("last-modified"), md5_etag=md5_like,
                      weak_etag=weak,
                      checksums=checksums, checksum_type=checksum_type)


_CHECKSUM_HEADERS = {"x-amz-checksum-crc32": "crc32", "x-amz-checksum-crc32c": "crc32c",
                     "x-amz-checksum-crc64nvme": "crc64nvme", "x-amz-checksum-sha256": "sha256",
                     "x-amz-checksum-sha1": "sha1"}


def checksums_from_headers(h: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """S3's additional checksums (sent when the request says ``x-amz-checksum-mode: ENABLED``)."""
    out = {algo: h[name].strip() for name, algo in _CHECKSUM_HEADERS.items() if h.get(name, "").strip()}
    kind = (h.get("x-amz-checksum-type") or "").strip().upper() or None
    return out, kind


def is_md5_etag(etag: str) -> bool:
    """A plain or multipart MD5 ETag (``<32 hex>`` or ``<32 hex>-<parts>``): one that can verify the bytes."""
    head, _, tail = etag.partition("-")
    return len(head) == 32 and all(c in "0123456789abcdefABCDEF" for c in head) and (tail == "" or tail.isdigit())


def guess_part_size(size: int, parts: int, configured: int) -> int | None:
    """The first part size that yields exactly ``parts`` parts: ``configured`` (the run's own,
    SYNAPSE_S3_PART_SIZE: what this runtime uploads with), then common clients' sizes."""
    candidates = [configured, *(m * 1024 * 1024 for m in _KNOWN_PART_SIZES)]
    for p in candidates:
        if (parts - 1) * p < size <= parts * p:
            return p
    return None
