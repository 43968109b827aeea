"""Secret values the suites set, and the scan that proves none of them was ever written.

Tests that feed a secret take it from here; inputs that must hold a secret live under a
directory named ``secret-inputs`` (skipped by the scan).  Everything else any test leaves under
pytest's temporary directory (outputs, result.json, termination logs, captured streams) is
scanned at the end of the session: one hit fails the run.
"""

from __future__ import annotations

from pathlib import Path

ACCESS_TOKEN = "tok-0123456789"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG"
VOLUME_SECRET = "hunter2-from-volume"

SECRET_VALUES: set[str] = {ACCESS_TOKEN, AWS_SECRET, VOLUME_SECRET}
INPUT_DIR_NAME = "secret-inputs"
#: Input directories the container fixtures create (projected env volumes hold secrets on purpose).
INPUT_DIR_PREFIXES = ("envdir-",)


def register(*values: str) -> None:
    SECRET_VALUES.update(v for v in values if v)


def scan_text(text: str, where: str) -> list[str]:
    return [f"{where}: contains {v[:3]}…" for v in SECRET_VALUES if v in text]


def scan_tree(root: Path) -> tuple[int, int, list[str]]:
    """(files scanned, bytes scanned, hits) for every file under root but secret inputs."""
    files = size = 0
    hits: list[str] = []
    needles = [v.encode() for v in SECRET_VALUES]
    for path in root.rglob("*"):
        if INPUT_DIR_NAME in path.parts or any(p.startswith(INPUT_DIR_PREFIXES) for p in path.parts):
            continue
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        files += 1
        size += len(data)
        hits += [f"{path}: contains a secret" for n in needles if n in data]
    return files, size, hits
