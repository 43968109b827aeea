"""Readability of a text through upstream's ActionPipeline: Load -> Split -> Score.

Each stage is an upstream ``BaseAction`` with a params and a result model; ``ActionPipeline``
checks when it is built that each stage's params can be filled from the earlier results and the
initial params, then runs them in order, merging each result into the next stage's params.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from synapse_sdk.plugins import BaseAction
from synapse_sdk.plugins.pipelines import ActionPipeline  # only in the real synapse-sdk

DATA = Path(__file__).resolve().parent.parent / "data"
SENTENCE = re.compile(r"[^.!?]+[.!?]")
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
VOWEL_GROUPS = re.compile(r"[aeiouy]+")


class ReadabilityParams(BaseModel):
    text: str | None = Field(None, description="text to score; default: the bundled data/<sample>.txt")
    sample: str = Field("gettysburg", pattern=r"^[a-z0-9_-]+$")

    @model_validator(mode="after")
    def _sample_exists(self) -> ReadabilityParams:
        if self.text is None and not (DATA / f"{self.sample}.txt").is_file():
            raise ValueError(f"no bundled sample {self.sample!r}; have: {sorted(p.stem for p in DATA.glob('*.txt'))}")
        return self


class LoadResult(BaseModel):
    source: str
    content: str


class Load(BaseAction[ReadabilityParams]):
    action_name = "load"
    result_model = LoadResult

    def execute(self) -> LoadResult:
        if self.params.text is not None:
            return LoadResult(source="params", content=self.params.text)
        path = DATA / f"{self.params.sample}.txt"
        self.log_message(f"read {path.name}")
        return LoadResult(source=path.name, content=path.read_text(encoding="utf-8"))


class SplitParams(BaseModel):
    content: str
    source: str


class SplitResult(BaseModel):
    source: str  # carried on: the pipeline checks each stage against the one before it
    sentences: list[str]


class Split(BaseAction[SplitParams]):
    action_name = "split"
    result_model = SplitResult

    def execute(self) -> SplitResult:
        flat = " ".join(self.params.content.split())
        sentences = [s.strip() for s in SENTENCE.findall(flat)]
        self.set_metrics({"sentences": len(sentences)}, "split")
        return SplitResult(source=self.params.source, sentences=sentences)


class ScoreParams(BaseModel):
    sentences: list[str] = Field(min_length=1)
    source: str


class ScoreResult(BaseModel):
    source: str
    sentences: int
    words: int
    syllables: int
    flesch_reading_ease: float
    longest_sentence_words: int


def syllables(word: str) -> int:
    """Vowel groups, less a silent final e: the usual estimate for English."""
    w = word.lower()
    groups = len(VOWEL_GROUPS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    return max(groups, 1)


class Score(BaseAction[ScoreParams]):
    action_name = "score"
    result_model = ScoreResult

    def execute(self) -> ScoreResult:
        per_sentence = [WORD.findall(s) for s in self.params.sentences]
        words = [w for ws in per_sentence for w in ws]
        syl = sum(syllables(w) for w in words)
        n_s, n_w = len(per_sentence), max(len(words), 1)
        ease = 206.835 - 1.015 * (n_w / n_s) - 84.6 * (syl / n_w)
        self.set_metrics({"words": len(words), "syllables": syl}, "score")
        return ScoreResult(source=self.params.source, sentences=n_s, words=len(words), syllables=syl,
                           flesch_reading_ease=round(ease, 2),
                           longest_sentence_words=max(len(ws) for ws in per_sentence))


class Readability(BaseAction[ReadabilityParams]):
    """The plugin's action: the three stages as one upstream ActionPipeline."""

    result_model = ScoreResult

    def execute(self) -> ScoreResult:
        pipeline = ActionPipeline([Load, Split, Score], strict=True)
        result = pipeline.execute(
            self.params, self.ctx,
            progress_callback=lambda current, total, stage: self.set_progress(current, total, "pipeline"),
        )
        self.log_message(f"{result.sentences} sentences, reading ease {result.flesch_reading_ease}", "success")
        return result
