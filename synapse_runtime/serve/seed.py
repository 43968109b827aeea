"""A plain ``BaseInferenceAction`` served: ``POST <prefix>/`` takes the action's params model.

The action needs no FastAPI of its own (what Cog gives with ``predict``): the route's body is the
action's ``params_model`` (``model_id`` and ``inputs``, plus whatever else it declares), so
``/openapi.json`` documents it and a bad body is a 422 with field errors. ``load_model(model_id)``
runs once per model (the model store: LRU, single flight); ``infer(model, inputs)`` runs in a worker
thread per request, or once per batch (``serve_options.batch``: the batch's inputs concatenated, the
results split back by count). The answer is ``{"results": [...]}``, as ``execute`` returns it.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from .batching import Batcher
from .models import ModelRef, ModelStore, NoModelGiven, ref_from_id


def _field(params: Any, name: str) -> Any:
    return params.get(name) if isinstance(params, dict) else getattr(params, name, None)


def seed_app(action: Any, params_model: Any, store: ModelStore, *, title: str, default: ModelRef | None,
             batch: Any = None, on_batch: Any = None) -> Any:
    """The FastAPI app serving ``action`` (an instance of a BaseInferenceAction subclass)."""
    from fastapi import FastAPI

    app = FastAPI(title=title, description=(inspect.getdoc(type(action)) or "").split("\n\n")[0])
    batchers: dict[str, Batcher] = {}

    async def run(ref: ModelRef, model: Any, inputs: list[Any]) -> list[Any]:
        if batch is None:
            return list(await asyncio.to_thread(action.infer, model, inputs))
        batcher = batchers.get(ref.key)
        if batcher is None:
            async def infer_many(groups: list[list[Any]]) -> list[list[Any]]:
                flat = [item for group in groups for item in group]
                results = list(await asyncio.to_thread(action.infer, model, flat))
                if len(results) != len(flat):
                    raise TypeError(f"infer returned {len(results)} results for {len(flat)} inputs")
                out, start = [], 0
                for group in groups:
                    out.append(results[start:start + len(group)])
                    start += len(group)
                return out
            batcher = batchers[ref.key] = Batcher(infer_many, batch.max_batch_size, batch.batch_wait_timeout_s,
                                                   on_batch)
        return list(await batcher(list(inputs)))

    async def predict(params: Any) -> dict[str, Any]:
        model_id = _field(params, "model_id")
        if model_id is None:
            if default is None:
                raise NoModelGiven("give model_id in the body (no default model is configured: SYNAPSE_CHECKPOINT)")
            ref = default
        else:
            ref = ref_from_id(model_id)
        model = await store.get(ref)
        return {"results": await run(ref, model, list(_field(params, "inputs") or []))}

    predict.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=params_model)],
        return_annotation=dict[str, Any])
    predict.__annotations__ = {"params": params_model, "return": dict[str, Any]}
    app.add_api_route("/", predict, methods=["POST"], name="predict", summary=f"Run {title}",
                      description="Body: the action's params model (model_id and inputs). Answer: {\"results\": [...]}.")
    return app


__all__ = ["seed_app"]
