"""Throttled progress reporting: the runner turns each call into a JSON event, so calls must be rare."""

from __future__ import annotations

import threading
import time
from typing import Callable

#: progress callback: (uri, bytes_done, total, cached); called at most ~4 times a second plus first and final.
#: A callback that also takes a ``via`` keyword is told which path serves: "fast path" (our own S3
#: signer), "boto3", "http" (presigned URLs) or "local".
ProgressFn = Callable[[str, int, "int | None", bool], None]


class Throttle:
    """Calls ``fn`` at most ``rate`` times per second, always for the first and the final update."""

    def __init__(self, fn: ProgressFn | None, uri: str, total: int | None, rate: float = 4.0,
                 via: str | None = None) -> None:
        self.fn = fn
        # which path serves, for callbacks that take it (the runner's download event): a fallback
        # from the fast path to boto3 must show
        self.kw = {"via": via} if via is not None and fn is not None and _takes_via(fn) else {}
        self.uri = uri
        self.total = total
        self.interval = 1.0 / rate
        self._last = 0.0
        self._started = False
        self._finished = False
        self._lock = threading.Lock()

    def update(self, done: int) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        with self._lock:
            if self._finished or (self._started and now - self._last < self.interval):
                return
            self._started = True
            self._last = now
        self.fn(self.uri, done, self.total, False, **self.kw)

    def final(self, done: int, cached: bool) -> None:
        if self.fn is None:
            return
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self.fn(self.uri, done, self.total, cached, **self.kw)


def _takes_via(fn: ProgressFn) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "via" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
