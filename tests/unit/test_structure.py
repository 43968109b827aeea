"""The shape of the package: small modules with one job each, and no import cycle.

A module past 400 lines has grown a second job (docs/architecture.md says where each job lives). An
import cycle, even through a function-level import, means two modules each know the other's job; the
only imports left out are those under ``if TYPE_CHECKING:``. A name taken from a package's
``__init__`` counts as an import of that package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "synapse_runtime"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, "split these modules by job"


def test_no_import_cycle() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert _cycles(graph) == []


def test_the_cycle_check_sees_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert "synapse_runtime.contract.runner" in graph["synapse_runtime.cli"] or any(
        "synapse_runtime.contract.runner" in deps for deps in graph.values()
    ), "the import scan finds nothing: fix _imports"


def test_plugin_api_does_not_know_the_run() -> None:
    """``actions/`` (what plugin authors import) takes from ``contract/`` only the one owner of
    process signals (a step rollback holds SIGTERM) and the one boolean vocabulary; the run's
    order, inputs and outputs stay out of the plugin API."""
    allowed = {"synapse_runtime.contract.signals", "synapse_runtime.contract.knobs"}
    found = {
        (name, target)
        for name, path in MODULES.items() if name.startswith("synapse_runtime.actions.")
        for target in _imports(name, path)
        if target.startswith("synapse_runtime.contract") and target not in allowed
    }
    assert not found, sorted(found)


def test_compat_holds_only_what_faces_upstream() -> None:
    """The runtime's own driver lives in ``contract/``; ``compat/`` holds the shim, upstream's
    driver and logger, and the image build's check."""
    names = sorted(p.name for p in (PACKAGE / "compat").glob("*.py"))
    assert names == ["__init__.py", "check_plugin.py", "missing.py", "real_logger.py", "upstream_driver.py"], names
    assert "class RuntimeDriver" in (PACKAGE / "contract" / "drivers.py").read_text(encoding="utf-8")


def test_old_flat_module_paths_are_the_moved_modules() -> None:
    """A plugin or tool that imported ``synapse_runtime.steps`` before the move gets the same module
    object (so ``isinstance`` and ``monkeypatch`` agree under either name); unknown names still fail."""
    import importlib

    import synapse_runtime
    from synapse_runtime import _MOVED

    for leaf, package in _MOVED.items():
        assert importlib.import_module(f"synapse_runtime.{leaf}") is importlib.import_module(
            f"synapse_runtime.{package}.{leaf}"), leaf
        assert (PACKAGE / package / f"{leaf}.py").is_file() and not (PACKAGE / f"{leaf}.py").exists()
    from synapse_runtime.steps import BaseStep
    from synapse_runtime.actions.steps import BaseStep as Moved

    assert BaseStep is Moved and synapse_runtime.run.__module__ == "synapse_runtime.contract.runner"
    try:
        importlib.import_module("synapse_runtime.no_such_module")
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError("an unknown module imported")


def test_architecture_doc_names_every_module_of_actions_and_contract() -> None:
    """docs/architecture.md is the map: every module of the two audiences' packages, every
    top-level module and every subpackage is named there, so a new one cannot go unexplained."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [f"{pkg}/{p.name}" for pkg in ("actions", "contract") for p in sorted((PACKAGE / pkg).glob("*.py"))
               if p.name != "__init__.py" and f"{pkg}/{p.name}" not in text]
    missing += [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
                and f"{p.name}" not in text]
    missing += [f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and f"{p.name}/" not in text]
    assert not missing, f"name these in docs/architecture.md: {missing}"


def test_no_private_name_is_imported_across_modules() -> None:
    """A name with a leading underscore is its module's own business: one another module needs is
    public (and documented as such), or it lives where both can reach it."""
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("synapse_runtime")):
                found += [f"{name}: {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, found


#: The modules that may touch ``os.environ``, and why.  Everything else gets the run's settings or
#: its merged environment mapping handed down (contract/settings.py, contract/inputs.py).
ENVIRON_READERS = {
    "cli.py": "an entry point: the contract's env inputs for list/schema/serve-or-run; NO_COLOR",
    "contract/runner.py": "an entry point: the run's environment, read once; env files exported for boto3",
    "contract/inprocess.py": "an entry point: run_plugin's environment, read once",
    "serve/server.py": "an entry point: the server's environment, read once",
    "contract/settings.py": "settings.from_environ, for callers outside a run (the storage CLI, tests)",
    "contract/inputs.py": "config.yaml's env: exported under a run's or server's own process",
    "contract/workdir.py": "relative path knobs made absolute before the working directory changes",
    "actions/env.py": "upstream's PluginEnvironment.from_environ (the plugin API)",
    "serve/deployment.py": "upstream's _load_model_from_token outside our server (which replaces it)",
    "storage/awsenv.py": "AWS_* as botocore reads them, so the fast path agrees with boto3 by construction",
    "storage/fastpath.py": "AWS credentials, only where awsenv says botocore would take them from env",
    "storage/config.py": "XDG_CACHE_HOME, the platform's cache location (no knob of ours)",
    "testing.py": "the environment a test's subprocess or container inherits",
}


def test_only_the_listed_modules_touch_the_process_environment() -> None:
    readers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if re.search(r"os\.environ|os\.getenv|\bgetenv\(", p.read_text(encoding="utf-8")))
    assert readers == sorted(ENVIRON_READERS), "hand the run's settings or environment down instead"
