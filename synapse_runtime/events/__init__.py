"""The event stream: schema, writer, stdout/stderr/logging capture, redaction, human view."""

from __future__ import annotations

from pathlib import Path

from .redact import Redactor, is_secret_key, secret_values
from .writer import SCHEMA_VERSION, EventWriter

SCHEMA_PATH = Path(__file__).with_name("schema.json")
EVENT_TYPES = (
    "start", "progress", "metrics", "event", "message", "dev_event",
    "log", "output", "download", "result", "error", "end",
)

__all__ = ["EVENT_TYPES", "EventWriter", "Redactor", "SCHEMA_PATH", "SCHEMA_VERSION", "is_secret_key", "secret_values"]
