"""Does nothing, importing nothing heavy: what a run costs the runtime itself."""

from synapse_runtime import action


@action(name="noop")
def noop(params: dict, ctx) -> None:
    return None
