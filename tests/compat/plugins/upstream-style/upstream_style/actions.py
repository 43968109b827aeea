"""A class action and an @action function that report which classes ran them."""

from __future__ import annotations

import collections
import re

from pydantic import BaseModel, Field

from synapse_sdk.plugins import BaseAction
from synapse_sdk.plugins.decorators import action
from synapse_sdk.plugins.models.logger import LogLevel


class ProbeParams(BaseModel):
    text: str
    top: int = Field(2, ge=1)


class Probe(BaseAction[ProbeParams]):
    """Counts words, reporting through every logging path upstream plugins use."""

    def execute(self) -> dict:
        words = re.findall(r"[a-z']+", self.params.text.lower())
        counts = collections.Counter(words)
        self.set_progress(1, 2, "count")
        self.set_metrics({"words": len(words)}, "count")
        self.set_metrics({"unique": len(counts)}, "count")
        self.ctx.log("counted", {"words": len(words)})
        self.log_message("counting done", LogLevel.SUCCESS)
        self.ctx.log_message("plain-string level", "warning")  # the seed's form: accepted in both modes
        self.logger.info("logger.info works")
        self.set_progress(2, 2, "count")
        logger = self.ctx.logger
        return {
            "top": counts.most_common(self.params.top),
            "params_type": type(self.params).__name__,
            "ctx_module": type(self.ctx).__module__,
            "logger_is_upstream_base": any(c.__module__ == "synapse_sdk.loggers" and c.__name__ == "BaseLogger"
                                           for c in type(logger).__mro__),
            "progress_percent": logger.get_progress("count").percent,
            "metrics": logger.get_metrics("count"),
            "has_v2_client_field": hasattr(self.ctx, "v2_client"),
        }


class WordsParams(BaseModel):
    text: str


@action(params=WordsParams, description="count words")
def count_words(params: WordsParams, ctx) -> dict:
    ctx.log_message(f"{len(params.text.split())} words")
    return {"count": len(params.text.split()), "params_type": type(params).__name__}


class LooseResultModel(BaseModel):
    total: int


class LooseResult(BaseAction[WordsParams]):
    """Returns a dict that does not fit its result_model: upstream only warns."""

    result_model = LooseResultModel

    def execute(self) -> dict:
        return {"count": len(self.params.text.split())}


class NapParams(BaseModel):
    seconds: float = Field(30, gt=0, le=120)


class Nap(BaseAction[NapParams]):
    """Waits, so a test can cancel it mid-run."""

    def execute(self) -> dict:
        import time

        self.log_message("napping")
        time.sleep(self.params.seconds)
        return {"slept": self.params.seconds}


class WorkDir(BaseAction[NapParams]):
    """Uses its working directory as published plugins do: a scratch file written under os.getcwd(),
    the plugin's own file read by a relative path (upstream starts a job in the plugin's folder)."""

    def execute(self) -> dict:
        import os
        import uuid

        cwd = os.getcwd()
        scratch = os.path.join(cwd, f".scratch-{uuid.uuid4().hex}.tmp")
        with open(scratch, "w") as fh:
            fh.write("temporary")
        os.unlink(scratch)
        with open("config.yaml") as fh:  # relative: the plugin's own file
            code_line = next(line for line in fh if line.startswith("code:"))
        return {"cwd": cwd, "code_line": code_line.strip()}
