"""``serve_options.batch``: single calls gathered into real batches, as Ray's ``@serve.batch`` does.

A call waits until ``max_batch_size`` calls are queued or ``batch_wait_timeout_s`` has passed since
the first one, then the batch function gets the list and returns one result per item (in order);
an exception fails every call of that batch. One batch runs at a time per ``Batcher`` (the model is
busy anyway), and the next batch gathers meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

BatchFn = Callable[[list[Any]], Awaitable[list[Any]]]


class Batcher:
    def __init__(self, fn: BatchFn, max_batch_size: int, wait_s: float,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.fn, self.max_batch_size, self.wait_s = fn, max(1, max_batch_size), max(0.0, wait_s)
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self._on_batch = on_batch

    async def __call__(self, item: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if len(self._queue) >= self.max_batch_size:
            self._full.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._run())
        return await future

    async def _run(self) -> None:
        while self._queue:
            if len(self._queue) < self.max_batch_size and self.wait_s > 0:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), self.wait_s)
                except asyncio.TimeoutError:
                    pass
            batch, self._queue = self._queue[:self.max_batch_size], self._queue[self.max_batch_size:]
            live = [(item, f) for item, f in batch if not f.done()]
            if not live:
                continue
            if self._on_batch is not None:
                self._on_batch(len(live))
            try:
                results = await self.fn([item for item, _ in live])
                if not isinstance(results, list) or len(results) != len(live):
                    raise TypeError(f"infer_batch returned {type(results).__name__} of "
                                    f"{len(results) if isinstance(results, list) else '?'} results for {len(live)} inputs")
            except Exception as exc:  # every caller of the batch gets the error
                for _, f in live:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (_, f), result in zip(live, results):
                if not f.done():
                    f.set_result(result)


__all__ = ["Batcher"]
