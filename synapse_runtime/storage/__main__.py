"""``python -m synapse_runtime.storage fetch|upload ...``: the storage module on its own.

Handy for operators (pre-warming a shared cache volume) and used by bench/download.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synapse_runtime.storage")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch a URI into the cache (and optionally a destination)")
    f.add_argument("uri")
    f.add_argument("--cache-dir")
    f.add_argument("--dest")
    f.add_argument("--extract", action="store_true")
    f.add_argument("--sha256")
    f.add_argument("--progress", action="store_true", help="print progress lines on stderr")
    u = sub.add_parser("upload", help="upload a directory to s3://bucket/prefix/")
    u.add_argument("local_dir")
    u.add_argument("uri")
    args = ap.parse_args(argv)

    from ..errors import PluginError
    from . import fetch, upload_dir

    def show(uri: str, done: int, total: int | None, cached: bool) -> None:
        print(json.dumps({"uri": uri, "bytes": done, "total": total, "cached": cached}), file=sys.stderr)

    t0 = time.perf_counter()
    try:
        if args.cmd == "fetch":
            r = fetch(args.uri, cache_dir=args.cache_dir, dest=args.dest, extract=args.extract, sha256=args.sha256,
                      progress=show if args.progress else None)
            out = {"path": str(r.path), "bytes": r.bytes, "total": r.total, "cached": r.cached, "via": r.via}
        else:
            out = {"bytes": upload_dir(args.local_dir, args.uri, progress=show if False else None)}
    except PluginError as exc:
        print(json.dumps({"error": exc.error_type, "message": str(exc)}), file=sys.stderr)
        return int(exc.exit_code)
    out["seconds"] = round(time.perf_counter() - t0, 4)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
