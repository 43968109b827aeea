#!/usr/bin/env python3
"""Download benchmark: synapse_runtime.storage against s5cmd, aws s3 cp, boto3 and curl, same server, same run.

Starts moto's S3 server (a subprocess on 127.0.0.1), uploads one big object and N small objects
under a prefix, then runs every client as its own process under ``/usr/bin/time -f %M`` (peak
RSS) and reports the best wall time of ``--repeat`` runs, with ratios against ours.  It also
measures the server's CPU seconds per run: when moto burns a full core during the fastest
client's run, the server is the bottleneck and no client can go faster.

    .venv/bin/python bench/download.py                      # 1 GiB + 200 x 4 MiB, best of 3
    .venv/bin/python bench/download.py --size 128M --count 20 --small 4M --repeat 2   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(cmd: list[str], env: dict[str, str], server_pid: int) -> tuple[float, float, float, str]:
    """(wall seconds, peak RSS MB, server CPU seconds, stdout) of one client process."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        cpu0 = cpu_seconds(server_pid)
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(server_pid) - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        peak_kb = int(rss.read().strip().splitlines()[-1])
    return wall, peak_kb / 1024, cpu, proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="size of the single object (default 1G)")
    ap.add_argument("--count", type=int, default=200, help="objects under the prefix (default 200)")
    ap.add_argument("--small", default="4M", help="size of each prefix object (default 4M)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per client, best wall time kept (default 3)")
    ap.add_argument("--multipart", action="store_true", help="upload the big object multipart (8 MiB parts)")
    ap.add_argument("--skip", default="", help="comma-separated clients to skip (e.g. aws,boto3)")
    ap.add_argument("--workdir", default=None, help="where downloads go (default: a temp dir)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    size, small = parse_size(args.size), parse_size(args.small)
    skip = set(filter(None, args.skip.split(",")))

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="synapse-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(ROOT),
           "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "SYNAPSE_CACHE_DIR"):
        env.pop(var, None)
    results: list[dict] = []
    # As installed (a wheel install byte-compiles; the image does at build time): without this, a host with
    # PYTHONDONTWRITEBYTECODE=1 and an editable install re-parses every module, which is most of a cache hit.
    import compileall

    compileall.compile_dir(str(ROOT / "synapse_runtime"), quiet=1)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        import boto3
        from boto3.s3.transfer import TransferConfig

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench-secret")
        s3.create_bucket(Bucket="bench")
        src = work / "src.bin"
        with open(src, "wb") as fh:
            left = size
            block = os.urandom(min(size, 64 << 20) or 1)
            while left > 0:
                fh.write(block[: min(left, len(block))])
                left -= len(block)
        threshold = 8 << 20 if args.multipart else 5 << 30
        s3.upload_file(str(src), "bench", "big.bin", Config=TransferConfig(multipart_threshold=threshold))
        src.unlink()
        payload = os.urandom(small)
        for i in range(args.count):
            s3.put_object(Bucket="bench", Key=f"many/part-{i:04d}.bin", Body=payload[:small - 8] + i.to_bytes(8, "big"))
        big_url = s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": "big.bin"}, ExpiresIn=7200)
        small_urls = [s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": f"many/part-{i:04d}.bin"},
                                                ExpiresIn=7200) for i in range(args.count)]
        print(f"server: moto {endpoint}; object {size / 2**20:.0f} MiB ({'multipart' if args.multipart else 'single-part'}); "
              f"prefix {args.count} x {small / 2**20:.1f} MiB; best of {args.repeat}", flush=True)

        out = work / "out"
        cache = work / "cache"
        curl_cfg = work / "curl.cfg"
        curl_cfg.write_text("".join(f'url = "{u}"\noutput = "{out}/many/{i:04d}"\n' for i, u in enumerate(small_urls)))
        boto_one = ("import sys, boto3; boto3.client('s3').download_file('bench', sys.argv[1], sys.argv[2])")
        boto_many = ("import sys, os, boto3; c = boto3.client('s3'); os.makedirs(sys.argv[2], exist_ok=True)\n"
                     "for p in c.get_paginator('list_objects_v2').paginate(Bucket='bench', Prefix='many/'):\n"
                     "    for o in p.get('Contents', []): c.download_file('bench', o['Key'], os.path.join(sys.argv[2], os.path.basename(o['Key'])))")
        ours = [sys.executable, "-m", "synapse_runtime.storage", "fetch"]
        # Like for like: s5cmd, the AWS CLI and curl check sizes only; ours also hashes every byte against the
        # ETag by default. SYNAPSE_VERIFY_ETAG=0 leaves that out (sizes and any expected sha256 still checked).
        ours_size_only = ["env", "SYNAPSE_VERIFY_ETAG=0", *ours]
        scenarios = {
            "object": {
                "ours (cold, size check)": ours_size_only + ["s3://bench/big.bin", "--cache-dir", str(cache)],
                "ours (cold)": ours + ["s3://bench/big.bin", "--cache-dir", str(cache)],
                "ours (cache hit)": ours + ["s3://bench/big.bin", "--cache-dir", str(cache)],
                "s5cmd": ["s5cmd", "--endpoint-url", endpoint, "cp", "s3://bench/big.bin", f"{out}/big.bin"],
                "aws s3 cp": ["aws", "--endpoint-url", endpoint, "s3", "cp", "--only-show-errors", "s3://bench/big.bin", f"{out}/big.bin"],
                "boto3 download_file": [sys.executable, "-c", boto_one, "big.bin", f"{out}/big.bin"],
                "curl (limit)": ["curl", "-sSf", "-o", f"{out}/big.bin", big_url],
            },
            "prefix": {
                "ours (cold, size check)": ours_size_only + ["s3://bench/many/", "--cache-dir", str(cache)],
                "ours (cold)": ours + ["s3://bench/many/", "--cache-dir", str(cache)],
                "ours (cache hit)": ours + ["s3://bench/many/", "--cache-dir", str(cache)],
                "s5cmd": ["s5cmd", "--endpoint-url", endpoint, "cp", "s3://bench/many/*", f"{out}/many/"],
                "aws s3 cp": ["aws", "--endpoint-url", endpoint, "s3", "cp", "--recursive", "--only-show-errors", "s3://bench/many/", f"{out}/many/"],
                "boto3 download_file": [sys.executable, "-c", boto_many, "many/", f"{out}/many"],
                "curl (limit)": ["curl", "-sSf", "--parallel", "--parallel-max", "8", "--create-dirs", "-K", str(curl_cfg)],
            },
        }
        names = {"s5cmd": "s5cmd", "aws s3 cp": "aws", "boto3 download_file": "boto3", "curl (limit)": "curl",
                 "ours (cold)": "ours", "ours (cache hit)": "ours", "ours (cold, size check)": "ours"}
        for scenario, clients in scenarios.items():
            for client, cmd in clients.items():
                if names[client] in skip:
                    continue
                best = None
                for _ in range(args.repeat):
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir(parents=True)
                    if client.startswith("ours (cold"):
                        shutil.rmtree(cache, ignore_errors=True)
                    wall, rss, cpu, stdout = timed(cmd, env, server.pid)
                    inproc = None
                    if client.startswith("ours"):
                        inproc = json.loads(stdout.strip().splitlines()[-1]).get("seconds")
                    if best is None or wall < best["wall"]:
                        best = {"scenario": scenario, "client": client, "wall": wall, "rss_mb": rss,
                                "server_cpu": cpu, "in_process": inproc}
                assert best is not None
                total = size if scenario == "object" else small * args.count
                best["mib_s"] = total / 2**20 / best["wall"]
                results.append(best)
                extra = f"  (fetch() itself {best['in_process'] * 1000:.0f} ms)" if best["in_process"] is not None else ""
                print(f"  {scenario:7s} {client:20s} {best['wall']:8.3f} s {best['rss_mb']:7.1f} MB  "
                      f"server CPU {best['server_cpu']:6.2f} s{extra}", flush=True)
    finally:
        server.terminate()
        server.wait(10)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print()
    for scenario in ("object", "prefix"):
        rows = [r for r in results if r["scenario"] == scenario]
        ours = next((r for r in rows if r["client"] == "ours (cold)"), None)
        if not rows:
            continue
        label = f"{size / 2**20:.0f} MiB object" if scenario == "object" else f"{args.count} x {small / 2**20:.1f} MiB prefix"
        print(f"## {label}")
        print("| client | wall s | MiB/s | peak RSS MB | server CPU s | ours cold vs it |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            ratio = f"{r['wall'] / ours['wall']:.2f}x" if ours and r is not ours else "-"
            print(f"| {r['client']} | {r['wall']:.3f} | {r['mib_s']:.0f} | {r['rss_mb']:.0f} | {r['server_cpu']:.2f} | {ratio} |")
        print("(ratio > 1: ours is faster; the server CPU column shows how busy moto was; a value near the wall"
              " time means one core saturated, i.e. the server is the bottleneck)\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
