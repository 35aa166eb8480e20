"""The ``synthfarm`` command: the whole product's command line (dataset commands and farm commands).
Pure Python at import time: Blender is imported only by the commands that need it."""
from . import cluster, dataset, farm, workflow  # noqa: F401  (they add their commands to main)
from .app import main

__all__ = ["main"]
