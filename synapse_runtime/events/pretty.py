"""The human view of the event stream (``--pretty``): the same events, rendered for a terminal.

It renders events, never anything else, so what a person sees locally is exactly what a
machine reads in a container, only easier on the eyes.
"""

from __future__ import annotations

from typing import Any

from ..jsonable import dumps

_COLORS = {"info": "36", "warning": "33", "danger": "31", "success": "32", "dim": "2", "bold": "1"}


class PrettyRenderer:
    """Callable ``event -> line``; colours only when asked (the CLI asks when stdout is a TTY)."""

    def __init__(self, color: bool = False, width: int = 24) -> None:
        self.color = color
        self.width = width

    def _c(self, text: str, style: str) -> str:
        if not self.color:
            return text
        return f"\x1b[{_COLORS[style]}m{text}\x1b[0m"

    def __call__(self, e: dict[str, Any]) -> str | None:
        t = e["type"]
        clock = self._c(e["ts"][11:19], "dim")
        method = getattr(self, "_" + t, None)
        body = method(e) if method else dumps({k: v for k, v in e.items() if k not in ("v", "ts", "seq", "job_id")})
        return f"{clock} {body}"

    def _start(self, e: dict[str, Any]) -> str:
        gpus = e.get("gpus") or []
        device = ", ".join(g.get("name", "?") for g in gpus) if gpus else "CPU (no GPU found)"
        return self._c(f"▶ {e.get('plugin')} · {e.get('action')}", "bold") + (
            f"  job {e.get('job_id')} · python {e.get('python')} · runtime {e.get('runtime_version')} · {device}"
        )

    def _progress(self, e: dict[str, Any]) -> str:
        pct = float(e.get("percent") or 0.0)
        filled = int(self.width * pct / 100)
        bar = "█" * filled + "░" * (self.width - filled)
        cat = f"[{e['category']}] " if e.get("category") else ""
        return f"  {cat}{bar} {pct:5.1f}% ({_num(e['current'])}/{_num(e['total'])})"

    def _metrics(self, e: dict[str, Any]) -> str:
        values = " ".join(f"{k}={_fmt(v)}" for k, v in (e.get("values") or {}).items())
        return f"  {self._c('metrics', 'info')} {e['category']}: {values}"

    def _event(self, e: dict[str, Any]) -> str:
        file = f" ({e['file']})" if e.get("file") else ""
        return f"  • {e['event']}: {dumps(e.get('data'))}{file}"

    def _message(self, e: dict[str, Any]) -> str:
        ctx = e.get("context", "info")
        return "  " + self._c(f"{ctx.upper():7}", ctx) + f" {e['message']}"

    def _dev_event(self, e: dict[str, Any]) -> str:
        data = f" {dumps(e['data'])}" if e.get("data") else ""
        return self._c(f"  dev: {e['message']}{data}", "dim")

    def _log(self, e: dict[str, Any]) -> str:
        exc = f"\n{e['exc_info']}" if e.get("exc_info") else ""
        return f"  {e['level']:7} {e['logger']}: {e['message']}{exc}"

    def _output(self, e: dict[str, Any]) -> str:
        mark = "│" if e["stream"] == "stdout" else self._c("│", "warning")
        return f"  {mark} {e['text']}"

    def _download(self, e: dict[str, Any]) -> str:
        total = e.get("total")
        size = f"{_mib(e['bytes'])}/{_mib(total)}" if total else _mib(e["bytes"])
        how = "cache hit" if e.get("cached") else size
        if e.get("direction") == "upload":  # an older stream's upload
            return f"  ⇡ upload {e['uri']}: {how}"
        return f"  ⇣ download {e['uri']}: {how}"

    def _upload(self, e: dict[str, Any]) -> str:
        total = e.get("total")
        size = f"{_mib(e['bytes'])}/{_mib(total)}" if total else _mib(e["bytes"])
        return f"  ⇡ upload {e['uri']}: {size}"

    def _result(self, e: dict[str, Any]) -> str:
        text = dumps(e.get("result"))
        if len(text) > 400:
            text = text[:400] + f"… ({len(text)} chars; full result in result.json)"
        return "  " + self._c("result", "success") + " " + text

    def _error(self, e: dict[str, Any]) -> str:
        lines = [self._c(f"✖ {e['error_type']} (exit {e['code']}): {e['message']}", "danger")]
        if e.get("hint"):
            lines.append(f"    how to fix: {e['hint']}")
        details = e.get("details")
        if isinstance(details, dict) and isinstance(details.get("errors"), list):
            for err in details["errors"]:
                lines.append(f"    - {err.get('loc')}: {err.get('msg')}")
        elif details:
            lines.append(f"    {dumps(details)}")
        return "\n".join(lines)

    def _end(self, e: dict[str, Any]) -> str:
        status = e["status"]
        style = {"succeeded": "success", "failed": "danger", "cancelled": "warning"}[status]
        return self._c(f"■ {status} in {e['duration_s']:.2f}s (exit {e['exit_code']})", style)


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else dumps(v) if isinstance(v, (dict, list)) else str(v)


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1048576:.1f} MiB"


__all__ = ["PrettyRenderer"]
