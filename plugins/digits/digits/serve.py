"""Online prediction: the trained checkpoint behind an HTTP route (``synapse-runtime serve --action serve``).

Written as upstream's serve deployments are (a FastAPI ``app`` whose routes take ``self``, the model
from ``get_model()``), against synapse_runtime directly. The model is the request's
``serve_multiplexed_model_id`` (a model id token) or, without one, the checkpoint the server was
started with (``SYNAPSE_CHECKPOINT``). Needs the ``serve`` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, Field

from synapse_runtime.serve import BaseServeDeployment

from .model import SoftmaxModel

app = FastAPI()


class Images(BaseModel):
    images: list[list[float]] = Field(min_length=1, description="8x8 digit images, flattened: 64 values (0-16) each")


class DigitsServe(BaseServeDeployment):
    app = app

    async def _get_model(self, model_info: dict[str, Any]) -> SoftmaxModel:
        return SoftmaxModel.load(model_info["path"])

    @app.post("/")
    async def infer(self, data: Images) -> dict[str, Any]:
        model = await self.get_model()
        x = np.asarray(data.images, dtype=float)
        if x.ndim != 2 or x.shape[1] != 64:
            from fastapi import HTTPException

            raise HTTPException(422, f"each image must have 64 values, got shape {list(x.shape)}")
        return {"labels": model.predict(x).tolist()}
