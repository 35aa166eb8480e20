"""glibc keeps freed memory for the labels' arrays in the processes synthfarm runs itself (addon/core/heap.py):
numpy's temporaries of a frame's sizes then fault in (almost) no fresh page; a user's own settings are left alone."""
import os
import subprocess
import sys
import textwrap

import psutil
import pytest
import zmq

from synthfarm.addon.core.heap import SETTINGS, child_environment

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's settings are for Linux")

FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from synthfarm.addon.core.heap import keep_freed_memory
    print(keep_freed_memory() if sys.argv[1] == "keep" else None)
    sizes = np.random.default_rng(0).integers(10_000, 500_000, 40)  # arrays of 80 KB to 4 MB, as labels make them

    def frame():
        for n in sizes:
            a = np.ones(n)
            b = a * 2.0
            c = np.concatenate([b, a[: n // 2]])
            np.cumsum(c)

    frame()  # warm: the heap grows to what a frame needs
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        frame()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
""")


def faults_per_frame(mode: str, env: dict | None = None) -> tuple[str, float]:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, env=env,
                          timeout=300, check=True)
    applied, faults = done.stdout.split()
    return applied, float(faults)


@linux
def test_numpys_temporaries_fault_in_no_fresh_pages_once_freed_memory_is_kept():
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    applied, kept = faults_per_frame("keep", env)
    _, plain = faults_per_frame("plain", env)
    assert applied == "True"
    # measured: 0.2 page faults a "frame" kept, ~50,000 with glibc's defaults (numpy 2.5 and 1.26)
    assert kept < 100 < plain / 10, f"{kept} page faults per frame with freed memory kept, {plain} without"


@linux
def test_a_users_own_settings_are_left_alone():
    assert child_environment({"MALLOC_TRIM_THRESHOLD_": "0"}) == {}
    assert child_environment({}) == {name: str(value) for name, (_, value) in SETTINGS.items()}
    applied, _ = faults_per_frame("keep", {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"})
    assert applied == "False"


@linux
def test_the_farms_blender_child_keeps_freed_memory():
    from synthfarm.farm.child import Child

    context = zmq.Context()
    child = Child(context, env={"SYNTHFARM_DEVICE": "cpu"}).wait_ready()
    try:
        environment = psutil.Process(child.process.pid).environ()
        for name, (_, value) in SETTINGS.items():
            assert environment.get(name) == str(value), name
    finally:
        child.stop()
        context.term()
