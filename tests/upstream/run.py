#!/usr/bin/env python3
"""Upstream's own plugin-API tests, run against the shim (``make upstream-tests``) or the real package.

The tests are not copied into this repository: they are read from upstream's published sdist at test
time (``make`` downloads it into build/upstream/) and unpacked into build/upstream/tests-<version>/,
only the files of SELECTION (and the ``__init__.py``/``conftest.py`` files above them).  They run in
a subprocess with upstream's own layout (rootdir = the unpacked folder, a bare pytest.ini: none of
this project's pytest settings or conftest), with:

* ``--mode shim``: ``synapse_sdk`` is the shim (synapse_runtime/compat on PYTHONPATH, as
  ``compat.install()`` puts it on sys.path); every test must pass except the entries of
  tests/upstream/expected-failures.txt, and every entry there must still fail;
* ``--mode real``: ``synapse_sdk`` is the installed package (make test-sdk's venv); every test must
  pass, which shows that the selection tests upstream's behaviour and not an accident of the sdist.

Exit 0 when the outcome is as expected, 1 otherwise (each unexpected outcome named), 2 on bad use.

    python tests/upstream/run.py --sdist build/upstream/synapse_sdk-2026.2.12.tar.gz [--mode shim|real]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXPECTED = HERE / "expected-failures.txt"

#: Upstream's tests of the modules the shim provides (docs/compat.md has the table): steps, the
#: orchestrator and step utilities, RuntimeContext, the plugin config model, and BaseLogger /
#: NoOpLogger / ConsoleLogger / BackendLogger.  Left out: tests of what the shim does not imitate
#: (JobLogger and TqdmLogger, the executors, the upload/export/train actions, the clients, the DM
#: converters), which would only restate "not provided".
SELECTION = (
    "tests/plugins/steps/*.py",
    "tests/plugins/steps/utils/*.py",
    "tests/plugins/context/test_runtime_context.py",
    "tests/plugins/test_config.py",
    "tests/unit/test_loggers_deprecation.py",
    "tests/unit/test_loggers_level.py",
    "tests/unit/test_loggers_logging_module.py",
    "tests/unit/test_loggers_message_data.py",
    "tests/unit/test_loggers_step.py",
    "tests/integration/plugins/steps/*.py",
)


def _selected(rel: str) -> bool:
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in SELECTION)


def unpack(sdist: Path, dest: Path) -> list[str]:
    """The selected test files (and their packages' ``__init__``/``conftest``) into ``dest``; their paths."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    wanted: dict[str, tarfile.TarInfo] = {}
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile() and "/" in m.name}
        tests = sorted(rel for rel in members if _selected(rel))
        if not any(Path(rel).name.startswith("test_") for rel in tests):
            sys.exit(f"{sdist}: no upstream tests in it (sdists from 2026.2.15 on leave tests/ out; "
                     "use one that ships them, see the Makefile's UPSTREAM_TESTS_VERSION)")
        for rel in tests:
            wanted[rel] = members[rel]
            for parent in Path(rel).parents:
                for extra in ("__init__.py", "conftest.py"):
                    name = str(parent / extra)
                    if name in members:
                        wanted[name] = members[name]
        for rel, member in wanted.items():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
    # Upstream's layout without upstream's pytest options (its addopts stop after 5 failures).
    (dest / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return [rel for rel in tests if Path(rel).name.startswith("test_")]


def read_expected(path: Path) -> dict[str, str]:
    """``{node id or file: why}`` from the expected-failures file (the comment block above each entry)."""
    entries: dict[str, str] = {}
    why: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text:
            why = []
        elif text.startswith("#"):
            why.append(text.lstrip("# "))
        else:
            entries[text] = " ".join(why)
            why = []
    return entries


def run(python: str, mode: str, workdir: Path, tests: list[str], pytest_args: list[str]) -> dict[str, str]:
    report = workdir / "outcomes.json"
    paths = [str(ROOT), str(HERE)]
    if mode == "shim":
        paths.append(str(ROOT / "synapse_runtime" / "compat"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "UPSTREAM_TESTS_REPORT": str(report),
           "PYTHONDONTWRITEBYTECODE": "1"}
    probe = ("import synapse_sdk, synapse_runtime.compat as c; "
             "print('shim' if c.is_shim(synapse_sdk) else 'real', synapse_sdk.__file__)")
    found = subprocess.run([python, "-c", probe], cwd=workdir, env=env, capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.startswith(mode):
        sys.exit(f"upstream tests: --mode {mode} needs synapse_sdk to be the {mode} one with {python}; "
                 f"found: {found.stdout.strip() or found.stderr.strip()}")
    print(f"upstream tests: synapse_sdk is {found.stdout.strip()}", flush=True)
    cmd = [python, "-m", "pytest", "-p", "outcomes", "-p", "no:cacheprovider", "-q", "-rfE", "--continue-on-collection-errors",
           "--rootdir", str(workdir), "-c", str(workdir / "pytest.ini"), *pytest_args, *tests]
    subprocess.run(cmd, cwd=workdir, env=env)
    if not report.exists():
        sys.exit("upstream tests: pytest wrote no outcomes (see its output above)")
    return json.loads(report.read_text(encoding="utf-8"))


def judge(outcomes: dict[str, str], expected: dict[str, str]) -> list[str]:
    """What is not as expected: a test that did not pass and is not listed, or a listed one that passed."""
    problems = []
    not_passed = {nodeid: outcome for nodeid, outcome in outcomes.items() if outcome != "passed"}
    for nodeid, outcome in sorted(not_passed.items()):
        if not any(nodeid == entry or nodeid.startswith(entry + "::") for entry in expected):
            problems.append(f"{outcome}: {nodeid}")
    for entry in expected:
        hits = [o for nodeid, o in not_passed.items() if nodeid == entry or nodeid.startswith(entry + "::")]
        if not hits:
            problems.append(f"expected to fail but passed or did not run (fix it or remove it from {EXPECTED.name}): {entry}")
    if not any(o == "passed" for o in outcomes.values()):
        problems.append("no test passed: the run itself is broken")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sdist", type=Path, required=True, help="upstream's sdist (.tar.gz) holding tests/")
    ap.add_argument("--mode", choices=("shim", "real"), default="shim")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs the tests")
    ap.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = ap.parse_args()
    if not args.sdist.is_file():
        print(f"upstream tests: no sdist at {args.sdist} (make upstream-tests downloads it)", file=sys.stderr)
        return 2
    version = args.sdist.name.removeprefix("synapse_sdk-").removesuffix(".tar.gz")
    workdir = ROOT / "build" / "upstream" / f"tests-{version}-{args.mode}"
    tests = unpack(args.sdist, workdir)
    expected = read_expected(EXPECTED) if args.mode == "shim" else {}
    outcomes = run(args.python, args.mode, workdir, tests, args.pytest_args)
    problems = judge(outcomes, expected)
    counts = {k: sum(1 for o in outcomes.values() if o == k) for k in ("passed", "failed", "error", "skipped")}
    print(f"\nupstream tests of synapse-sdk {version} against the {args.mode} package: "
          + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    for entry, why in expected.items():
        print(f"  expected to fail: {entry}\n      why: {why}")
    if problems:
        print("\nNOT AS EXPECTED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
