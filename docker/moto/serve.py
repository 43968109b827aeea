"""moto's S3 server for tests, with optional seeding and a readiness file.

Environment:
  MOTO_PORT        port to listen on (default 5000), on all addresses
  S3_SEED_DIR      directory whose top-level entries are buckets and whose files below become objects
                   (default /seed; nothing happens when it is missing). Buckets in S3_SEED_BUCKETS
                   (comma-separated) are created too, empty.
  READY_FILE       written once the server answers and seeding is done (default /tmp/moto-ready);
                   the image's HEALTHCHECK tests for it.

The process exits non-zero when the server thread dies, so a dead server is never reported healthy.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path


def log(msg: str) -> None:
    print(f"[moto-serve] {msg}", file=sys.stderr, flush=True)


def seed(endpoint: str, seed_dir: Path, extra_buckets: list[str]) -> None:
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="seed",
        aws_secret_access_key="seed",
        config=Config(s3={"addressing_style": "path"}),
    )
    buckets = list(extra_buckets)
    if seed_dir.is_dir():
        buckets += [p.name for p in sorted(seed_dir.iterdir()) if p.is_dir()]
    for bucket in dict.fromkeys(buckets):
        s3.create_bucket(Bucket=bucket)
        root = seed_dir / bucket
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file():
                key = path.relative_to(root).as_posix()
                s3.upload_file(str(path), bucket, key)
                log(f"seeded s3://{bucket}/{key} ({path.stat().st_size} bytes)")


def main() -> int:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = int(os.environ.get("MOTO_PORT", "5000"))
    seed_dir = Path(os.environ.get("S3_SEED_DIR", "/seed"))
    extra = [b for b in os.environ.get("S3_SEED_BUCKETS", "").split(",") if b.strip()]
    ready = Path(os.environ.get("READY_FILE", "/tmp/moto-ready"))
    ready.unlink(missing_ok=True)

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="0.0.0.0", port=port, verbose=False)
    server.start()
    log(f"listening on 0.0.0.0:{port}")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    seed(f"http://127.0.0.1:{port}", seed_dir, extra)
    ready.write_text(str(time.time()))
    log("ready")

    thread = server._thread  # the werkzeug serving thread
    while not stop.wait(1.0):
        if thread is not None and not thread.is_alive():
            log("server thread died")
            return 1
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
