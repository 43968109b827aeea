"""Request metrics: Prometheus text for ``/metrics``, and one ``metrics`` event per interval.

Per request only counters move and one latency is recorded (no event, no lock: the server runs in
one event loop thread). ``/metrics`` is cumulative (what Prometheus scrapes); the interval event
(category ``serve``) carries the interval's count, errors, rejections and latency percentiles, and
is written only for intervals that saw requests, so an idle server stays quiet.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

#: Latency histogram buckets, seconds (Prometheus' defaults with the small end refined for fast models).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Latencies kept per interval for its percentiles (beyond it, every other one is dropped).
_WINDOW = 50_000


@dataclass
class Metrics:
    requests: Counter[int] = field(default_factory=Counter)  # by status code
    errors: Counter[str] = field(default_factory=Counter)  # by error type
    rejected: int = 0  # 503 over max_ongoing_requests, or while draining
    in_flight: int = 0
    model_loads: int = 0
    model_load_failures: int = 0
    batches: int = 0
    batched_items: int = 0
    _buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    _latency_sum: float = 0.0
    _window: list[float] = field(default_factory=list)
    _window_errors: int = 0
    _window_rejected: int = 0

    def observe(self, status: int, seconds: float) -> None:
        self.requests[status] += 1
        self._buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._latency_sum += seconds
        if status >= 500:
            self._window_errors += 1
        if len(self._window) < _WINDOW:
            self._window.append(seconds)

    def reject(self) -> None:
        self.rejected += 1
        self._window_rejected += 1

    def interval(self) -> dict[str, float | int] | None:
        """The values of the interval just ended (None when it saw no request), and a new interval."""
        window, errors, rejected = self._window, self._window_errors, self._window_rejected
        self._window, self._window_errors, self._window_rejected = [], 0, 0
        if not window and not rejected:
            return None
        window.sort()

        def pct(p: float) -> float:
            return round(window[min(len(window) - 1, int(p * len(window)))] * 1000, 3) if window else 0.0

        return {"requests": len(window), "errors_5xx": errors, "rejected": rejected, "in_flight": self.in_flight,
                "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
                "max_ms": round(window[-1] * 1000, 3) if window else 0.0}

    def totals(self) -> dict[str, int]:
        return {"requests": sum(self.requests.values()), "errors_5xx": sum(n for s, n in self.requests.items() if s >= 500),
                "rejected": self.rejected, "model_loads": self.model_loads,
                "model_load_failures": self.model_load_failures}

    def prometheus(self, ready: bool) -> str:
        """The text exposition format (version 0.0.4)."""
        out = [
            "# HELP synapse_serve_requests_total Requests answered, by HTTP status.",
            "# TYPE synapse_serve_requests_total counter",
            *(f'synapse_serve_requests_total{{status="{s}"}} {n}' for s, n in sorted(self.requests.items())),
            "# HELP synapse_serve_errors_total Requests that failed, by error type.",
            "# TYPE synapse_serve_errors_total counter",
            *(f'synapse_serve_errors_total{{type="{_label(t)}"}} {n}' for t, n in sorted(self.errors.items())),
            "# HELP synapse_serve_rejected_total Requests refused with 503 (over max_ongoing_requests, or draining).",
            "# TYPE synapse_serve_rejected_total counter",
            f"synapse_serve_rejected_total {self.rejected}",
            "# HELP synapse_serve_in_flight Requests being served now.",
            "# TYPE synapse_serve_in_flight gauge",
            f"synapse_serve_in_flight {self.in_flight}",
            "# HELP synapse_serve_ready 1 when the deployment accepts traffic.",
            "# TYPE synapse_serve_ready gauge",
            f"synapse_serve_ready {int(ready)}",
            "# HELP synapse_serve_model_loads_total Model loads, by outcome.",
            "# TYPE synapse_serve_model_loads_total counter",
            f'synapse_serve_model_loads_total{{outcome="ok"}} {self.model_loads}',
            f'synapse_serve_model_loads_total{{outcome="failed"}} {self.model_load_failures}',
            "# HELP synapse_serve_batches_total Batches passed to infer_batch, and the items in them.",
            "# TYPE synapse_serve_batches_total counter",
            f"synapse_serve_batches_total {self.batches}",
            f"synapse_serve_batched_items_total {self.batched_items}",
            "# HELP synapse_serve_request_duration_seconds Time from request to response.",
            "# TYPE synapse_serve_request_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*BUCKETS, float("inf")), self._buckets):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'synapse_serve_request_duration_seconds_bucket{{le="{le}"}} {cumulative}')
        out.append(f"synapse_serve_request_duration_seconds_sum {self._latency_sum:.6f}")
        out.append(f"synapse_serve_request_duration_seconds_count {cumulative}")
        return "\n".join(out) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


__all__ = ["BUCKETS", "Metrics"]
