"""Every output read by the tools its users read it with: OpenCV, OpenEXR and imageio for depth and normals
(the README's own lines, run as written), Ultralytics' dataset checker and loader for the YOLO exports,
datumaro for VOC and COCO, pycocotools for COCO. A real render of the toybox recipe (ducks carry
keypoints, the other toys none: a mixed dataset).

Ultralytics needs torch and datumaro pins numpy below 2.5: both are installed on the Python 3.11 pass
(CPU torch), where these tests run; on 3.13 they are skipped (see .ci/run)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOYBOX = ROOT / "assets" / "recipes" / "toybox.yaml"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("readers") / "toybox"
    run = subprocess.run([sys.executable, "-m", "synthfarm.cli", "render", str(TOYBOX), "--jobs", "3", "--preview",
                          "--set", "num_toys=12", "--seed", "1", "--out", str(out)], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    converted = subprocess.run([sys.executable, "-m", "synthfarm.cli", "convert", str(out), "--to",
                                "coco-polygons,yolo,yolo-seg,yolo-pose,voc", "--val-fraction", "0.34"],
                               capture_output=True, text=True, timeout=600)
    assert converted.returncode == 0, converted.stderr[-2000:]
    return out


def native(ds: Path) -> dict[str, dict]:
    return {p.name.removesuffix("-ann.json"): json.loads(p.read_text())
            for p in sorted((ds / "annotations").glob("*-ann.json"))}


def readme_reading_lines() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Two lines to read each:\n\n```python\n(.*?)```", text, re.S)
    assert block, "the README lost its lines on reading depth and normals"
    return block.group(1)


def test_depth_and_normals_with_the_readme_lines(dataset, tmp_path):
    """The README's lines, run as written on a rendered frame, give the depth and normals the dataset holds
    (OpenCV 4.x; opencv-python 5.0's wheels are built without OpenEXR and return None, as the README says;
    imageio through FreeImage)."""
    from synthfarm.addon.core.exr import read_depth, read_normals

    stem = next(iter(native(dataset)))
    for kind in ("depth", "normals"):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / "X.exr").symlink_to(dataset / kind / f"{stem}.exr")
    import cv2

    opencv_reads_exr = not re.search(r"OpenEXR:\s+NO", cv2.getBuildInformation())
    found = {"depth": [], "normals": []}
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for line in readme_reading_lines().splitlines():  # line by line: every reader's result is checked
            before = {name: namespace.get(name) for name in found}
            if "cv2.imread" in line and not opencv_reads_exr:  # OpenCV 5.0's wheels: imread gives None
                name = "depth" if line.startswith("depth") else "normals"
                try:
                    exec(line, namespace)
                    value = namespace[name]
                except TypeError:  # None[..., ::-1]
                    value = None
                assert value is None, line
                found[name].append((line, None))
                continue
            exec(line, namespace)
            for name in found:
                if namespace.get(name) is not before[name]:
                    found[name].append((line, namespace[name]))
    finally:
        os.chdir(cwd)
    depth, normals = read_depth(dataset / "depth" / f"{stem}.exr"), read_normals(dataset / "normals" / f"{stem}.exr")
    assert np.isfinite(depth).mean() > 0.5
    assert len(found["depth"]) == 3 and len(found["normals"]) == 3  # OpenEXR, OpenCV, imageio
    for line, value in found["depth"] + found["normals"]:
        if "cv2" in line and not opencv_reads_exr:  # as the README says of OpenCV 5.0's wheels (3.13 pass here;
            assert value is None, line              # the 3.11 pass reads with OpenCV 4)
            continue
        truth = depth if value.ndim == 2 else normals
        assert value.shape == truth.shape and value.dtype in (np.float32, np.float16), line
        assert np.array_equal(np.asarray(value, np.float32), truth.astype(np.float32)), line
    if opencv_reads_exr:
        any_depth = cv2.imread(str(dataset / "depth" / f"{stem}.exr"), cv2.IMREAD_ANYDEPTH)
        assert any_depth.dtype == np.float32 and np.array_equal(any_depth, depth)
    print(f"OpenCV {cv2.__version__} {'reads' if opencv_reads_exr else 'cannot read'} EXR")


def test_ultralytics_checks_and_loads_every_yolo_export(dataset):
    pytest.importorskip("ultralytics", reason="Ultralytics (with CPU torch) is installed on the Python 3.11 pass")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.data import YOLODataset
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.utils.ops import segments2boxes

    labels = native(dataset)
    for name, task in (("yolo", "detect"), ("yolo-seg", "segment"), ("yolo-pose", "pose")):
        data = check_det_dataset(str(dataset / name / "data.yaml"), autodownload=False)
        assert Path(data["train"]).resolve() == (dataset / name / "images" / "train").resolve()
        loaded = {}
        for split in ("train", "val"):
            ds = YOLODataset(img_path=data[split], data=data, task=task, augment=False, imgsz=320)
            assert len(ds) >= 1
            item = ds[0]  # the loader's whole pipeline: image, boxes, masks or keypoints
            assert item["img"].shape[0] == 3
            loaded.update({Path(lab["im_file"]).stem: lab for lab in ds.labels})
        assert set(loaded) == set(labels)  # every frame, each in one split
        for stem, lab in loaded.items():
            W, H = labels[stem]["image_size"]
            objects = [o for o in labels[stem]["objects"] if o["visible_pixels"] > 0]
            if task == "pose":
                objects = [o for o in objects if o.get("keypoints")]
                assert lab["keypoints"].shape == (len(objects), 3, 3)
            expected = np.array([[(x + w / 2) / W, (y + h / 2) / H, w / W, h / H] for x, y, w, h in
                                 (o["bbox"] for o in objects)]).reshape(-1, 4)
            assert np.allclose(lab["bboxes"], expected, atol=1e-6), stem
            if task == "segment":  # the box Ultralytics trains with, from our polygon: the whole object
                boxes = segments2boxes([s for s in lab["segments"]])
                assert np.allclose(boxes, expected, atol=1e-6), stem


def test_datumaro_imports_voc_and_coco_as_written(dataset):
    pytest.importorskip("datumaro", reason="datumaro (numpy < 2.5) is installed on the Python 3.11 pass")
    from datumaro.components.dataset import Dataset
    from datumaro.components.environment import Environment

    labels = native(dataset)
    visible = sum(o["visible_pixels"] > 0 for a in labels.values() for o in a["objects"])
    splits = {p.stem: set(p.read_text().split()) for p in (dataset / "voc" / "ImageSets" / "Main").glob("*.txt")}
    for folder, fmt in (("voc", "voc"), ("coco-polygons", "coco_instances")):
        assert fmt in Environment().detect_dataset(str(dataset / folder))
        imported = Dataset.import_from(str(dataset / folder), fmt)
        names = [c.name for c in imported.categories()[1].items]  # AnnotationType.label
        assert {"container", "duck"} <= set(names)
        assert len(imported) == len(labels)
        assert {s: {Path(i.id).name for i in imported.get_subset(s)} for s in imported.subsets()} == splits
        boxes = [a for item in imported for a in item.annotations if a.type.name == "bbox"]
        assert len(boxes) == visible or fmt == "coco_instances"
        for item in imported:
            assert item.media is not None and item.media.has_data  # the images are where the format says


def test_pycocotools_keypoint_evaluation_on_a_mixed_dataset(dataset):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    for path in sorted((dataset / "coco-polygons" / "annotations").glob("instances_*.json")):
        gt = COCO(str(path))
        kinds = {bool(c.get("keypoints")) for c in gt.loadCats(gt.getCatIds())}
        assert kinds == {True, False}  # ducks with keypoints, other toys without
        detections = gt.loadRes([{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())])
        evaluation = COCOeval(gt, detections, "keypoints")
        evaluation.params.kpt_oks_sigmas = np.full(3, 0.05)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        assert evaluation.stats[0] == pytest.approx(1.0)
    data = yaml.safe_load((dataset / "yolo-pose" / "data.yaml").read_text())
    assert data["kpt_shape"] == [3, 3] and data["names"] == {0: "duck"}
