"""What a missing prerequisite means: a skip on a developer's machine, a failure under ``CI=true``.

A test that skips in CI has silently left the suite, and CI's green then covers less than it says
(issue 12, issue 22). Docker, kubectl and garage already fail under CI (tests/integration/conftest.py,
tests/k8s/manifests.py, tests/storage/conftest.py); these helpers do the same for the rest.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """``CI`` set to anything but empty, 0, false or no (as .ci/run sets it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip locally; under CI=true fail, saying what is missing (module level too: a collection error)."""
    if in_ci():
        pytest.fail(f"required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, reason: str) -> ModuleType:
    """``pytest.importorskip``, except that under CI=true a missing module fails the tests that need it."""
    try:
        return __import__(name)
    except ImportError as exc:
        skip_or_fail(f"{reason} ({exc})")
