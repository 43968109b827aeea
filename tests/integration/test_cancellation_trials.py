import os, time, json
import pytest

def test_explore(run_image, s3_server, docker_volume, tmp_path):
    t=time.monotonic()
    bucket = s3_server.create_bucket()
    size = int(os.environ.get("SZ", str(128<<20)))
    blob = os.urandom(size)
    p = tmp_path/"blob.bin"; p.write_bytes(blob)
    s3_server.client().upload_file(str(p), bucket, "ckpt/big.bin")
    print("upload", time.monotonic()-t)
    cache = docker_volume()
    for i in range(2):
        t=time.monotonic()
        r = run_image(plugin="faults", action="noop", network=s3_server.network,
                  env={**s3_server.container_env(), "SYNAPSE_CHECKPOINT": f"s3://{bucket}/ckpt/big.bin"},
                  volumes={cache: {"bind": "/var/cache/synapse", "mode": "rw"}})
        print("run", i, r.exit_code, time.monotonic()-t)
        for e in r.events:
            print(e["ts"], e["type"], {k: e.get(k) for k in ("bytes","cached","message")})
    t=time.monotonic()
    r = run_image(plugin="faults", action="noop")
    print("noop", time.monotonic()-t)
