"""What a download is verified against: S3's stored checksums (CRC32, sha256) before the MD5 ETag.

Unit tests of the Hasher's choice and arithmetic, then fetches from a real S3 server (moto over
HTTP), through both the boto3-free signed path and boto3, with the cache's record of what was
compared, and corruption injected by a proxy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from pathlib import Path

import pytest

from synapse_runtime.errors import ChecksumMismatchError
from synapse_runtime.storage import fetch
from synapse_runtime.storage.s3 import checksums_from_headers, info_from_headers
from synapse_runtime.storage.transfer import ChecksumFailure, Hasher, ObjectInfo

from .netutil import Fault

MiB = 1 << 20


def b64crc(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def composite_crc(data: bytes, part: int) -> str:
    digests = b"".join(zlib.crc32(data[i:i + part]).to_bytes(4, "big") for i in range(0, len(data), part))
    return f"{b64crc(digests)}-{-(-len(data) // part)}"


def md5_etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def feed(h: Hasher, data: bytes, chunk: int = 3 * MiB + 7) -> Hasher:
    for i in range(0, len(data), chunk):
        h.feed(data[i:i + chunk])
    return h


# ---- the Hasher's choice and arithmetic ---------------------------------------------------------
def test_full_object_crc32_preferred_over_md5() -> None:
    data = os.urandom(5 * MiB + 3)
    info = ObjectInfo(size=len(data), etag=md5_etag(data), md5_etag=True, checksums={"crc32": b64crc(data)})
    h = feed(Hasher(info, False), data)
    h.check(None)
    assert h.method == "crc32" and h.etag_verified


def test_full_object_crc32_mismatch_names_the_checksum() -> None:
    data = os.urandom(MiB)
    bad = bytearray(data)
    bad[1000] ^= 1
    info = ObjectInfo(size=len(data), etag=md5_etag(data), md5_etag=True, checksums={"crc32": b64crc(data)})
    h = feed(Hasher(info, False), bytes(bad))
    with pytest.raises(ChecksumFailure) as exc:
        h.check(None)
    assert exc.value.what == "CRC32 checksum" and exc.value.expected == b64crc(data) and exc.value.certain


def test_composite_crc32_with_confirmed_part_size() -> None:
    part = 2 * MiB
    data = os.urandom(5 * MiB + 100)
    for value in (composite_crc(data, part), composite_crc(data, part).rpartition("-")[0]):  # AWS form, moto form
        info = ObjectInfo(size=len(data), etag="0" * 32 + "-3", md5_etag=True, part_size=part,
                          part_size_confirmed=True, checksums={"crc32": value})
        h = feed(Hasher(info, False), data)
        h.check(None)
        assert h.method == "crc32"
    info.checksums = {"crc32": composite_crc(data[:-1] + b"x", part)}
    with pytest.raises(ChecksumFailure, match="CRC32"):
        feed(Hasher(info, False), data).check(None)


def test_composite_crc32_without_exact_part_size_falls_back_to_the_etag() -> None:
    part = 2 * MiB
    data = os.urandom(5 * MiB)
    parts = [data[i:i + part] for i in range(0, len(data), part)]
    etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    info = ObjectInfo(size=len(data), etag=etag, md5_etag=True, part_size=part, part_size_confirmed=False,
                      checksums={"crc32": composite_crc(data, part)})
    h = feed(Hasher(info, False), data)
    h.check(None)
    assert h.method == "md5"


def test_full_object_type_on_a_multipart_object() -> None:
    data = os.urandom(3 * MiB)
    info = ObjectInfo(size=len(data), etag="0" * 32 + "-2", md5_etag=True, checksum_type="FULL_OBJECT",
                      checksums={"crc32": b64crc(data)})
    h = feed(Hasher(info, False), data)
    h.check(None)
    assert h.method == "crc32" and h.part_size == 0


def test_sha256_checksum_and_unknown_algorithms() -> None:
    data = os.urandom(MiB)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    info = ObjectInfo(size=len(data), etag=None, checksums={"sha256": sha})
    h = feed(Hasher(info, False), data)
    h.check(None)
    assert h.method == "sha256"
    # CRC64NVME needs awscrt (not a dependency): without it the MD5 ETag is compared instead
    info = ObjectInfo(size=len(data), etag=md5_etag(data), md5_etag=True, checksums={"crc64nvme": "AAAAAAAAAAA="})
    h = Hasher(info, False)
    try:
        import awscrt  # noqa: F401
    except ImportError:
        feed(h, data).check(None)
        assert h.method == "md5"
    else:
        with pytest.raises(ChecksumFailure, match="CRC64NVME"):
            feed(h, data).check(None)


def test_verification_off_means_size_only() -> None:
    data = os.urandom(1000)
    info = ObjectInfo(size=len(data), etag="f" * 32, md5_etag=True, checksums={"crc32": "AAAAAA=="})
    h = feed(Hasher(info, False, verify_etag=False), data)
    h.check(None)  # both digests are wrong, neither is compared
    assert h.method is None and not h.active


def test_empty_object_verified() -> None:
    info = ObjectInfo(size=0, etag=md5_etag(b""), md5_etag=True, checksums={"crc32": b64crc(b"")})
    h = Hasher(info, False)
    h.check(None)
    assert h.method == "crc32"


def test_headers_parsed() -> None:
    h = {"content-length": "10", "etag": '"abc-2"', "x-amz-checksum-crc32": "hcH/Jw==-2",
         "x-amz-checksum-type": "composite", "x-amz-checksum-sha256": " c2hh "}
    assert checksums_from_headers(h) == ({"crc32": "hcH/Jw==-2", "sha256": "c2hh"}, "COMPOSITE")
    assert info_from_headers(h).checksums["crc32"] == "hcH/Jw==-2"
    assert info_from_headers({**h, "content-encoding": "gzip"}).checksums == {}


# ---- against the S3 server ----------------------------------------------------------------------
def meta_of(path: Path) -> dict:
    return json.loads((path.parent / "meta.json").read_text())


def test_object_with_crc32_is_verified_by_it(s3, bucket: str, cache_dir: Path) -> None:
    data = os.urandom(3 * MiB + 5)
    s3.put_object(Bucket=bucket, Key="crc.bin", Body=data, ChecksumAlgorithm="CRC32")
    r = fetch(f"s3://{bucket}/crc.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data
    assert meta_of(r.path)["verified"] == "crc32"


def test_multipart_object_with_crc32_is_verified_per_part(s3, bucket: str, cache_dir: Path, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    data = os.urandom(11 * MiB)
    src = tmp_path / "big"
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "big.bin", ExtraArgs={"ChecksumAlgorithm": "CRC32"},
                   Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    r = fetch(f"s3://{bucket}/big.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data
    assert meta_of(r.path)["verified"] == "crc32"  # composite: the part size came from HEAD ?partNumber=1


def test_object_without_checksum_falls_back_to_the_etag(aws_env: str, bucket: str, cache_dir: Path) -> None:
    import boto3
    from botocore.config import Config

    plain = boto3.session.Session().client("s3", endpoint_url=aws_env, region_name=os.environ["AWS_REGION"],
                         config=Config(request_checksum_calculation="when_required"))
    data = os.urandom(MiB)
    plain.put_object(Bucket=bucket, Key="plain.bin", Body=data)
    assert "ChecksumCRC32" not in plain.head_object(Bucket=bucket, Key="plain.bin", ChecksumMode="ENABLED")
    r = fetch(f"s3://{bucket}/plain.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data and meta_of(r.path)["verified"] == "md5"


def test_prefix_objects_verified_by_their_crc32(s3, bucket: str, cache_dir: Path) -> None:
    blobs = {f"set/{i}.bin": os.urandom(100_000 + i) for i in range(6)}
    for k, v in blobs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v, ChecksumAlgorithm="CRC32")
    r = fetch(f"s3://{bucket}/set/", cache_dir=cache_dir)
    assert {p.name: p.read_bytes() for p in r.path.iterdir()} == {k.split("/")[1]: v for k, v in blobs.items()}
    # The signed path asks each GET for the stored checksum; through boto3 that would turn on botocore's
    # own validation as well, so objects in a prefix are checked against their ETags there.
    boto3_path = os.environ.get("SYNAPSE_S3_FAST_PATH") == "0"
    assert meta_of(r.path)["verified"] == ({"md5": 6} if boto3_path else {"crc32": 6})


def test_corruption_caught_by_crc32_and_downloaded_again(s3, bucket: str, cache_dir: Path, proxy) -> None:
    data = os.urandom(2 * MiB)
    s3.put_object(Bucket=bucket, Key="c.bin", Body=data, ChecksumAlgorithm="CRC32")
    proxy.faults[:] = [Fault("corrupt", 123_456, body=True, length=8)]
    r = fetch(f"s3://{bucket}/c.bin", cache_dir=cache_dir)
    assert r.path.read_bytes() == data and meta_of(r.path)["verified"] == "crc32"
    assert proxy.injected == ["corrupt"] and proxy.count("GET") == 2


def test_persistent_corruption_is_a_clean_crc32_error(s3, bucket: str, cache_dir: Path, proxy) -> None:
    data = os.urandom(MiB)
    s3.put_object(Bucket=bucket, Key="c2.bin", Body=data, ChecksumAlgorithm="CRC32")
    proxy.faults[:] = [Fault("corrupt", 5000, body=True)] * 2
    with pytest.raises(ChecksumMismatchError) as exc:
        fetch(f"s3://{bucket}/c2.bin", cache_dir=cache_dir)
    assert "CRC32 checksum" in str(exc.value) and "nothing was kept" in str(exc.value)
    objects = list((cache_dir / "objects").iterdir()) if (cache_dir / "objects").exists() else []
    assert objects == []
