"""The event stream: schema, writer, stdout/stderr/logging capture, redaction, human view."""

from __future__ import annotations

from pathlib import Path

from .redact import Redactor, is_secret_key, secret_values
from .shapes import EVENT_TYPES, SCHEMA_VERSION, EventSink, ProgressSink
from .writer import EventWriter

SCHEMA_PATH = Path(__file__).with_name("schema.json")

__all__ = ["EVENT_TYPES", "EventSink", "EventWriter", "ProgressSink", "Redactor", "SCHEMA_PATH", "SCHEMA_VERSION",
           "is_secret_key", "secret_values"]
