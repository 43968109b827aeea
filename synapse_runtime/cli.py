"""``synapse-runtime``: argument parsing only; the work is in runner.py and plugin.py.

``run`` is the default command, so the container's entrypoint can be run with no arguments
and take everything from the contract's env vars and mounts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from . import __version__
from .errors import ExitCode, PluginError

COMMANDS = ("run", "serve", "schema", "list", "merge")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="synapse-runtime",
        description="Run Synapse plugin actions with JSON-lines events on stdout and documented exit codes.",
        epilog="Exit codes: 0 ok · 1 action failed · 2 invalid input · 3 plugin/action not found · "
        "4 storage · 130/143 cancelled.  Docs: docs/contract.md, docs/events.md.",
    )
    p.add_argument("--version", action="version", version=f"synapse-runtime {__version__}")
    sub = p.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run one action (the default command)")
    run.add_argument("--plugin", help="plugin directory with config.yaml (env SYNAPSE_PLUGIN_DIR, default /plugin)")
    run.add_argument("--action", help="action name, or module:Class (env SYNAPSE_ACTION / SYNAPSE_ACTION_ENTRYPOINT)")
    run.add_argument("--params", help="params file, JSON or YAML; '-' reads stdin (env SYNAPSE_ACTION_PARAMS[_FILE])")
    run.add_argument("--output", help="output directory (env SYNAPSE_OUTPUT_DIR, default /mnt/output)")
    run.add_argument("--checkpoint", help="checkpoint URI or path to fetch first (env SYNAPSE_CHECKPOINT)")
    run.add_argument("--pretty", action="store_true", help="render events for a human instead of JSON lines")
    run.add_argument("--no-capture", action="store_true", help="don't capture the plugin's stdout/stderr (debugging)")

    srv = sub.add_parser("serve", help="serve an inference action over HTTP until SIGTERM (docs/serving.md)")
    srv.add_argument("--plugin", help="plugin directory with config.yaml (env SYNAPSE_PLUGIN_DIR, default /plugin)")
    srv.add_argument("--action", help="the action to serve (env SYNAPSE_ACTION; default: the one with method serve)")
    srv.add_argument("--host", help="address to listen on (env SYNAPSE_SERVE_HOST, default 0.0.0.0)")
    srv.add_argument("--port", type=int, help="port (env SYNAPSE_SERVE_PORT, default 8100; 0: any free port)")

    schema = sub.add_parser("schema", help="print an action's params JSON Schema (or the event schema)")
    schema.add_argument("--plugin")
    schema.add_argument("--action")
    schema.add_argument("--events", action="store_true", help="print the event stream's JSON Schema instead")

    lst = sub.add_parser("list", help="list a plugin's actions")
    lst.add_argument("--plugin")
    lst.add_argument("--json", action="store_true", help="JSON instead of a table")
    merge = sub.add_parser("merge", help="combine the results of a sharded run (checks none is missing or duplicated)")
    merge.add_argument("source", help="the output directory holding shard-*/result.json")
    merge.add_argument("--output", help="where to write the merged result.json (default: SOURCE)")
    merge.add_argument("--key", default=None,
                       help="the per-item list in each shard's result (default: results, else the one list that fits every slice)")
    merge.add_argument("--run-id", default=None,
                       help="refuse any shard not of this run (its SYNAPSE_RUN_ID: the Job's or JobSet's uid)")
    return p


def _argv(argv: Sequence[str] | None) -> list[str]:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "run")
    return args


def _fail(exc: PluginError) -> int:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"  how to fix: {exc.hint}", file=sys.stderr)
    return int(exc.exit_code)


def _environment() -> Mapping[str, str]:
    """The contract's env inputs as a run reads them (env vars, env files, ConfigMap/Secret
    directories), so ``schema``, ``list`` and the serve-or-run choice see what ``run`` would see.
    A broken env file is ``run``'s to report, with its events: here it leaves the process env."""
    from .contract.inputs import collect_env

    try:
        return collect_env(os.environ).data
    except PluginError:
        return os.environ


def _schema(ns: argparse.Namespace) -> int:
    import json

    if ns.events:
        from .events import SCHEMA_PATH

        sys.stdout.write(SCHEMA_PATH.read_text())
        return 0
    from .contract.inputs import resolve_action_ref, resolve_plugin_dir
    from .contract.plugin import load_plugin, resolve_action

    try:
        env = _environment()
        name, entrypoint, _ = resolve_action_ref(ns.action, env)
        plugin = load_plugin(resolve_plugin_dir(ns.plugin, env).value, require_config=not entrypoint)
        resolved = resolve_action(plugin, name, entrypoint)
    except PluginError as e:
        return _fail(e)
    model = resolved.params_model
    schema = model.model_json_schema() if model is not None else {"type": "object", "title": f"{resolved.name} params"}
    print(json.dumps(schema, indent=2))
    return 0


