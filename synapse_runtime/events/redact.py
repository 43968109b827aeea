"""Secret redaction: the last line of defence before any byte leaves the process.

The contract promises that no secret value appears in any event, file or message.  We know which
values are secret (env keys that name one, and everything from a Secret volume), so we replace
those exact values wherever they occur.

Two entry points, because the outputs are of two kinds.  Plain text (a traceback, a message
built from a foreign exception) is redacted with ``redactor(text)``.  Serialized JSON (event lines,
``result.json``, the termination message) is redacted with ``redactor.json(text)``, which replaces
secrets **inside string tokens only** (keys and values), decoding each token, masking the decoded
text and encoding it again: a secret equal to a JSON literal (``null``, ``true``) or to a number
never touches structure, a secret that needs escaping (quotes, backslashes, non-ASCII) is found
whatever the escaping, and the output is always valid JSON.  A secret embedded in a longer string
is still hidden.
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

#: A JSON string token (as ``json`` writes it: no raw control characters inside).
_STRING_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)

#: Keys that match the pattern but name configuration, not a secret.
NOT_SECRET = frozenset({"SYNAPSE_SECRET_DIR", "SYNAPSE_SHARD_KEY", "AWS_SHARED_CREDENTIALS_FILE", "GOOGLE_APPLICATION_CREDENTIALS"})


def is_secret_key(key: str) -> bool:
    """Whether an env key names a secret (the contract's list, minus configuration keys)."""
    return key not in NOT_SECRET and bool(SECRET_KEY_PATTERN.search(key))


def secret_values(env: Mapping[str, str], extra: Iterable[str] = ()) -> set[str]:
    """The values to redact: those of secret-named keys, plus ``extra`` (Secret-volume values)."""
    values = {v for k, v in env.items() if is_secret_key(k) and isinstance(v, str)}
    values.update(extra)
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


def _escaped_forms(secret: str) -> set[str]:
    """How ``secret`` looks inside a JSON string token, as ``json`` escapes it (ASCII or not)."""
    return {json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(secret)[1:-1]}


class Redactor:
    """Replaces known secret values in text or in JSON; a no-op (one attribute check) when there are none."""

    __slots__ = ("_secrets", "_needles", "_probes", "active")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        raw = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        # Longest first so that a secret containing another is masked whole.
        self._secrets = sorted(raw, key=len, reverse=True)
        # Plain text gets the raw values and their escaped forms (text may quote JSON).
        needles = set(raw)
        probes: set[str] = set()
        for s in raw:
            forms = _escaped_forms(s)
            needles.update(forms)
            probes.update(forms)
        self._needles = sorted(needles, key=len, reverse=True)
        # JSON is scanned token by token only when one of these occurs in it at all: the JSON
        # encoder escapes character by character, so a token holding a secret holds its escaped form.
        self._probes = sorted(probes, key=len, reverse=True)
        self.active = bool(self._secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Redact these too (values learnt during the run)."""
        merged = Redactor([*self._secrets, *secrets])
        self._secrets, self._needles, self._probes, self.active = (
            merged._secrets, merged._needles, merged._probes, merged.active)

    def __call__(self, text: str) -> str:
        """``text`` (not JSON: a traceback, a message) with every secret replaced by ``***``."""
        if not self.active:
            return text
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def json(self, text: str) -> str:
        """Serialized JSON with secrets masked inside string tokens only; valid JSON in, valid JSON out."""
        if not self.active or not any(p in text for p in self._probes):
            return text
        ascii_only = text.isascii()
        return _STRING_TOKEN.sub(lambda m: self._token(m.group(0), ascii_only), text)

    def _token(self, token: str, ascii_only: bool) -> str:
        if not any(p in token for p in self._probes):
            return token
        value = json.loads(token)
        masked = value
        for secret in self._secrets:
            if secret in masked:
                masked = masked.replace(secret, MASK)
        if masked == value:
            return token
        return json.dumps(masked, ensure_ascii=ascii_only)


__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor", "is_secret_key", "secret_values"]
