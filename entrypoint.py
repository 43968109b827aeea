"""Container entrypoint: the contract lives in synapse_runtime; this file only hands over."""

from synapse_runtime.cli import entrypoint

if __name__ == "__main__":
    entrypoint()
