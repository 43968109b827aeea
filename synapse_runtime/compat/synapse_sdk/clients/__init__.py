"""Upstream's ``synapse_sdk.clients``: only the v1 backend client, which is the runtime's own."""
