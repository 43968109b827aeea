"""A pytest plugin for run.py: every test's outcome, and every module that could not be collected,
written as JSON to ``$UPSTREAM_TESTS_REPORT`` (node id -> passed | failed | skipped | error)."""

from __future__ import annotations

import json
import os
from typing import Any

_outcomes: dict[str, str] = {}


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _outcomes[report.nodeid] = "error"


def pytest_runtest_logreport(report: Any) -> None:
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped and report.nodeid not in _outcomes:
        _outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and report.nodeid not in _outcomes:
        _outcomes[report.nodeid] = "passed"


def pytest_sessionfinish(session: Any) -> None:
    with open(os.environ["UPSTREAM_TESTS_REPORT"], "w", encoding="utf-8") as f:
        json.dump(_outcomes, f, indent=1, sort_keys=True)
