"""Count words in text given inline or as a file (``path``); the checkpoint slot may carry it too."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from synapse_sdk.plugins import BaseAction  # upstream's import path: served by synapse-runtime

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


class WordCountParams(BaseModel):
    text: str | None = None
    path: str | None = Field(None, description="a UTF-8 text file to read instead of `text`")
    top: int = Field(10, ge=1, le=1000)
    lowercase: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> WordCountParams:
        if (self.text is None) == (self.path is None):
            raise ValueError("give exactly one of `text` or `path`")
        return self


class WordCount(BaseAction[WordCountParams]):
    def execute(self) -> dict:
        p = self.params
        text = p.text if p.text is not None else Path(p.path).read_text(encoding="utf-8")
        lines = text.splitlines()
        counts: Counter[str] = Counter()
        for i, line in enumerate(lines, 1):
            words = WORD.findall(line.lower() if p.lowercase else line)
            counts.update(words)
            if i % 500 == 0 or i == len(lines):
                self.set_progress(i, len(lines))
        result = {
            "lines": len(lines),
            "words": sum(counts.values()),
            "unique_words": len(counts),
            "characters": len(text),
            "top": [{"word": w, "count": c} for w, c in counts.most_common(p.top)],
        }
        if self.ctx.output_dir is not None:
            out = Path(self.ctx.output_dir) / "counts.json"
            out.write_text(json.dumps(dict(counts.most_common()), ensure_ascii=False, indent=1))
            self.log("counts_written", {"unique_words": len(counts)}, file=str(out))
        return result
