"""The container contract, in the order a run takes it: inputs, settings, config.yaml, the driver,
the runner, outputs, signals, shards.  Plugin authors never import from here; ``actions/`` is theirs."""
