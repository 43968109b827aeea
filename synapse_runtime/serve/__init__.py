"""Online inference: ``synapse-runtime serve``, a plugin's inference deployment over HTTP (docs/serving.md).

Small modules, one concern each, so the request path reads top to bottom:

* ``options.py``   knobs and config.yaml ``serve_options`` -> one ``ServeOptions`` (port, prefix, limits)
* ``context.py``   the request's model id (``serve_multiplexed_model_id`` header) in a contextvar, and
                   ``ray.serve.get_multiplexed_model_id`` answered from it, with or without Ray installed
* ``deployment.py`` ``BaseServeDeployment`` (upstream's API, our model loading), importable without FastAPI
* ``models.py``    model id -> metadata -> archive (storage layer, shared cache) -> loaded model; LRU, single-flight
* ``batching.py``  ``serve_options.batch``: concurrent calls gathered into real batches
* ``binding.py``   a plugin's FastAPI ``app`` whose routes take ``self``, bound to one deployment instance
* ``seed.py``      a plain ``BaseInferenceAction`` served with a POST route built from its params model
* ``metrics.py``   counters and histograms: ``/metrics`` (Prometheus text) and periodic ``metrics`` events
* ``stdout.py``    ``sys.stdout`` while serving: printed lines as ``output`` events in-process (throttled, no pipe)
* ``asgi.py``      the outer ASGI app: ``/-/healthz``, ``/-/routes``, ``/metrics``, limits, errors, drain
* ``server.py``    the command: load, construct, start uvicorn, SIGTERM drain, exit codes

Only ``server.py`` and the modules it imports at start pull in FastAPI and uvicorn (the ``serve``
extra); a batch run never imports this package.
"""

from __future__ import annotations

from .context import get_multiplexed_model_id
from .deployment import BaseServeDeployment, create_serve_multiplexed_model_id

__all__ = ["BaseServeDeployment", "create_serve_multiplexed_model_id", "get_multiplexed_model_id"]
