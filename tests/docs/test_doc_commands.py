"""The shell blocks of README.md and docs/*.md, run as written, so a doc that drifts fails CI.

Every ```sh / ```bash block is a test. A block runs with `bash -euo pipefail` in the repository root, or,
where the text implies a new user's own directory, in a fresh empty one. An HTML comment on the line
before a block says how (the only ways a block can differ from "run it in the repository root"):

    <!-- doc-test: cwd=empty -->            run in a fresh empty directory (the repo is $SYNAPSE_REPO)
    <!-- doc-test: docker -->               needs the Docker engine and the images `make test` builds
    <!-- doc-test: kubectl -->              no cluster here: kubectl is tests/docs/kubectl_offline.py (manifests
                                            built and parsed, secrets made by a client-side dry run, read-only
                                            commands not run), in a copy of the checkout holding the files the
                                            text asks a user to prepare (./secrets/*, ./my-params.json)
    <!-- doc-test: first=N why=REASON -->   only the first N lines run; REASON says why the rest cannot
    <!-- doc-test: skip=REASON -->          not run; REASON says why (a registry pull, a cluster node)

Words in REASON are joined by underscores. Blocks that need Docker leave nothing behind: containers,
volumes and the example image tags they create are removed afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(sh|bash|shell)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    code: str
    options: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """Fenced shell blocks with the directive on the line before their fence (blank lines allowed)."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            options: dict[str, str] = {}
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0 and (m := DIRECTIVE.match(lines[j])):
                for word in m.group(1).split(None):
                    key, _, value = word.partition("=")
                    options[key] = value.replace("_", " ") if key in ("skip", "why") else value
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            blocks.append(Block(path, i + 1, "\n".join(lines[i + 1 : end]) + "\n", options))
            i = end + 1
        else:
            i += 1
    return blocks


ALL_BLOCKS = [b for doc in DOCS for b in parse_blocks(doc)]


def test_every_doc_block_is_collected_and_skips_say_why() -> None:
    assert len(ALL_BLOCKS) >= 10, [b.id for b in ALL_BLOCKS]
    known = {"cwd", "docker", "kubectl", "skip", "first", "why"}
    for block in ALL_BLOCKS:
        assert set(block.options) <= known, f"{block.id}: unknown doc-test option {block.options}"
        if "skip" in block.options:
            assert len(block.options["skip"]) > 10, f"{block.id}: a skipped block must say why"
        if "first" in block.options:
            assert len(block.options.get("why", "")) > 10, f"{block.id}: a partly run block must say why"
    skipped = [b for b in ALL_BLOCKS if "skip" in b.options]
    assert len(skipped) <= 4, f"too many doc blocks are not run: {[b.id for b in skipped]}"


def _user_checkout(root: Path) -> Path:
    """The checkout as a user has it, plus the files the Kubernetes docs ask them to prepare."""
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "secrets"):
            (root / entry.name).symlink_to(entry)
    (root / "secrets").mkdir()
    for name in ("aws_access_key_id", "aws_secret_access_key", "synapse_token"):
        (root / "secrets" / name).write_text("not-a-real-secret\n")
    (root / "my-params.json").write_text('{"epochs": 2}\n')
    return root


def _offline_kubectl(bin_dir: Path) -> dict[str, str]:
    real = shutil.which("kubectl")
    if real is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("kubectl is needed to check this block (CI=true); .ci/run installs it")
        pytest.skip("kubectl is not installed")
    bin_dir.mkdir()
    shim = bin_dir / "kubectl"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name('kubectl_offline.py')} \"$@\"\n")
    shim.chmod(0o755)
    return {"REAL_KUBECTL": real, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _docker_state() -> tuple[set[str], set[str], set[str]]:
    def ids(*args: str) -> set[str]:
        res = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
        return set(res.stdout.split())

    return ids("ps", "-aq"), ids("volume", "ls", "-q"), ids("images", "--format", "{{.Repository}}:{{.Tag}}")


def _docker_available() -> bool:
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def _params(blocks: list[Block]) -> list[object]:
    out = []
    for block in blocks:
        marks = []
        if "skip" in block.options:
            marks.append(pytest.mark.skip(reason=f"{block.id}: {block.options['skip']}"))
        if "docker" in block.options:
            marks.append(pytest.mark.docker)
        out.append(pytest.param(block, id=block.id, marks=marks))
    return out


@pytest.mark.parametrize("block", _params(ALL_BLOCKS))
def test_doc_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    code = block.code
    if "first" in block.options:
        code = "\n".join(code.splitlines()[: int(block.options["first"])]) + "\n"
    cwd = ROOT
    env = dict(os.environ, SYNAPSE_REPO=str(ROOT))
    if "kubectl" in block.options:
        env.update(_offline_kubectl(tmp_path / "bin"))
        cwd = _user_checkout(tmp_path / "checkout")
    if block.options.get("cwd") == "empty":
        cwd = tmp_path / "user-dir"
        cwd.mkdir()
    docker = "docker" in block.options
    if docker and not _docker_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("this doc block needs Docker (CI=true)")
        pytest.skip("no Docker engine")
    before = _docker_state() if docker else None
    try:
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
        )
    finally:
        if before is not None:
            containers, volumes, images = _docker_state()
            for cid in containers - before[0]:
                subprocess.run(["docker", "rm", "-fv", cid], capture_output=True)
            for vol in volumes - before[1]:
                subprocess.run(["docker", "volume", "rm", "-f", vol], capture_output=True)
            for tag in images - before[2]:  # tags the docs invent (registry.example.com/...), not the suite's
                if "example" in tag.split(":")[0]:
                    subprocess.run(["docker", "image", "rm", tag], capture_output=True)
    assert res.returncode == 0, (
        f"{block.id} failed with exit {res.returncode}:\n{block.code}\n--- stdout\n{res.stdout[-3000:]}"
        f"\n--- stderr\n{res.stderr[-3000:]}"
    )
    if block.options.get("cwd") == "empty":
        uid = os.getuid()
        for path in cwd.rglob("*"):
            assert path.lstat().st_uid == uid, f"{block.id}: {path} is not owned by the user who ran the block"