def _list(ns: argparse.Namespace) -> int:
    import json

    from .contract.inputs import resolve_plugin_dir
    from .contract.plugin import load_plugin

    try:
        plugin = load_plugin(resolve_plugin_dir(ns.plugin, _environment()).value)
    except PluginError as e:
        return _fail(e)
    rows = [
        {"name": a.name, "entrypoint": a.entrypoint, "method": a.method, "description": a.description}
        for a in plugin.config.actions.values()
    ]
    if ns.json or not sys.stdout.isatty():
        print(json.dumps({"plugin": plugin.config.identifier, "version": plugin.config.version, "actions": rows}, indent=2))
        return 0
    print(f"{plugin.config.identifier} {plugin.config.version} — {plugin.config.description}".rstrip(" —"))
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        print(f"  {r['name']:<{width}}  {r['entrypoint']}  {r['description']}")
    return 0


def _merge(ns: argparse.Namespace) -> int:
    import json

    from .contract.merge import summary, write_merged

    try:
        path = write_merged(ns.source, ns.output or ns.source, key=ns.key, run_id=ns.run_id)
    except PluginError as e:
        return _fail(e)
    merged = json.loads(path.read_text(encoding="utf-8"))["result"]
    print(json.dumps({"merged": str(path), **summary(merged, ns.key)}))
    return 0


def main(argv: Sequence[str] | None = None, *, own_process: bool = False, held_signals: list[int] | None = None) -> int:
    """``own_process``: this process exists for the run (console script, container), so the run may
    adopt and stop whatever the plugin leaves running; never set it when embedding. ``held_signals``:
    signals received before the runner's handlers were installed (the run then ends cancelled)."""
    ns = _parser().parse_args(_argv(argv))
    if ns.command == "run" and _serves(ns):
        ns.command = "serve"
        ns.host = ns.port = None
    if ns.command == "serve":
        from .serve.server import ServeArgs, serve

        return serve(ServeArgs(plugin=ns.plugin, action=ns.action, host=ns.host, port=ns.port,
                               held_signals=held_signals))
    if ns.command != "run" and held_signals is not None:
        from .contract import signals

        signals.release_early()
        if held_signals:
            return 128 + held_signals[0]
    if ns.command == "merge":
        return _merge(ns)
    if ns.command == "schema":
        return _schema(ns)
    if ns.command == "list":
        return _list(ns)
    from .contract.runner import RunOptions, run

    color = ns.pretty and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return run(RunOptions(
        plugin=ns.plugin, action=ns.action, params=ns.params, output=ns.output, checkpoint=ns.checkpoint,
        pretty=ns.pretty, color=color, capture=not ns.no_capture, reap_children=own_process,
        held_signals=held_signals,
    ))


def _serves(ns: argparse.Namespace) -> bool:
    """The image's default command serves when ``SYNAPSE_ACTION`` names an action whose ``method`` is
    ``serve`` or ``restapi`` (given, or upstream's default for its name) and no params are given by any
    source, the default params file included (with params it runs once, as upstream's client does)."""
    if ns.action or ns.params:
        return False
    env = _environment()
    name = env.get("SYNAPSE_ACTION", "").strip()
    if not name:
        return False
    from .contract.inputs import DEFAULT_PARAMS_FILES, resolve_plugin_dir

    if env.get("SYNAPSE_ACTION_PARAMS") or env.get("SYNAPSE_ACTION_PARAMS_FILE") or any(
            os.path.isfile(p) for p in DEFAULT_PARAMS_FILES):
        return False
    from .contract.plugin import load_plugin

    try:
        action = load_plugin(resolve_plugin_dir(ns.plugin, env).value).config.actions.get(name)
    except PluginError:
        return False  # `run` reports it, with its events
    return action is not None and action.serves


def entrypoint() -> None:
    """Console-script and container entry: exit with the run's code.  Signals are held from the first
    line (signals.py: a pod deleted while the runtime imports still ends with the contract's events)."""
    from .contract import signals

    held = signals.hold_early()
    try:
        code = main(own_process=True, held_signals=held)
    except KeyboardInterrupt:
        code = int(ExitCode.CANCELLED_SIGINT)
    sys.stdout.flush()
    if signals.threads_abandoned():
        # The transfer threads of an upload that ran out of time would hold the interpreter's exit.
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


__all__ = ["entrypoint", "main"]
