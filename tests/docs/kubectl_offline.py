#!/usr/bin/env python3
"""kubectl without a cluster, for the docs' command blocks (tests/docs/test_doc_commands.py).

There is no API server here, so a doc block's kubectl commands are checked for what can be checked
offline, with the real kubectl ($REAL_KUBECTL) wherever it works without a server:
  kustomize        run as it is
  create           run as it is with --dry-run=client (the files it names must exist)
  apply -k DIR     DIR built with `kubectl kustomize`; -f FILE|- parsed; every object needs kind and name
  get              answers as a cluster would where every Job has completed (conditions "Complete"),
                   so that deploy/k8s/wait-job.sh's success path runs; nothing else
  logs, describe, wait, delete, config
                   accepted and not run (they need a cluster), said on stderr
Any other subcommand fails: a doc that names one must be looked at.
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

REAL = os.environ.get("REAL_KUBECTL", "kubectl")
NOT_RUN = {"logs", "describe", "wait", "delete", "config", "rollout", "top"}


def _objects(text: str, where: str) -> list[str]:
    names = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name") or (doc.get("metadata") or {}).get("generateName")
        if not kind or not name:
            sys.exit(f"kubectl-offline: an object without kind or name in {where}")
        names.append(f"{kind.lower()}/{name}")
    if not names:
        sys.exit(f"kubectl-offline: nothing to apply in {where}")
    return names


def apply(args: list[str]) -> int:
    names: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in ("-k", "--kustomize"):
            out = subprocess.run([REAL, "kustomize", args[i + 1]], capture_output=True, text=True)
            if out.returncode != 0:
                sys.stderr.write(out.stderr)
                return out.returncode
            names += _objects(out.stdout, args[i + 1])
            i += 2
        elif args[i] in ("-f", "--filename"):
            src = args[i + 1]
            text = sys.stdin.read() if src == "-" else open(src, encoding="utf-8").read()
            names += _objects(text, src)
            i += 2
        else:
            i += 1
    if not names:
        sys.exit("kubectl-offline: apply without -k or -f")
    for name in names:
        print(f"{name} (offline: built, not applied)")
    return 0


def main(argv: list[str]) -> int:
    words = [a for a in argv if not a.startswith("-")]
    sub = words[0] if words else ""
    if sub in ("kustomize", "version"):
        return subprocess.run([REAL, *argv]).returncode
    if sub == "create":
        return subprocess.run([REAL, *argv, "--dry-run=client", "-o", "name"]).returncode
    if sub == "apply":
        return apply(argv[argv.index("apply") + 1 :])
    if sub == "get":
        if any(".status.conditions" in a for a in argv):
            print("Complete ", end="")
        return 0
    if sub in NOT_RUN:
        print(f"kubectl-offline: `kubectl {sub}` needs a cluster; not run", file=sys.stderr)
        return 0
    print(f"kubectl-offline: unknown subcommand in {argv}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
