"""Redaction for a serving process: the run's secrets, plus every JWT-shaped string (model tokens).

Model tokens arrive per request and are not known in advance, and upstream's ``get_model`` prints
the whole token on every request; any three dot-separated base64url segments starting with
``eyJ`` (a JSON header) are masked in every event line and message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..events.redact import MASK, Redactor

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


class ServeRedactor(Redactor):
    __slots__ = ()

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(secrets)
        self.active = True  # JWTs are masked even when the environment holds no secret

    def add(self, secrets: Iterable[str]) -> None:
        super().add(secrets)
        self.active = True

    def __call__(self, text: str) -> str:
        return JWT.sub(MASK, super().__call__(text))

    def json(self, text: str) -> str:
        text = super().json(text) if self._secrets else text
        return JWT.sub(MASK, text) if "eyJ" in text else text


__all__ = ["JWT", "ServeRedactor"]
