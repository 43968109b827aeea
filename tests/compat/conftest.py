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


@pytest.fixture(scope="session")
def mode() -> str:
    """'real' (upstream's package) or 'shim' (synapse-runtime's stand-in)."""
    return MODE
