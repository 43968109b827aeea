"""Slugs for titles: a function action, with upstream's ``@action`` import path."""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, Field

from synapse_sdk.plugins.decorators import action


class SlugParams(BaseModel):
    titles: list[str] = Field(..., min_length=1)
    max_length: int = Field(60, ge=8, le=200)


def _slug(title: str, max_length: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "untitled"


@action(name="slugify", description="URL-safe slugs of titles", params=SlugParams)
def slugify(params: SlugParams, ctx) -> dict:
    slugs = [_slug(t, params.max_length) for t in params.titles]
    seen: dict[str, int] = {}
    unique = []
    for s in slugs:
        n = seen.get(s, 0)
        seen[s] = n + 1
        unique.append(s if n == 0 else f"{s}-{n + 1}")
    ctx.log_message(f"{len(unique)} slugs", "info")
    return {"slugs": unique}
