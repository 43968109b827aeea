"""BaseInferenceAction: load a model by id, run inference, either in ``execute`` or as steps.

Models come from the Synapse backend (``ctx.client``) or, offline, from a registry file
(``SYNAPSE_MODELS_FILE``); either way the artifact goes through the storage module, so it is
cached, verified and safely extracted, whatever the URI.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .base_action import BaseAction, P
from .steps import BaseStepContext, Orchestrator, StepRegistry

_NO_CLIENT = (
    "No client in context: set SYNAPSE_HOST and SYNAPSE_ACCESS_TOKEN to use the Synapse backend, "
    "or SYNAPSE_MODELS_FILE to resolve model ids from a local registry file"
)


class InferenceProgressCategories:
    """Standard progress category names for inference phases."""

    MODEL_LOAD: ClassVar[str] = "model_load"
    INFERENCE: ClassVar[str] = "inference"
    POSTPROCESS: ClassVar[str] = "postprocess"


@dataclass
class InferenceContext(BaseStepContext):
    """State shared by the steps of an inference workflow."""

    params: dict[str, Any] = field(default_factory=dict)
    model_id: Any = None
    model: Any = None
    model_path: Path | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    batch_size: int = 1
    processed_count: int = 0


class BaseInferenceAction(BaseAction[P]):
    """Inference: override ``execute`` (or just ``infer``), or register steps in ``setup_steps``."""

    category: ClassVar[str | None] = "neural_net"
    progress: ClassVar[type[InferenceProgressCategories]] = InferenceProgressCategories

    # -- backend access -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The backend client; RuntimeError when the run has none."""
        if self.ctx.client is None:
            raise RuntimeError(_NO_CLIENT)
        return self.ctx.client

    def _model_source(self) -> Any:
        if self.ctx.client is not None:
            return self.ctx.client
        from ..backend import ModelRegistry

        registry = ModelRegistry.from_env(self.ctx.env)
        if registry is None:
            raise RuntimeError(_NO_CLIENT)
        return registry

    def get_model(self, model_id: int) -> dict[str, Any]:
        """Model metadata by id (with its artifact URI in ``file``)."""
        return self._model_source().get_model(model_id)

    def _download(self, model: dict[str, Any], output_dir: str | Path | None) -> Path:
        uri = model.get("file")
        if not uri:
            raise ValueError(f"model {model.get('id')!r} has no file URL")
        from ..storage import fetch

        dest = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="synapse-model-"))
        report = getattr(self.ctx.logger, "log_download", None)  # absent on a foreign logger
        result = fetch(str(uri), extract=True, dest=dest, progress=report)
        return result.path

    def download_model(self, model_id: int, output_dir: str | Path | None = None) -> Path:
        """Fetch the model's artifact and extract it (to ``output_dir`` or a temp directory)."""
        return self._download(self.get_model(model_id), output_dir)

    def load_model(self, model_id: int) -> dict[str, Any]:
        """Model metadata plus ``path`` to the local artifacts; override to load a framework model."""
        model = self.get_model(model_id)
        return {**model, "path": self._download(model, None)}

    def infer(self, model: Any, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run the model on inputs; override it."""
        raise NotImplementedError(f"{type(self).__name__} must override infer() (or execute(), or setup_steps())")

    # -- execution modes ------------------------------------------------------------------------

    def execute(self) -> Any:
        """Simple mode: load ``params.model_id``, ``infer`` on ``params.inputs``."""
        params = self.params
        model_id = getattr(params, "model_id", None) if not isinstance(params, dict) else params.get("model_id")
        inputs = getattr(params, "inputs", None) if not isinstance(params, dict) else params.get("inputs")
        model = self.load_model(model_id)
        self.set_progress(1, 3, self.progress.MODEL_LOAD)
        results = self.infer(model, list(inputs or []))
        self.set_progress(2, 3, self.progress.INFERENCE)
        return {"results": results}

    def setup_steps(self, registry: StepRegistry[InferenceContext]) -> None:
        """Register steps here to use the step-based workflow (default: none)."""

    def create_context(self) -> InferenceContext:
        """The steps' shared context; override to add state."""
        params = self.params
        raw = params.model_dump() if hasattr(params, "model_dump") else dict(params or {})
        return InferenceContext(runtime_ctx=self.ctx, params=raw, model_id=raw.get("model_id"))

    def run(self) -> Any:
        """Steps when ``setup_steps`` registered any, else ``execute``."""
        registry: StepRegistry[InferenceContext] = StepRegistry()
        self.setup_steps(registry)
        if not registry:
            return self.execute()
        context = self.create_context()
        result: dict[str, Any] = Orchestrator(registry, context).execute()
        result["processed_count"] = context.processed_count
        if context.results:
            result["results"] = context.results
        return result


__all__ = ["BaseInferenceAction", "InferenceContext", "InferenceProgressCategories"]
