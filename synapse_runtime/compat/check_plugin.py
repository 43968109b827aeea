"""``python -m synapse_runtime.compat.check_plugin DIR [--import]``: is this plugin fit to build?

Run by scripts/plugin-image.sh twice: on the host before anything is downloaded (config.yaml by the
runner's loader *and* by upstream's rules, so a config the Synapse backend would reject fails at
build time, not in production), and inside the new image with ``--import`` (every action's
entrypoint imported against the installed requirements).  Prints ``code version`` on success.
Exit codes are the runtime's: 2 for a bad config.yaml, 3 for an action that cannot be imported.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from ..errors import ExitCode, PluginError


def check(plugin_dir: Path, import_actions: bool) -> tuple[str, str]:
    """(code, version) of a plugin whose config.yaml passes both loaders; raises PluginError."""
    from ..errors import ValidationError
    from ..contract.plugin import load_plugin, resolve_action

    plugin = load_plugin(plugin_dir)
    import yaml

    assert plugin.config_path is not None
    data = yaml.safe_load(plugin.config_path.read_text(encoding="utf-8")) or {}
    from .sdk_api.config import PluginConfig

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            PluginConfig.model_validate(data)
        except Exception as e:
            errors = getattr(e, "errors", lambda **_: [])(include_url=False, include_input=False)
            summary = "; ".join(f"{'.'.join(map(str, x['loc'])) or '(top level)'}: {x['msg']}" for x in errors) or str(e)
            raise ValidationError(f"{plugin.config_path}: {summary}", details={"file": str(plugin.config_path)},
                                  hint="fix config.yaml: upstream's PluginConfig rules (docs/compat.md)") from None
    for w in caught:
        print(f"warning: {plugin.config_path}: {w.message}", file=sys.stderr)
    if not plugin.config.code:
        raise ValidationError(f"{plugin.config_path}: code is missing", hint="add `code: my-plugin` (the image is tagged with it)")
    if import_actions:
        for name in plugin.config.actions:
            resolve_action(plugin, name)
    return plugin.config.code, plugin.config.version


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    import_actions = "--import" in args
    paths = [a for a in args if a != "--import"]
    if len(paths) != 1:
        print("usage: python -m synapse_runtime.compat.check_plugin PLUGIN_DIR [--import]", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    try:
        code, version = check(Path(paths[0]), import_actions)
    except PluginError as e:
        print(f"error: {e.message}" + (f"\nhint: {e.hint}" if e.hint else ""), file=sys.stderr)
        return int(e.exit_code)
    print(code, version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
