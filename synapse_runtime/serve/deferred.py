"""Upstream's deferred serve responses (``handle_inference``): a ticket for work that outlives a deadline.

The wire format is upstream's (``synapse_sdk.plugins.actions.inference.deferred``), so its callers
(``to_task``) poll our server unchanged: a pending answer is ``{"__synapse_deferred__": true,
"status": "pending", "ticket": ...}``; a poll body carries ``{"__synapse_poll__": ticket}``. Tickets
live in the process (one container = one replica), bounded in number and age.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from typing import Any

ENVELOPE_KEY = "__synapse_deferred__"
POLL_KEY = "__synapse_poll__"


def is_poll_request(body: Any) -> bool:
    return isinstance(body, dict) and POLL_KEY in body


def extract_ticket(body: dict[str, Any]) -> str | None:
    ticket = body.get(POLL_KEY)
    return None if ticket is None else str(ticket)


def pending_envelope(ticket: str) -> dict[str, Any]:
    return {ENVELOPE_KEY: True, "status": "pending", "ticket": ticket}


def failed_envelope(error: str) -> dict[str, Any]:
    return {ENVELOPE_KEY: True, "status": "failed", "error": error}


def not_found_envelope(ticket: str) -> dict[str, Any]:
    return {ENVELOPE_KEY: True, "status": "not_found", "ticket": ticket}


class TicketStore:
    """Running tasks by ticket; the oldest are dropped beyond ``max_entries`` or ``ttl_s``."""

    def __init__(self, max_entries: int = 256, ttl_s: float = 3600.0) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._tasks: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._ids = itertools.count(1)

    def register(self, task: Any) -> str:
        self._expire()
        while len(self._tasks) >= self.max_entries:
            self._tasks.popitem(last=False)
        ticket = f"t{next(self._ids)}-{int(time.monotonic() * 1000)}"
        self._tasks[ticket] = (time.monotonic(), task)
        return ticket

    def get(self, ticket: str) -> Any | None:
        self._expire()
        entry = self._tasks.get(ticket)
        return None if entry is None else entry[1]

    def pop(self, ticket: str) -> None:
        self._tasks.pop(ticket, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for ticket in [t for t, (born, _) in self._tasks.items() if now - born > self.ttl_s]:
            del self._tasks[ticket]


__all__ = ["TicketStore", "extract_ticket", "failed_envelope", "is_poll_request", "not_found_envelope",
           "pending_envelope"]
