#!/usr/bin/env python3
"""Download benchmark: synapse_runtime.storage against s5cmd, the AWS CLI, boto3, curl and awscrt.s3.

One server (Garage, the real one, by default; or moto), one object and N objects under a prefix,
every client run as its own process under ``/usr/bin/time`` (wall, user+sys CPU, peak RSS), every
side ending with its bytes on disk (ours fsyncs; the peers' files are fsynced by ``sync FILE...``
inside the timed command; boto3 and the CRT fsync in-process).  Runs are paired: each round runs
every client once, in a rotated order, so that the noise of a shared machine falls on all of them;
the table shows medians over rounds and ratios of medians.

    .venv/bin/python bench/download.py                          # Garage, 1 GiB + 200 x 4 MiB, 5 rounds
    .venv/bin/python bench/download.py --server moto --repeat 5
    .venv/bin/python bench/download.py --size 256M --count 50 --repeat 3 --only ours,s5cmd   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants (the server: garage under its shell, or moto)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_cpu(int(child))
    except (OSError, ValueError):
        pass
    return total


def timed(cmd: list[str], env: dict[str, str], server_pid: int) -> dict[str, float]:
    """wall s, CPU s (user+sys of the client and its children), peak RSS MB, server CPU s of one run."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        cpu0 = tree_cpu(server_pid)
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *cmd], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        server = tree_cpu(server_pid) - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        user, system, peak_kb = tf.read().strip().splitlines()[-1].split()
    return {"wall": wall, "cpu": float(user) + float(system), "rss_mb": int(peak_kb) / 1024, "server_cpu": server}


def start_server(kind: str, work: Path) -> tuple[subprocess.Popen, str, dict[str, str], str]:
    """(process, endpoint, credentials env, region)."""
    if kind == "garage":
        from tests.storage.garage import start_garage

        g = start_garage(work / "garage")
        return g.proc, g.endpoint, {"AWS_ACCESS_KEY_ID": g.access, "AWS_SECRET_ACCESS_KEY": g.secret}, g.region
    from tests.storage.netutil import start_moto

    proc, endpoint = start_moto()
    return proc, endpoint, {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}, "us-east-1"


def upload(s3, work: Path, size: int, count: int, small: int, multipart: bool) -> None:
    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket="bench")
    src = work / "src.bin"
    with open(src, "wb") as fh:
        left = size
        while left > 0:
            block = os.urandom(min(left, 64 << 20))
            fh.write(block)
            left -= len(block)
    # boto3's defaults: 8 MiB parts above 8 MiB, a CRC32 stored with every upload (composite when multipart)
    threshold = 8 << 20 if multipart else 5 << 30
    s3.upload_file(str(src), "bench", "big.bin", Config=TransferConfig(multipart_threshold=threshold))
    src.unlink()
    payload = os.urandom(small)
    for i in range(count):
        s3.put_object(Bucket="bench", Key=f"many/part-{i:04d}.bin", Body=payload[:small - 8] + i.to_bytes(8, "big"))


