"""Upstream's own plugin templates (``synapse-sdk new``), rendered into a plugin directory for a test.

The templates come from the installed real package (real mode) or from its wheel, which
``make upstream-wheel`` downloads to build/upstream/ (shim mode); nothing of them is committed here.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEEL = ROOT / "build" / "upstream" / "synapse_sdk-2026.2.17-py3-none-any.whl"
PREFIX = "synapse_sdk/plugins/templates/"


def _read(rel: str) -> str | None:
    from synapse_runtime.compat.upstream_driver import real_sdk_loaded

    if real_sdk_loaded():
        import synapse_sdk

        path = Path(synapse_sdk.__file__).parent / "plugins" / "templates" / rel
        return path.read_text() if path.is_file() else None
    if WHEEL.is_file():
        with zipfile.ZipFile(WHEEL) as zf:
            try:
                return io.TextIOWrapper(zf.open(PREFIX + rel), encoding="utf-8").read()
            except KeyError:
                return None
    return None


def available() -> bool:
    return _read("base/config.yaml.j2") is not None


def render_plugin(dest: Path, category: str, actions: dict[str, str], **values: object) -> Path:
    """Render config.yaml and ``plugin/<file>.py`` for ``actions`` ({action: template file}) into dest."""
    import jinja2

    ctx = {"name": "Rendered plugin", "code": "rendered", "version": "0.1.0", "category": category,
           "description": "rendered from upstream's template", **values}
    (dest / "plugin").mkdir(parents=True)
    (dest / "plugin" / "__init__.py").write_text("")
    entries = []
    for action, template in actions.items():
        text = _read(f"{category}/plugin/{template}.py.j2")
        assert text is not None, f"no template {category}/plugin/{template}.py.j2"
        (dest / "plugin" / f"{template}.py").write_text(jinja2.Template(text).render(**ctx))
        entries.append({"name": action, "entrypoint": f"plugin.{template}.{_class_of(text)}", "method": "job"})
    config = jinja2.Template(_read("base/config.yaml.j2")).render(actions=entries, **ctx)
    (dest / "config.yaml").write_text(config)
    return dest


def _class_of(text: str) -> str:
    """The action class a template defines (the class deriving from an upstream action base)."""
    for line in text.splitlines():
        if line.startswith("class ") and "Action" in line and "Params" not in line.split("(")[0]:
            return line[len("class "):].split("(")[0]
    raise AssertionError("template defines no action class")
