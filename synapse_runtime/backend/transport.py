"""The HTTP transport to the Synapse backend: timeouts, retries, redirects refused, tokens kept secret.

Split from the client as httpx splits its transport from its client: this module knows how to send
one request safely and what its failure means; ``client.py`` knows which three calls a run makes.

What it guarantees:

* every request has a timeout, and transient failures (5xx, 429 with its ``Retry-After``, refused
  or reset connections, timeouts) are retried with exponential backoff and jitter;
* a ``POST`` is sent again only when it surely never reached the server (a refused connection, a
  failed DNS lookup): after any HTTP status (a 504 from a proxy is exactly the case where the log
  was stored) or a read timeout it may have been processed, and ``logs/`` has no idempotency key,
  so a retry would duplicate entries; ``GET`` and absolute-snapshot ``PATCH`` are safe to repeat;
* errors say which host and what failed, and what to check, and never contain a token: tokens live
  in ``Secret`` wrappers and every message goes through the redactor;
* redirects are refused rather than followed, so the token headers can never be replayed to
  another host.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

from synapse_runtime.backend.exceptions import (
    BackendAuthError,
    BackendNotFoundError,
    BackendRequestFailed,
    BackendResponseError,
    BackendUnavailableError,
)
from ..jsonable import finite  # NaN/Infinity -> null: one rule for events and the wire

#: A ``Retry-After`` longer than this is cut short: a broken or hostile server must not park a run.
MAX_RETRY_AFTER_S = 60.0
#: Longest single backoff sleep, whatever the attempt number.
MAX_BACKOFF_S = 30.0
#: Server error detail quoted in messages is cut to this many characters.
_DETAIL_CHARS = 300
_MASK = "***"
ENV_HOST = "SYNAPSE_HOST"


class Secret:
    """A string that prints as ``***``: ``repr``, ``str``, ``vars()`` and tracebacks never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling must not be a way around the mask
        raise TypeError("Secret values cannot be pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


class _TransportError(Exception):
    """No HTTP status came back. ``sent`` is False when the request surely never reached the server."""

    def __init__(self, reason: BaseException, *, sent: bool, timeout: bool = False, fatal: bool = False) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.sent = sent
        self.timeout = timeout
        self.fatal = fatal  # TLS verification and the like: retrying cannot help


def normalize_host(host: str) -> str:
    """``api.example.com`` -> ``https://api.example.com``; trailing slashes dropped, a path prefix kept."""
    host = host.strip()
    if not host:
        raise ValueError("the Synapse backend host is empty (set SYNAPSE_HOST)")
    if "://" not in host:
        host = "https://" + host
    scheme, _, rest = host.partition("://")
    scheme = scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"the Synapse backend host must be an http(s) URL, not {scheme}://...")
    netloc = rest.split("/", 1)[0]
    if "@" in netloc:
        # Never echo it: the part before '@' is a password. urllib would not send it anyway, and
        # its "nonnumeric port" error would quote it.
        raise ValueError(
            "the Synapse backend host must not contain user:password@ (the value is not shown; "
            "credentials go in SYNAPSE_ACCESS_TOKEN)"
        )
    return host.rstrip("/")


def _display_host(host: str) -> str:
    """The host for messages, without any ``user:password@`` part."""
    scheme, _, rest = host.partition("://")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
    return f"{scheme}://{netloc}{slash}{path}"