def clients(endpoint: str, region: str, out: Path, cache: Path, big_url: str, curl_cfg: Path) -> dict[str, dict[str, list[str]]]:
    py = sys.executable
    ours = [py, "-m", "synapse_runtime.storage", "fetch"]
    synced = lambda cmd, files: ["sh", "-c", f'{cmd} && sync {files}']  # noqa: E731 - fsync of just these files
    boto_one = ("import sys, os, boto3; boto3.client('s3').download_file('bench', sys.argv[1], sys.argv[2]); "
                "fd = os.open(sys.argv[2], os.O_RDONLY); os.fsync(fd)")
    boto_many = ("import sys, os, boto3; c = boto3.client('s3'); os.makedirs(sys.argv[2], exist_ok=True)\n"
                 "for p in c.get_paginator('list_objects_v2').paginate(Bucket='bench', Prefix='many/'):\n"
                 "    for o in p.get('Contents', []):\n"
                 "        d = os.path.join(sys.argv[2], os.path.basename(o['Key'])); c.download_file('bench', o['Key'], d)\n"
                 "        fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)")
    crt = [py, str(ROOT / "bench" / "crt_get.py"), endpoint, region, "bench"]
    e = f"--endpoint-url {endpoint}"
    return {
        "object": {
            "ours": ours + ["s3://bench/big.bin", "--cache-dir", str(cache)],
            "ours (parallel)": ["env", "SYNAPSE_S3_STRATEGY=parallel", *ours, "s3://bench/big.bin", "--cache-dir", str(cache)],
            # the presigned URL curl gets: auto's probe path (SYNAPSE_S3_SPLIT_AFTER, SYNAPSE_S3_SPLIT_BELOW_MIBS)
            "ours (presigned)": ours + [big_url, "--cache-dir", str(cache)],
            "s5cmd": synced(f"s5cmd {e} cp s3://bench/big.bin {out}/big.bin", f"{out}/big.bin"),
            "aws s3 cp": synced(f"aws {e} s3 cp --only-show-errors s3://bench/big.bin {out}/big.bin", f"{out}/big.bin"),
            "boto3": [py, "-c", boto_one, "big.bin", f"{out}/big.bin"],
            "curl": synced(f"curl -sSf -o {out}/big.bin '{big_url}'", f"{out}/big.bin"),
            "awscrt": crt + ["big.bin", f"{out}/big.bin"],
        },
        "prefix": {
            "ours": ours + ["s3://bench/many/", "--cache-dir", str(cache)],
            "s5cmd": synced(f"s5cmd {e} cp 's3://bench/many/*' {out}/many/", f"{out}/many/*"),
            "aws s3 cp": synced(f"aws {e} s3 cp --recursive --only-show-errors s3://bench/many/ {out}/many/", f"{out}/many/*"),
            "boto3": [py, "-c", boto_many, "many/", f"{out}/many"],
            "curl": synced(f"curl -sSf --parallel --parallel-max 8 --create-dirs -K {curl_cfg}", f"{out}/many/*"),
            "awscrt": crt + ["many/", f"{out}/many"],
        },
    }


