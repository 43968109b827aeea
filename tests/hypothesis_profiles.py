"""Hypothesis profiles: reproducible in CI, more thorough on a workstation.

``ci`` (selected when ``CI=true``): derandomized (a fixed seed per test, so a CI failure reproduces
exactly and no run is flaky), 300 examples per property, no example database. ``dev`` (otherwise):
random, 1000 examples per property, the local example database replays past failures first.
``soak``: random, 2000 per property (``HYPOTHESIS_PROFILE=soak``). ``HYPOTHESIS_PROFILE`` overrides
the choice. docs/reliability.md has the figures.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_EXAMPLES = 300
DEV_EXAMPLES = 1000
SOAK_EXAMPLES = 2000

settings.register_profile(
    "ci", max_examples=CI_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=DEV_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=SOAK_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
settings.load_profile(PROFILE)
