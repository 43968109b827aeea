"""A small client for the Synapse backend's REST API: the three calls a run needs, done carefully.

Why not upstream's client: it pulls in ``requests`` and a generated model layer (most of upstream's
1.5 s start-up), and a run needs only ``GET models/{id}/``, ``PATCH jobs/{id}/`` and ``POST logs/``.
This module imports nothing heavy at import time; ``urllib.request`` (and with it ``ssl``) is
imported on the first request.

What it guarantees:

* every request has a timeout, and transient failures (5xx, 429 with its ``Retry-After``, refused
  or reset connections, timeouts) are retried with exponential backoff and jitter;
* a ``POST`` is sent again only when it surely never reached the server (a refused connection, a
  failed DNS lookup): after any HTTP status (a 504 from a proxy is exactly the case where the log
  was stored) or a read timeout it may have been processed, and ``logs/`` has no idempotency key,
  so a retry would duplicate entries (upstream learnt this the hard way); ``GET`` and our
  absolute-snapshot ``PATCH`` are safe to repeat;
* errors say which host and which model or job failed, and what to check, and never contain a
  token: tokens live in ``Secret`` wrappers and every message goes through the redactor;
* redirects are refused rather than followed, so the token headers can never be replayed to
  another host.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from synapse_runtime.backend.exceptions import (
    BackendAuthError,
    BackendNotFoundError,
    BackendRequestFailed,
    BackendResponseError,
    BackendUnavailableError,
)

#: The only keys ``PATCH jobs/{id}/`` accepts: the server's serializer forbids any other (400).
JOB_UPDATE_KEYS = frozenset({"status", "progress_record", "metrics_record", "console_logs", "result", "meta"})
#: Job statuses the backend knows (uppercase on the wire).
JOB_STATUSES = frozenset({"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"})

#: A ``Retry-After`` longer than this is cut short: a broken or hostile server must not park a run.
MAX_RETRY_AFTER_S = 60.0
#: Longest single backoff sleep, whatever the attempt number.
MAX_BACKOFF_S = 30.0
#: Server error detail quoted in messages is cut to this many characters.
_DETAIL_CHARS = 300
_MASK = "***"

ENV_HOST = "SYNAPSE_HOST"
ENV_ACCESS_TOKEN = "SYNAPSE_ACCESS_TOKEN"
ENV_USER_TOKEN = "SYNAPSE_PLUGIN_RUN_USER_TOKEN"
ENV_TENANT = "SYNAPSE_PLUGIN_RUN_TENANT"
ENV_URL_HOST = "SYNAPSE_PLUGIN_RUN_URL_HOST"


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


def _env_value(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    if value is None:
        return None
    value = str(value).strip()  # Secret files usually end with a newline
    return value or None


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


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (JSON cannot carry them; Postgres rejects them) with None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode_json(data: Any) -> bytes:
    """JSON for the wire: NaN/Infinity become null, unknown types (Path, datetime) their ``str``."""
    try:
        text = json.dumps(data, allow_nan=False, default=str, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(data), allow_nan=False, default=str, ensure_ascii=False, separators=(",", ":"))
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


class BackendClient:
    """Talks to the Synapse backend (``ctx.client``); thread-safe, one instance per run is enough.

    ``access_token`` is sent as ``Synapse-Access-Token: Token <token>``; ``user_token`` (the plugin
    run's DRF token) as ``Authorization: Token <token>``; ``tenant`` as ``Synapse-Tenant: Token
    <tenant>``; ``url_host`` as the ``url_host`` query parameter of every request (it asks for
    presigned URLs reachable from where the run is, e.g. ``internal``).
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
        self._opener_lock = threading.Lock()
        self._opener_obj: Any = None

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BackendClient | None:
        """A client from upstream's variables, or None when the backend is not configured.

        Needs ``SYNAPSE_HOST`` and a token. As upstream does, a plugin-run user token
        (``SYNAPSE_PLUGIN_RUN_USER_TOKEN``, with ``SYNAPSE_PLUGIN_RUN_TENANT``) wins over
        ``SYNAPSE_ACCESS_TOKEN`` when both are present.
        """
        host = _env_value(env, ENV_HOST)
        access_token = _env_value(env, ENV_ACCESS_TOKEN)
        user_token = _env_value(env, ENV_USER_TOKEN)
        if not host or not (access_token or user_token):
            return None
        try:
            host = normalize_host(host)
        except ValueError as exc:
            from synapse_runtime.errors import ValidationError

            raise ValidationError(f"{ENV_HOST}: {exc}", details={"env": ENV_HOST}) from None
        return cls(
            host,
            access_token=None if user_token else access_token,
            user_token=user_token,
            tenant=_env_value(env, ENV_TENANT),
            url_host=_env_value(env, ENV_URL_HOST),
        )

    @property
    def auth_env(self) -> str:
        """The variable(s) a user should check when the backend refuses our credentials."""
        if self._user_token is not None:
            return f"{ENV_USER_TOKEN} and {ENV_TENANT}"
        return ENV_ACCESS_TOKEN

    def with_retries(self, retries: int) -> BackendClient:
        """The same client (host, tokens, connection set-up) with another retry budget: the
        reporter fails fast on snapshots that the next one replaces anyway."""
        if retries < 0:
            raise ValueError("retries must be >= 0")
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.retries = int(retries)
        return clone

    def __copy__(self) -> BackendClient:
        return self  # immutable in practice; sharing also keeps dataclasses.asdict(ctx) working

    def __deepcopy__(self, memo: dict[int, Any]) -> BackendClient:
        return self

    def __repr__(self) -> str:
        scheme = "user token" if self._user_token is not None else "access token"
        return f"BackendClient(host={self.host!r}, auth={scheme}, tenant={self._tenant!r}, url_host={self.url_host!r})"

    def redact(self, text: str) -> str:
        """``text`` with our tokens replaced by ``***`` (for messages built from foreign exceptions)."""
        for secret in (self._access_token, self._user_token):
            if secret is not None and secret.reveal() and secret.reveal() in text:
                text = text.replace(secret.reveal(), _MASK)
        return text

    # -- the API ------------------------------------------------------------------------------

    def get_model(self, model_id: int | str) -> dict[str, Any]:
        """The model's detail (``id``, ``name``, ``category``, ``file``, ...); ``file`` is a URL
        (usually presigned https, sometimes ``s3://``) of the model's archive."""
        key = _path_id(model_id, "model_id")
        data = self._request("GET", f"models/{key}/", what=f"model {model_id}")
        if not isinstance(data, dict):
            raise self._bad_response("GET", f"models/{key}/", f"model {model_id}", "expected a JSON object")
        return data

    def update_job(self, job_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """PATCH the job with ``status``/``progress_record``/``metrics_record``/``console_logs``/
        ``result``/``meta``; any other key is a ValueError here rather than a 400 from the server."""
        if not isinstance(data, Mapping):
            raise ValueError("update_job data must be a mapping")
        unknown = sorted(str(k) for k in data if k not in JOB_UPDATE_KEYS)
        if unknown:
            raise ValueError(
                f"update_job: the backend accepts only {', '.join(sorted(JOB_UPDATE_KEYS))}; got {', '.join(unknown)}"
            )
        body = dict(data)
        if "status" in body:
            status = str(getattr(body["status"], "value", body["status"])).upper()
            if status not in JOB_STATUSES:
                raise ValueError(f"update_job: status must be one of {', '.join(sorted(JOB_STATUSES))}, not {body['status']!r}")
            body["status"] = status
        key = _path_id(job_id, "job_id")
        result = self._request("PATCH", f"jobs/{key}/", body=body, what=f"job {job_id}")
        return result if isinstance(result, dict) else {}

    def create_logs(self, entries: list[dict[str, Any]]) -> None:
        """POST log entries (upstream's shape: ``event``, ``data``, ``datetime``, ``job``, ``step``,
        ``level``, ``file``); a ``file`` that is a local path is sent inline as a base64 data URI."""
        if not entries:
            return
        items = []
        for entry in entries:
            item = dict(entry)
            file = item.get("file")
            if file and not (isinstance(file, str) and file.startswith("data:")):
                from synapse_runtime.backend.records import file_data_uri

                item["file"] = file_data_uri(file)
            items.append(item)
        # Upstream sends one entry as an object and several as a list; the server takes both.
        body: Any = items if len(items) > 1 else items[0]
        self._request("POST", "logs/", body=body, what=f"logs ({len(items)} entries)")

    # -- transport ----------------------------------------------------------------------------

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

    def _request(self, method: str, path: str, *, body: Any = None, what: str) -> Any:
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


def _path_id(value: int | str, name: str) -> str:
    """An id as one URL path segment; refuses what would change the path (``/``, ``..``, empty)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be an int or a string, not {type(value).__name__}")
    text = str(value).strip()
    if not text or text in (".", "..") or any(c in text for c in "/?#\\") or any(ord(c) < 33 for c in text):
        raise ValueError(f"{name} {value!r} is not a valid id")
    from urllib.parse import quote

    return quote(text, safe="-_.~")


__all__ = ["BackendClient", "JOB_STATUSES", "JOB_UPDATE_KEYS", "Secret", "encode_json", "normalize_host"]
