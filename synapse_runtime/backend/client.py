"""A small client for the Synapse backend's REST API: the three calls a run needs, done carefully.

Why not upstream's client: it pulls in ``requests`` and a generated model layer (most of upstream's
1.5 s start-up), and a run needs only ``GET models/{id}/``, ``PATCH jobs/{id}/`` and ``POST logs/``.
How a request is sent (timeouts, retries, redirects, secrets) is ``transport.py``'s job; this module
says which requests a run makes and what they may carry, refusing a bad one before it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synapse_runtime.backend.transport import (  # noqa: F401 - Secret, encode_json: re-exported
    ENV_HOST,
    Secret,
    Transport,
    encode_json,
    normalize_host,
)

#: The only keys ``PATCH jobs/{id}/`` accepts: the server's serializer forbids any other (400).
JOB_UPDATE_KEYS = frozenset({"status", "progress_record", "metrics_record", "console_logs", "result", "meta"})
#: Job statuses the backend knows (uppercase on the wire).
JOB_STATUSES = frozenset({"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"})

ENV_ACCESS_TOKEN = "SYNAPSE_ACCESS_TOKEN"
ENV_USER_TOKEN = "SYNAPSE_PLUGIN_RUN_USER_TOKEN"
ENV_TENANT = "SYNAPSE_PLUGIN_RUN_TENANT"
ENV_URL_HOST = "SYNAPSE_PLUGIN_RUN_URL_HOST"


def _env_value(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    if value is None:
        return None
    value = str(value).strip()  # Secret files usually end with a newline
    return value or None


class BackendClient:
    """Talks to the Synapse backend (``ctx.client``); thread-safe, one instance per run is enough.

    Credentials and connection settings are the transport's (``transport.Transport``); a plugin-run
    user token wins over an access token, as upstream has it.
    """

    def __init__(self, host: str, **options: Any) -> None:
        """``options``: the transport's (``access_token``, ``user_token``, ``tenant``, ``url_host``,
        ``timeout``, ``retries``, ``backoff``); which variables to check on a refusal follows the token."""
        auth_env = f"{ENV_USER_TOKEN} and {ENV_TENANT}" if options.get("user_token") else ENV_ACCESS_TOKEN
        self.transport = Transport(host, auth_env=auth_env, **options)

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
    def host(self) -> str:
        """The backend's URL for messages (never with credentials)."""
        return self.transport.host

    @property
    def url_host(self) -> str | None:
        return self.transport.url_host

    @property
    def timeout(self) -> float:
        return self.transport.timeout

    @property
    def retries(self) -> int:
        return self.transport.retries

    @property
    def auth_env(self) -> str:
        """The variable(s) a user should check when the backend refuses our credentials."""
        return self.transport.auth_env

    def with_retries(self, retries: int) -> BackendClient:
        """The same client with another retry budget: the reporter fails fast on snapshots that
        the next one replaces anyway."""
        clone = object.__new__(type(self))
        clone.transport = self.transport.with_retries(retries)
        return clone

    def __copy__(self) -> BackendClient:
        return self  # immutable in practice; sharing also keeps dataclasses.asdict(ctx) working

    def __deepcopy__(self, memo: dict[int, Any]) -> BackendClient:
        return self

    def __repr__(self) -> str:
        scheme = "user token" if self.transport.uses_user_token else "access token"
        return (f"BackendClient(host={self.host!r}, auth={scheme}, tenant={self.transport.tenant!r}, "
                f"url_host={self.url_host!r})")

    def redact(self, text: str) -> str:
        """``text`` with our tokens replaced by ``***`` (for messages built from foreign exceptions)."""
        return self.transport.redact(text)

    # -- the API ------------------------------------------------------------------------------

    def get_model(self, model_id: int | str) -> dict[str, Any]:
        """The model's detail (``id``, ``name``, ``category``, ``file``, ...); ``file`` is a URL
        (usually presigned https, sometimes ``s3://``) of the model's archive."""
        key = _path_id(model_id, "model_id")
        data = self.transport.request("GET", f"models/{key}/", what=f"model {model_id}")
        if not isinstance(data, dict):
            raise self.transport._bad_response("GET", f"models/{key}/", f"model {model_id}", "expected a JSON object")
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
        result = self.transport.request("PATCH", f"jobs/{key}/", body=body, what=f"job {job_id}")
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
        self.transport.request("POST", "logs/", body=body, what=f"logs ({len(items)} entries)")


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
