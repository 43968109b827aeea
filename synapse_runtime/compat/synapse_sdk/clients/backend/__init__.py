"""``synapse_sdk.clients.backend.BackendClient``: the runtime's backend client (``ctx.client``) at upstream's path."""

from synapse_runtime.backend.client import BackendClient

__all__ = ["BackendClient"]
