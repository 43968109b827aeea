"""Both modes from one suite: the interpreter running pytest decides which one these tests check.

In the project venv (Python 3.11, no synapse-sdk) ``synapse_sdk`` resolves to the shim; in the
``.venv-sdk`` venv (Python 3.12, synapse-sdk==2026.2.17 installed beside the runtime: ``make
test-sdk``) it resolves to the real package.  The same tests of upstream behaviour run in both, so a
test that passes in both is a behaviour the shim shares with upstream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from synapse_runtime.compat import install, is_shim

install()  # the shim sits at the end of sys.path: the real package, when installed, wins

import synapse_sdk  # noqa: E402

MODE = "shim" if is_shim(synapse_sdk) else "real"
COMPAT_PLUGINS = Path(__file__).parent / "plugins"


def pytest_report_header(config: pytest.Config) -> str:
    return f"synapse_sdk mode: {MODE} ({Path(synapse_sdk.__file__).parent})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.real_sdk`` tests check real-package mode itself: in shim mode they are left out
    (and said so as deselected), not skipped; ``make test-sdk`` runs them."""
    if MODE == "real":
        return
    dropped = [item for item in items if item.get_closest_marker("real_sdk")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("real_sdk")]


@pytest.fixture(scope="session")
def mode() -> str:
    """'real' (upstream's package) or 'shim' (synapse-runtime's stand-in)."""
    return MODE
