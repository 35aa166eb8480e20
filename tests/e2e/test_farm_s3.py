"""A batch written straight to object storage (a real S3 API on loopback: moto's server) by worker processes with
real Blender children, one of them killed mid-job: the bucket ends with every frame once, nothing staged, the
dataset's own files published; `synthfarm download` reads it from the bucket and pycocotools reads its export."""
import subprocess
import sys

from pathlib import Path

import psutil
import pytest

from farm_procs import Farm, check_dataset
from s3_server import S3Server
from synthfarm.farm.client import FarmError

pytest.importorskip("boto3")
TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


@pytest.fixture()
def s3(monkeypatch):
    server = S3Server()
    server.bucket("data")
    for name, value in server.env.items():  # the farm's processes inherit these
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


def keys(s3, prefix):
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket="data", Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))


def test_batch_into_a_bucket_with_a_worker_killed(s3, slow_recipe, tmp_path):
    farm = Farm(tmp_path, workers=2)
    try:
        farm.submit(slow_recipe, 5, "s3://data/sets/tiny")
        farm.wait(lambda s: s["jobs"]["running"] >= 1 and any(
            w["id"] == "w0" and w["status"] == "busy" for w in farm.client.workers()), timeout=180)
        (child,) = psutil.Process(farm.workers[0].pid).children()
        farm.workers[0].kill()  # mid-job: its attempt is lost; whatever it staged must never reach the dataset
        status = farm.wait(lambda s: s["jobs"]["done"] == 5, timeout=300)
        assert status["jobs"]["failed"] == 0 and status["out"] == "s3://data/sets/tiny"
        child.wait(timeout=60)
        farm.wait(lambda s: "sets/tiny/jobs.jsonl" in keys(s3, "sets/tiny/"), timeout=30)
    finally:
        farm.stop()
    stored = keys(s3, "sets/tiny/")
    assert not [k for k in stored if k.startswith("sets/tiny/.staging/")]
    annotations = [k for k in stored if k.startswith("sets/tiny/annotations/")]
    assert len(annotations) == 5 * 3  # every frame once
    assert {"sets/tiny/dataset.yaml", "sets/tiny/recipe.yaml", "sets/tiny/jobs.jsonl"} <= set(stored)
    assert not (tmp_path / "sets").exists()  # nothing went through the coordinator's disk

    farm = Farm(tmp_path, workers=0)  # the same state: download reads the bucket
    try:
        down = tmp_path / "down"
        run = subprocess.run([sys.executable, "-m", "synthfarm.cli", "download", "batch", str(down), "--connect",
                              f"tcp://127.0.0.1:{farm.port + 1}"], capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert f"{len(stored)} files fetched" in run.stdout
    finally:
        farm.stop()
    check_dataset(down, 5, 3)
    export = subprocess.run([sys.executable, "-m", "synthfarm.cli", "convert", str(down), "--to", "coco"],
                            capture_output=True, text=True, timeout=300)
    assert export.returncode == 0, export.stderr
    from pycocotools.coco import COCO

    splits = [COCO(str(path)) for path in sorted((down / "coco" / "annotations").glob("instances_*.json"))]
    assert sum(len(c.getImgIds()) for c in splits) == 15 and all(c.getAnnIds() for c in splits)


def test_submit_refuses_a_bad_bucket_location(s3, tmp_path):
    farm = Farm(tmp_path, workers=0)
    try:
        for out, message in (("s3://Bad_Bucket/x", "not an S3 location"), ("s3://nosuchbucket/x", "cannot be reached")):
            with pytest.raises(FarmError, match=message):
                farm.client.submit(batch_id="b", recipe=TINY.read_text(), recipe_dir=str(TINY.parent), out=out,
                                   count=1)
    finally:
        farm.stop()