def encode_json(data: Any) -> bytes:
    """JSON for the wire: NaN/Infinity become null, unknown types (Path, datetime) their ``str``."""
    try:
        text = json.dumps(data, allow_nan=False, default=str, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(finite(data), allow_nan=False, default=str, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class Transport:
    """Sends one request to the backend and turns every answer into data or a typed error.

    ``access_token`` goes out as ``Synapse-Access-Token: Token <token>``, ``user_token`` as
    ``Authorization: Token <token>``, ``tenant`` as ``Synapse-Tenant: Token <tenant>``, ``url_host``
    as the ``url_host`` query parameter of every request. ``auth_env`` names the variables a user
    should check when the backend refuses the credentials.
    """

    def __init__(
        self,
        host: str,
        *,
        access_token: str | None = None,
        user_token: str | None = None,
        tenant: str | None = None,
        url_host: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        auth_env: str = "SYNAPSE_ACCESS_TOKEN",
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self._host = normalize_host(host)
        self.host = _display_host(self._host)
        self._access_token = Secret(access_token) if access_token else None
        self._user_token = Secret(user_token) if user_token else None
        self._tenant = tenant or None
        self.url_host = url_host or None
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.auth_env = auth_env
        self._opener_lock = threading.Lock()
        self._opener_obj: Any = None

    def with_retries(self, retries: int) -> Transport:
        """The same transport (host, tokens, connection set-up) with another retry budget."""
        if retries < 0:
            raise ValueError("retries must be >= 0")
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.retries = int(retries)
        return clone

    @property
    def uses_user_token(self) -> bool:
        return self._user_token is not None

    @property
    def tenant(self) -> str | None:
        return self._tenant

    def redact(self, text: str) -> str:
        """``text`` with our tokens replaced by ``***`` (for messages built from foreign exceptions)."""
        for secret in (self._access_token, self._user_token):
            if secret is not None and secret.reveal() and secret.reveal() in text:
                text = text.replace(secret.reveal(), _MASK)
        return text

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "synapse-runtime"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if self._access_token is not None:
            headers["Synapse-Access-Token"] = f"Token {self._access_token.reveal()}"
        if self._user_token is not None:
            headers["Authorization"] = f"Token {self._user_token.reveal()}"
        if self._tenant:
            headers["Synapse-Tenant"] = f"Token {self._tenant}"
        return headers

    def _url(self, path: str) -> str:
        url = f"{self._host}/{path}"
        if self.url_host:
            from urllib.parse import urlencode

            url += "?" + urlencode({"url_host": self.url_host})
        return url

    def _opener(self) -> Any:
        with self._opener_lock:
            if self._opener_obj is None:
                import ssl
                import urllib.request

                class _NoRedirect(urllib.request.HTTPRedirectHandler):
                    """Refuse redirects: following one would replay our token headers elsewhere."""

                    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
                        return None

                # ProxyHandler (HTTPS_PROXY, NO_PROXY) is part of the default chain.
                self._opener_obj = urllib.request.build_opener(
                    _NoRedirect, urllib.request.HTTPSHandler(context=ssl.create_default_context())
                )
            return self._opener_obj

    def _send_once(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, Any, bytes]:
        """One HTTP exchange: (status, reason, headers, body bytes), or _TransportError."""
        import http.client
        import ssl
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with self._opener().open(request, timeout=self.timeout) as response:
                return response.status, response.reason or "", response.headers, response.read()
        except urllib.error.HTTPError as exc:
            try:
                raw = exc.read() or b""
            except Exception:
                raw = b""
            finally:
                exc.close()
            return exc.code, str(exc.reason or ""), exc.headers, raw
        except urllib.error.URLError as exc:
            reason = exc.reason if isinstance(exc.reason, BaseException) else OSError(str(exc.reason))
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise _TransportError(reason, sent=False, fatal=True) from None
            # urllib raises URLError only while connecting or sending, before any response: the
            # server cannot have processed the request, so a retry is safe for every method.
            fatal = not isinstance(exc.reason, BaseException)  # e.g. "unknown url type"
            raise _TransportError(reason, sent=False, timeout=isinstance(reason, TimeoutError), fatal=fatal) from None
        except http.client.InvalidURL as exc:  # a bad port and the like: raised before sending, never fixed by a retry
            raise _TransportError(exc, sent=False, fatal=True) from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise _TransportError(exc, sent=True, timeout=isinstance(exc, TimeoutError)) from None

    def request(self, method: str, path: str, *, body: Any = None, what: str) -> Any:
        """The decoded JSON answer of ``method path`` (``what`` names it in errors), retried as safe."""
        url = self._url(path)
        payload = None if body is None else encode_json(body)
        headers = self._headers(payload is not None)
        idempotent = method in ("GET", "HEAD", "PUT", "PATCH", "DELETE")
        attempts = self.retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                status, reason, resp_headers, raw = self._send_once(method, url, payload, headers)
            except _TransportError as exc:
                retry = not exc.fatal and attempt < attempts and (idempotent or not exc.sent)
                if retry:
                    time.sleep(self._backoff_delay(attempt))
                    continue
                raise self._transport_error(method, path, what, exc, attempt) from None
            if 200 <= status < 300:
                return self._decode(method, path, what, raw)
            # Any answer means the request arrived, so a POST may have been processed: never repeat it.
            retryable = idempotent and (status == 429 or status >= 500)
            if retryable and attempt < attempts:
                delay = _parse_retry_after(resp_headers.get("Retry-After") if resp_headers is not None else None)
                time.sleep(delay if delay is not None else self._backoff_delay(attempt))
                continue
            raise self._status_error(method, path, what, status, reason, raw, attempt)

    def _backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: at least half the step, so retries do back off."""
        import random

        step = min(MAX_BACKOFF_S, self.backoff * (2 ** (attempt - 1)))
        return step / 2 + random.uniform(0, step / 2)

    # -- errors -------------------------------------------------------------------------------

    def _decode(self, method: str, path: str, what: str, raw: bytes) -> Any:
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise self._bad_response(method, path, what, "the response is not JSON") from None

    def _bad_response(self, method: str, path: str, what: str, problem: str) -> BackendResponseError:
        return BackendResponseError(
            self.redact(f"unexpected answer from the Synapse backend {self.host} for {what}: {problem}"),
            host=self.host, method=method, path=path,
        )

    def _transport_error(self, method: str, path: str, what: str, exc: _TransportError, attempts: int) -> BackendRequestFailed:
        tries = f" (after {attempts} attempt{'s' if attempts != 1 else ''})"
        if exc.fatal:
            import ssl

            tls = isinstance(exc.reason, ssl.SSLError)
            return BackendResponseError(
                self.redact(f"cannot talk to the Synapse backend {self.host} for {what}: {exc.reason}"),
                host=self.host, method=method, path=path,
                hint="check the server certificate, or SSL_CERT_FILE for a private CA" if tls
                else f"check {ENV_HOST} (scheme, host name, port)",
            )
        if exc.timeout:
            message = f"the Synapse backend {self.host} did not answer {method} for {what} within {self.timeout:g} s{tries}"
        else:
            message = f"cannot reach the Synapse backend {self.host} for {what}: {exc.reason}{tries}"
        return BackendUnavailableError(self.redact(message), host=self.host, method=method, path=path)

    def _status_error(
        self, method: str, path: str, what: str, status: int, reason: str, raw: bytes, attempts: int
    ) -> BackendRequestFailed:
        detail = _error_detail(raw)
        label = f"{status} {reason}".strip()
        suffix = f": {detail}" if detail else ""
        kwargs: dict[str, Any] = {"host": self.host, "method": method, "path": path, "status": status}
        if status in (401, 403):
            message = f"the Synapse backend {self.host} refused {method} for {what} ({label}){suffix}"
            return BackendAuthError(self.redact(message), hint=f"check {self.auth_env}", **kwargs)
        if status == 404:
            return BackendNotFoundError(self.redact(f"{what} not found on {self.host}"), **kwargs)
        if status == 429 or status >= 500:
            tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
            message = f"the Synapse backend {self.host} failed {method} for {what} ({label}){tries}{suffix}"
            return BackendUnavailableError(self.redact(message), **kwargs)
        if 300 <= status < 400:
            message = f"the Synapse backend {self.host} answered {method} for {what} with a redirect ({label}); not followed"
            return BackendResponseError(self.redact(message), hint=f"check {ENV_HOST} (scheme, path prefix)", **kwargs)
        message = f"the Synapse backend {self.host} rejected {method} for {what} ({label}){suffix}"
        return BackendResponseError(self.redact(message), **kwargs)


def _error_detail(raw: bytes) -> str:
    """A short human summary of an error body (DRF's ``{"detail": ...}`` or field errors)."""
    if not raw:
        return ""
    text = raw[: _DETAIL_CHARS * 4].decode("utf-8", "replace")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        text = data["detail"]
    elif data is not None:
        text = json.dumps(data, ensure_ascii=False)
    elif text.lstrip().startswith("<"):
        return ""  # an HTML error page says nothing useful in one line
    text = " ".join(text.split())
    return text[:_DETAIL_CHARS] + ("..." if len(text) > _DETAIL_CHARS else "")
