"""The ``synthfarm`` command group; the commands live in :mod:`.dataset` and :mod:`.farm`."""
from __future__ import annotations

import logging
import os
import sys

import click


def _keep_stdout_for_output() -> None:
    """Blender (the bpy module) prints its own lines on the process's C-level stdout, which would mix with
    a command's output (``params --json``, the batch id of ``submit``). Send C-level writes to stderr and
    keep Python's ``sys.stdout`` (what click echoes to) on the real stdout."""
    try:
        sys.stdout.flush()
        real = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):  # no real file descriptors: nothing to protect
        return
    sys.stdout = open(real, "w", buffering=1, encoding=sys.stdout.encoding or "utf-8", closefd=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="synthfarm")
def main(verbose: int) -> None:
    """synthfarm: render annotated computer-vision datasets from Blender recipes.

    RECIPE arguments take a recipe file (YAML) or a .blend with a recipe saved on its scene by the add-on."""
    _keep_stdout_for_output()
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