def report(results: list[dict], scenario: str, label: str, total: int) -> None:
    rows: dict[str, list[dict]] = {}
    for r in results:
        if r["scenario"] == scenario:
            rows.setdefault(r["client"], []).append(r)
    if not rows:
        return
    med = {c: {k: statistics.median(x[k] for x in rs) for k in ("wall", "cpu", "rss_mb", "server_cpu")} for c, rs in rows.items()}
    peers = {c: m for c, m in med.items() if not c.startswith("ours")}
    fastest = min(peers, key=lambda c: peers[c]["wall"]) if peers else None
    gib = total / 2**30
    print(f"## {label} (median of {len(next(iter(rows.values())))} paired rounds)")
    print("| client | wall s | min s | MiB/s | CPU s/GiB | peak RSS MB | server CPU s | fastest peer's wall / this |")
    print("|---|---|---|---|---|---|---|---|")
    for c, m in med.items():
        ratio = f"{peers[fastest]['wall'] / m['wall']:.2f}x" if fastest else "-"
        print(f"| {c} | {m['wall']:.3f} | {min(x['wall'] for x in rows[c]):.3f} | {total / 2**20 / m['wall']:.0f} | "
              f"{m['cpu'] / gib:.2f} | {m['rss_mb']:.0f} | {m['server_cpu']:.2f} | {ratio} |")
    print(f"(fastest peer: {fastest}; > 1.00x: faster than it)\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=("garage", "moto"), default="garage")
    ap.add_argument("--size", default="1G", help="size of the single object (default 1G)")
    ap.add_argument("--count", type=int, default=200, help="objects under the prefix (default 200)")
    ap.add_argument("--small", default="4M", help="size of each prefix object (default 4M)")
    ap.add_argument("--repeat", type=int, default=5, help="paired rounds (default 5); medians are reported")
    ap.add_argument("--single-part", action="store_true", help="upload the big object in one PUT (default: boto3 multipart)")
    ap.add_argument("--only", default="", help="comma-separated clients to run (e.g. ours,s5cmd,awscrt)")
    ap.add_argument("--skip", default="", help="comma-separated clients to leave out (exact names, e.g. 'ours (parallel)')")
    ap.add_argument("--scenarios", default="object,prefix")
    ap.add_argument("--json", default=None, help="also write every run here")
    args = ap.parse_args()
    size, small = parse_size(args.size), parse_size(args.small)
    only = set(filter(None, args.only.split(",")))
    work = Path(tempfile.mkdtemp(prefix="synapse-bench-"))
    import compileall

    compileall.compile_dir(str(ROOT / "synapse_runtime"), quiet=1)  # measured as installed (wheel, image)
    server, endpoint, creds, region = start_server(args.server, work)
    env = {**os.environ, **creds, "AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": endpoint,
           "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(ROOT), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
           "AWS_CONFIG_FILE": str(work / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(work / "none")}
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "SYNAPSE_CACHE_DIR", "SYNAPSE_S3_STRATEGY"):
        env.pop(var, None)
    if args.server == "moto":  # moto reads the whole object for every ranged GET: one stream, as an operator would set
        env["SYNAPSE_S3_STRATEGY"] = "single"
    results: list[dict] = []
    try:
        import boto3

        s3 = boto3.session.Session(aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                                   region_name=region).client("s3", endpoint_url=endpoint)
        upload(s3, work, size, args.count, small, not args.single_part)
        sign = lambda k: s3.generate_presigned_url("get_object", Params={"Bucket": "bench", "Key": k}, ExpiresIn=7200)  # noqa: E731
        out, cache = work / "out", work / "cache"
        curl_cfg = work / "curl.cfg"
        curl_cfg.write_text("".join(f'url = "{sign(f"many/part-{i:04d}.bin")}"\noutput = "{out}/many/part-{i:04d}.bin"\n'
                                    for i in range(args.count)))
        table = clients(endpoint, region, out, cache, sign("big.bin"), curl_cfg)
        print(f"server: {args.server} {endpoint}; object {size / 2**20:.0f} MiB "
              f"({'single-part' if args.single_part else 'boto3 multipart, 8 MiB parts'}); prefix {args.count} x "
              f"{small / 2**20:.1f} MiB; {args.repeat} paired rounds; {os.cpu_count()} CPUs (shared machine: noisy)", flush=True)
        for scenario in args.scenarios.split(","):
            skip = set(filter(None, args.skip.split(",")))
            names = [c for c in table[scenario] if (not only or c in only or c.split(" ")[0] in only) and c not in skip]
            for rnd in range(args.repeat):
                order = names[rnd % len(names):] + names[:rnd % len(names)]  # rotated: no client always first
                for client in order:
                    shutil.rmtree(out, ignore_errors=True)
                    shutil.rmtree(cache, ignore_errors=True)
                    (out / "many").mkdir(parents=True)
                    r = timed(table[scenario][client], env, server.pid)
                    r.update(scenario=scenario, client=client, round=rnd)
                    results.append(r)
                    print(f"  {scenario:6s} round {rnd} {client:16s} {r['wall']:7.3f} s  CPU {r['cpu']:5.2f} s  "
                          f"{r['rss_mb']:5.0f} MB  server CPU {r['server_cpu']:5.2f} s", flush=True)
    finally:
        server.terminate()
        server.wait(15)
        shutil.rmtree(work, ignore_errors=True)
    print()
    report(results, "object", f"{size / 2**20:.0f} MiB object on {args.server}", size)
    report(results, "prefix", f"{args.count} x {small / 2**20:.1f} MiB prefix on {args.server}", small * args.count)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
