#!/usr/bin/env python3
"""The AWS Common Runtime's S3 client (awscrt.s3: what boto3[crt] and the AWS CLI v2 use) as a bench peer.

    crt_get.py ENDPOINT REGION BUCKET KEY DEST            one object to DEST, checksum validated, fsynced
    crt_get.py ENDPOINT REGION BUCKET PREFIX/ DEST_DIR    every object under PREFIX/ (ListObjectsV2 by the CRT too)

Credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.  Part size 8 MiB (SYNAPSE_BENCH_CRT_PART_SIZE).
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlsplit


def main() -> int:
    from awscrt import auth, http, io, s3

    endpoint, region, bucket, key, dest = sys.argv[1:6]
    parts = urlsplit(endpoint)
    elg = io.EventLoopGroup()
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    creds = auth.AwsCredentialsProvider.new_static(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    client = s3.S3Client(bootstrap=bootstrap, region=region,
                         signing_config=s3.create_default_s3_signing_config(region=region, credential_provider=creds),
                         part_size=int(os.environ.get("SYNAPSE_BENCH_CRT_PART_SIZE", 8 << 20)),
                         tls_mode=s3.S3RequestTlsMode.DISABLED if parts.scheme == "http" else s3.S3RequestTlsMode.ENABLED)
    host = parts.netloc

    def get(obj_key: str, path: str):
        req = http.HttpRequest("GET", f"/{bucket}/{quote(obj_key, safe='/~')}", http.HttpHeaders([("Host", host)]))
        return client.make_request(type=s3.S3RequestType.GET_OBJECT, request=req, recv_filepath=path,
                                   checksum_config=s3.S3ChecksumConfig(validate_response=True))

    if not key.endswith("/"):
        get(key, dest).finished_future.result()
        paths = [dest]
    else:
        keys: list[str] = []
        token = None
        while True:
            body = bytearray()
            q = f"list-type=2&prefix={quote(key, safe='')}" + (f"&continuation-token={quote(token, safe='')}" if token else "")
            req = http.HttpRequest("GET", f"/{bucket}?{q}", http.HttpHeaders([("Host", host)]))
            client.make_request(type=s3.S3RequestType.DEFAULT, operation_name="ListObjectsV2", request=req,
                                on_body=lambda chunk, **_: body.extend(chunk)).finished_future.result()
            root = ET.fromstring(bytes(body))
            ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            keys += [c.findtext(f"{ns}Key") or "" for c in root.findall(f"{ns}Contents")]
            token = root.findtext(f"{ns}NextContinuationToken")
            if (root.findtext(f"{ns}IsTruncated") or "false") != "true" or not token:
                break
        os.makedirs(dest, exist_ok=True)
        paths = [os.path.join(dest, k[len(key):]) for k in keys]
        for f in [get(k, p) for k, p in zip(keys, paths)]:  # the CRT schedules them itself
            f.finished_future.result()
    for p in paths:  # like every side of the bench: bytes on disk
        fd = os.open(p, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
