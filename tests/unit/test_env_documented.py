"""Every environment variable the runtime reads is documented. The SYNAPSE_* knobs are checked both
ways by tests/unit/test_knobs.py; this covers the others the code names (AWS_*, NVIDIA_*, CA bundles,
the Kubernetes and Ray job variables, NO_COLOR, ...): each must appear in README.md or docs/*.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_LIKE = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]$")
#: String constants that look like variables and are not: an ssl reason, an S3 checksum type, and a
#: name redaction is told to leave alone (GOOGLE_APPLICATION_CREDENTIALS holds a path, not a secret).
NOT_READ = {"CERTIFICATE_VERIFY_FAILED", "FULL_OBJECT", "GOOGLE_APPLICATION_CREDENTIALS"}


def names_in_code() -> dict[str, set[str]]:
    """Every string constant shaped like an environment variable, outside the upstream shim and
    outside ``__all__`` lists (those name Python objects)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "synapse_runtime").rglob("*.py"):
        if "compat/synapse_sdk" in path.as_posix():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                exported.update(id(c) for c in ast.walk(node.value))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in exported:
                if ENV_LIKE.match(node.value) and node.value not in NOT_READ:
                    found.setdefault(node.value, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_scan_finds_what_the_code_reads() -> None:
    found = names_in_code()
    for name in ("AWS_ENDPOINT_URL_S3", "NVIDIA_VISIBLE_DEVICES", "SYNAPSE_HOST", "RAY_JOB_ID", "REQUESTS_CA_BUNDLE"):
        assert name in found, f"the scan no longer sees {name}"


def test_every_variable_named_in_the_code_is_documented() -> None:
    docs = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    missing = {name: sorted(where) for name, where in names_in_code().items() if not re.search(rf"\b{name}\b", docs)}
    assert missing == {}, "document these variables in README.md or docs/*.md"
