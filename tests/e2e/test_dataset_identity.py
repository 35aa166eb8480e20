"""One dataset per folder, as a user meets it on the command line: another seed, tier or parameter value is
refused with what differs and the fix, the same command resumes, --replace starts over, and a second
writer is refused while the first one runs (a killed one leaves no lock)."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def synthfarm(*args, **kw):
    return subprocess.run([sys.executable, "-m", "synthfarm.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **kw)


def snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file() and ".farm" not in p.parts}


def test_another_dataset_is_refused_and_the_same_one_resumes(tmp_path):
    out = tmp_path / "d"
    first = synthfarm("render", TINY, "--jobs", 2, "--out", out)
    assert first.returncode == 0, first.stderr
    identity = yaml.safe_load((out / "dataset.yaml").read_text())["identity"]
    assert identity["seed"] == 0 and identity["tier"] == "full" and identity["params"] == {"radius": 2.0}
    assert identity["resolutions"] == {"cam": [64, 48]}
    before = snapshot(out)
    for extra, words in ((["--seed", 5], "seed 0 there, 5 now"),
                         (["--preview"], "sensor cam 64x48 there, 32x24 now"),
                         (["--set", "radius=3"], "parameter radius 2.0 there, 3.0 now"),
                         (["--in-process", "--seed", 5], "seed 0 there, 5 now")):
        refused = synthfarm("render", TINY, "--jobs", 2, "--out", out, *extra)
        assert refused.returncode == 1, refused.stdout
        assert words in refused.stderr and "--out" in refused.stderr and "--replace" in refused.stderr
    assert snapshot(out) == before  # nothing was touched
    more = synthfarm("render", TINY, "--jobs", 3, "--out", out)
    assert more.returncode == 0, more.stderr
    assert "3/3 jobs" in more.stdout and "1 rendered, 2 already there" in more.stdout
    replaced = synthfarm("render", TINY, "--jobs", 1, "--out", out, "--seed", 5, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert yaml.safe_load((out / "dataset.yaml").read_text())["identity"]["seed"] == 5
    assert len(list((out / "annotations").glob("*-ann.json"))) == 1


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "synthfarm.cli", "render", str(TINY), "--jobs", "40", "--out", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (out / "jobs.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = synthfarm("render", TINY, "--jobs", 40, "--out", out)
        assert second.returncode == 1
        assert "is in use: another synthfarm process" in second.stderr
        converting = synthfarm("convert", out, "--to", "coco")
        assert converting.returncode == 1 and "is in use" in converting.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: nothing of it cleans up
        first.wait()
    resumed = synthfarm("render", TINY, "--jobs", 2, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
