"""Secret redaction: the last line of defence before any byte leaves the process.

The contract promises that no secret value appears in any event, file or message.  We know which
values are secret (env keys that name one, and everything from a Secret volume), so we replace
those exact values, in raw and JSON-escaped form, wherever they occur in an outgoing line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

#: Env keys whose values are secrets: the contract's list (and the usual spellings of credentials).
SECRET_KEY_PATTERN = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|ACCESS_KEY|API_KEY|_KEY$|^KEY$|AUTH(?!OR)",
    re.IGNORECASE,
)
#: Values shorter than this are not redacted: replacing "1" or "on" everywhere would destroy the
#: stream while protecting nothing (such a value is guessable anyway).
MIN_SECRET_LENGTH = 4
MASK = "***"


#: Keys that match the pattern but name configuration, not a secret.
NOT_SECRET = frozenset({"SYNAPSE_SECRET_DIR", "SYNAPSE_SHARD_KEY", "AWS_SHARED_CREDENTIALS_FILE", "GOOGLE_APPLICATION_CREDENTIALS"})


def is_secret_key(key: str) -> bool:
    return key not in NOT_SECRET and bool(SECRET_KEY_PATTERN.search(key))


def secret_values(env: Mapping[str, str], extra: Iterable[str] = ()) -> set[str]:
    """The values to redact: those of secret-named keys, plus ``extra`` (Secret-volume values)."""
    values = {v for k, v in env.items() if is_secret_key(k) and isinstance(v, str)}
    values.update(extra)
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


class Redactor:
    """Replaces known secret values in text; a no-op (one attribute check) when there are none."""

    __slots__ = ("_needles", "active")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        needles: set[str] = set()
        for s in secrets:
            if len(s) < MIN_SECRET_LENGTH:
                continue
            needles.add(s)
            escaped = json.dumps(s, ensure_ascii=False)[1:-1]
            needles.add(escaped)
            needles.add(json.dumps(s)[1:-1])
        # Longest first so that a secret containing another is masked whole.
        self._needles = sorted(needles, key=len, reverse=True)
        self.active = bool(self._needles)

    def add(self, secrets: Iterable[str]) -> None:
        merged = Redactor([*self._needles, *secrets])
        self._needles, self.active = merged._needles, merged.active

    def __call__(self, text: str) -> str:
        if not self.active:
            return text
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text


__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor", "is_secret_key", "secret_values"]
