"""Failure paths on purpose."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Literal

from pydantic import BaseModel, Field

from synapse_runtime import BaseAction, ExecutionError, action


class FailParams(BaseModel):
    message: str = "the action failed on purpose"


class Fail(BaseAction[FailParams]):
    def execute(self) -> dict:
        self.set_progress(1, 2)
        raise ExecutionError(self.params.message)


class Crash(BaseAction[FailParams]):
    def execute(self) -> dict:
        values = {"a": 1}
        return {"value": values["missing"]}  # KeyError from user code


class NoisyParams(BaseModel):
    echo_env: list[str] = Field(default_factory=list, description="env keys whose values to print")
    lines: int = Field(3, ge=0, le=100000)


class Noisy(BaseAction[NoisyParams]):
    def execute(self) -> dict:
        for i in range(self.params.lines):
            print(f"print line {i}")
        print("to stderr", file=sys.stderr)
        sys.stdout.write("no newline at the end")
        sys.stdout.flush()
        logging.getLogger("faults.noisy").warning("a warning from logging")
        subprocess.run([sys.executable, "-c", "import sys; print('child stdout'); print('child stderr', file=sys.stderr)"], check=True)
        for key in self.params.echo_env:
            value = self.ctx.env.get(key)
            print(f"{key}={value}")
            self.log("env_value", {"key": key, "value": value})
            logging.getLogger("faults.noisy").info("env %s=%s", key, value)
        return {"echoed": self.params.echo_env, "secret_in_result": [self.ctx.env.get(k) for k in self.params.echo_env]}


class StrictParams(BaseModel):
    count: int = Field(..., ge=1)
    mode: Literal["fast", "slow"]
    ratio: float = Field(0.5, ge=0, le=1)
    tags: list[str] = Field(default_factory=list)


class Strict(BaseAction[StrictParams]):
    def execute(self) -> dict:
        return self.params.model_dump()


class FloodParams(BaseModel):
    rate: int = Field(10000, ge=1, le=1_000_000, description="events per second")
    seconds: float = Field(60, gt=0, le=3600)
    progress_every: int = Field(10, ge=1, description="also set_progress every N events")


class Flood(BaseAction[FloodParams]):
    """Logs `rate` events a second for `seconds` (load tests): paced, not a busy loop."""

    def execute(self) -> dict:
        import time

        p = self.params
        total = int(p.rate * p.seconds)
        start = time.monotonic()
        for i in range(total):
            self.log("tick", {"i": i})
            if i % p.progress_every == 0:
                self.set_progress(i + 1, total, "flood")
            if i % 1000 == 999:  # pace in blocks of 1000 events
                ahead = start + (i + 1) / p.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        self.set_progress(total, total, "flood")
        return {"events": total, "seconds": round(time.monotonic() - start, 3)}
