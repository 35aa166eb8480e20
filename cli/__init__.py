"""The ``synthfarm`` command: the whole product's command line (dataset commands and farm commands).
Pure Python at import time: Blender is imported only by the commands that need it."""
import sys

from .early import start_blender_early

start_blender_early(sys.argv)  # `synthfarm render`: Blender boots while the rest loads

from . import cluster, dataset, farm, workflow  # noqa: E402, F401  (they add their commands to main)
from .app import main

__all__ = ["main"]
