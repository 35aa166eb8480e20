"""`synthfarm convert` and `report` as a user runs them: the recipe's filters and splits by default, one
split per frame shared by every format, each export replaced whole, and clear refusals of folders that
hold no dataset (yet)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def synthfarm(*args):
    return subprocess.run([sys.executable, "-m", "synthfarm.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("convert")
    recipe = yaml.safe_load(TINY.read_text())
    recipe["output"] = {"formats": ["native"], "filters": {"ignore_classes": ["ball"]}, "val_fraction": 0.5}
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    done = synthfarm("render", tmp / "tiny.yaml", "--jobs", 4, "--out", tmp / "ds")
    assert done.returncode == 0, done.stderr
    return tmp / "ds"


def split_members(ds: Path) -> dict[str, dict[str, set]]:
    coco = {p.stem.removeprefix("instances_"): {im["synthfarm_stem"] for im in json.loads(p.read_text())["images"]}
            for p in (ds / "coco" / "annotations").glob("instances_*.json")}
    yolo = {d.name: {p.stem for p in d.iterdir()} for d in (ds / "yolo" / "labels").iterdir()}
    voc = {p.stem: set(p.read_text().split()) for p in (ds / "voc" / "ImageSets" / "Main").glob("*.txt")}
    return {"coco": coco, "yolo": yolo, "voc": voc}


def test_recipe_settings_shared_splits_and_whole_replacement(dataset):
    first = synthfarm("convert", dataset, "--to", "coco,yolo,voc")
    assert first.returncode == 0, first.stderr
    members = split_members(dataset)
    assert members["coco"] == members["yolo"] == members["voc"]  # the same frames in every format
    assert {k: len(v) for k, v in members["coco"].items()} == {"train": 2, "val": 2}  # the recipe's val_fraction
    categories = {c["name"] for p in (dataset / "coco" / "annotations").glob("*.json")
                  for c in json.loads(p.read_text())["categories"]}
    labels = [a for p in (dataset / "coco" / "annotations").glob("*.json") for a in json.loads(p.read_text())["annotations"]]
    assert labels and "ball" not in {a["attributes"]["name"] for a in labels}  # the recipe's filters
    assert "box" in categories
    again = synthfarm("convert", dataset, "--to", "coco,yolo,voc", "--val-fraction", 0, "--ignore-class", "box")
    assert again.returncode == 0, again.stderr
    members = split_members(dataset)
    assert members["coco"] == members["yolo"] == members["voc"] == {"train": members["coco"]["train"]}
    assert len(members["coco"]["train"]) == 4
    assert not (dataset / "yolo" / "images" / "val").exists()  # nothing of the first export survives
    assert not list(dataset.glob(".export-*"))
    assert all(not p.read_text().strip() or p.read_text().split()[0] == "1"  # only the ball (index 1) is left
               for p in (dataset / "yolo" / "labels" / "train").glob("*.txt"))
    data = yaml.safe_load((dataset / "yolo" / "data.yaml").read_text())
    assert "path" not in data and data["train"] == "images/train" and data["val"] == "images/train"


def test_refusals_name_the_problem(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"not a dataset")
    for command in (("convert", tmp_path / "photos", "--to", "coco"), ("report", tmp_path / "photos")):
        out = synthfarm(*command)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "is not a synthfarm dataset (it has no dataset.yaml)" in out.stderr
    assert not (tmp_path / "photos" / "report").exists() and not (tmp_path / "photos" / "coco").exists()
    started = tmp_path / "started"  # a render interrupted before its first job was complete
    (started / "annotations").mkdir(parents=True)
    (started / "dataset.yaml").write_text(yaml.safe_dump({"recipe_hash": "x", "complete": False}))
    for command in (("convert", started, "--to", "yolo"), ("report", started)):
        out = synthfarm(*command)
        assert out.returncode == 1 and "holds no finished frame yet" in out.stderr and "resume" in out.stderr
