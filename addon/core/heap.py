"""glibc's heap kept for reuse, so that numpy's temporaries land on pages already mapped instead of fresh ones.

glibc maps arrays above its mmap threshold (128 KiB at first) afresh each time and gives the top of its heap back
to the system when more than its trim threshold is free there; it raises both as a process frees large blocks
(up to 32 MiB and 64 MiB), but a frame's labels (arrays of 100 KiB to a few MiB made and freed by the hundred)
keep meeting fresh pages: 1,400-4,000 page faults a frame at 640x480 with 50 objects before the rasteriser kept
its own arrays (raster.py), as much CPU as much of the arithmetic. Setting both thresholds to those upper values
from the start leaves none; with the rasteriser's arrays kept, a frame's labels still take 0.88x the CPU time
with these settings (tests/bench/groundtruth.py; issue 13's notes). Outputs do not change.

Set for the processes synthfarm runs itself (the farm's Blender child, by its environment; the in-process
``synthfarm.render``, by mallopt), not by the add-on in a user's Blender. Setting only a top pad (M_TOP_PAD) is
not enough: it switches glibc's raising of the thresholds off, and a frame with a large object then faulted more
than before (15,000 a frame instead of 4,000).
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h) and the environment variables it reads when a process starts
SETTINGS = {"MALLOC_MMAP_THRESHOLD_": (-3, 32 * 2**20),  # M_MMAP_THRESHOLD: glibc's own upper bound on 64 bits
            "MALLOC_TRIM_THRESHOLD_": (-1, 64 * 2**20)}  # M_TRIM_THRESHOLD: twice it, as glibc raises it


def child_environment(environ=os.environ) -> dict[str, str]:
    """The settings for a child process's environment, unless ``environ`` sets any of them."""
    if any(name in environ for name in SETTINGS):
        return {}
    return {name: str(value) for name, (_, value) in SETTINGS.items()}


def keep_freed_memory() -> bool:
    """Apply the settings to this process (unless its environment set any when it started); False where there is
    no glibc."""
    if any(name in os.environ for name in SETTINGS) or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = all(mallopt(parameter, value) == 1 for parameter, value in SETTINGS.values())
    if not done:
        log.debug("glibc refused mallopt %s", SETTINGS)
    return done
