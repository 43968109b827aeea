"""The working directory an action runs in: writable, and showing the plugin's files.

Why: upstream's job runner starts an action from the plugin's own (writable) folder, and published
synapse-sdk plugins rely on it: they write temporary files under ``os.getcwd()`` and read their
own files by relative path.  The runtime's image starts in ``/opt/synapse`` on a read-only root
filesystem, where such a plugin fails with ``Read-only file system``.  So, in both modes (our
classes and upstream's), the action runs in:

1. the plugin directory itself, when it is writable (a plugin checked out on a workstation, a
   writable volume): exactly upstream's working directory;
2. otherwise a fresh per-run directory under the temporary directory (``$TMPDIR``, else ``/tmp``,
   writable in the image and its deployments), holding a symbolic link to each top-level file
   and folder of the plugin, so relative reads resolve as they do upstream and new files can be
   written.  It is removed, with what the action left in it, when the action returns.

The runtime's own working directory comes back as soon as the action returns (result.json and the
output upload use absolute paths anyway); relative ``path`` knobs (``SYNAPSE_CACHE_DIR``, ...) are
made absolute first, so they keep naming what they named where the runtime was started.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from . import knobs


def _writable(path: Path) -> bool:
    # access(2) says no for a read-only filesystem (EROFS) as well as for missing permissions.
    return os.access(path, os.W_OK | os.X_OK)


def _linked_copy(plugin_dir: Path) -> Path:
    """A fresh directory with a link to each top-level entry of ``plugin_dir``."""
    made = Path(tempfile.mkdtemp(prefix="synapse-work-"))
    try:
        names = os.listdir(plugin_dir)
    except OSError:
        names = []
    for name in names:
        try:
            os.symlink(plugin_dir / name, made / name)
        except OSError:  # one entry that cannot be linked must not stop the run
            pass
    return made


def _absolute_path_knobs(env: MutableMapping[str, str] | None) -> None:
    for knob in knobs.KNOBS.values():
        if knob.kind != "path":
            continue
        for mapping in (env, os.environ):
            value = mapping.get(knob.name) if mapping is not None else None
            if value and not os.path.isabs(value):
                mapping[knob.name] = os.path.abspath(value)  # type: ignore[index]


@contextmanager
def action_workdir(plugin_dir: Path, env: MutableMapping[str, str] | None = None) -> Iterator[Path]:
    """Run the body in the action's working directory (see the module's doc); yields it.

    Where no writable directory can be made, the working directory is left as it is (the action
    then fails as it would have, on its own write, with the error naming the path).
    """
    try:
        previous: str | None = os.getcwd()
    except OSError:  # the runtime's own working directory was removed
        previous = None
    made: Path | None = None
    target = plugin_dir
    if not _writable(plugin_dir):
        try:
            made = target = _linked_copy(plugin_dir)
        except OSError:
            yield Path(previous or plugin_dir)
            return
    if previous is not None:
        _absolute_path_knobs(env)
    os.chdir(target)
    try:
        yield target
    finally:
        try:
            if previous is not None:
                os.chdir(previous)
        except OSError:
            pass
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


__all__ = ["action_workdir"]
