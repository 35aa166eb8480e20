"""MOT Challenge and COCO-video exports of a sequence dataset, read back with TrackEval and pycocotools."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from synthfarm.addon.core.dataset.classmap import ClassMap
from synthfarm.addon.core.dataset.convert import convert
from synthfarm.addon.core.dataset.native import DatasetWriter
from synthfarm.addon.core.groundtruth import instances_from_mask

W, H, FRAMES = 64, 48, 4


TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


def _square(mask, iid, x, y, size=8):
    mask[max(y, 0):max(y + size, 0), max(x, 0):max(x + size, 0)] = iid


@pytest.fixture
def sequences(tmp_path):
    root = tmp_path / "ds"
    writer = DatasetWriter(root)
    writer.open(TINY.read_text(), {"recipe_hash": "abc"}, {"name": "t"})  # convert reads the recipe's output
    truth = {}
    for job in (3, 4):
        for k in range(FRAMES):
            index = np.zeros((H, W), np.int32)
            boxes = {1: (4 + 5 * k + job, 10), 2: (40 - 6 * k, 20 + k)}  # two objects moving in opposite ways
            for iid, (x, y) in boxes.items():
                _square(index, iid, x, y)
            seen = instances_from_mask(index, [1, 2])
            png = tmp_path / "f.png"
            Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(png)
            objects = [{"instance_id": iid, "name": f"o{iid}", "class": ["toy", "car"][iid - 1], "class_id": iid,
                        "generator": "g", "visible_pixels": seen[iid].pixels, "bbox": seen[iid].bbox,
                        "segmentation": seen[iid].rle, "visibility": 1.0, "truncation": 0.0,
                        "amodal_bbox_unclipped": [float(v) for v in seen[iid].bbox],
                        "pose": {"R": np.eye(3).tolist(), "t": [0.0, 0.0, 5.0]}, "size": [0.2, 0.2, 0.2],
                        "box3d": {"camera": (np.indices((2, 2, 2)).reshape(3, -1).T * 0.2 + [0, 0, 5]).tolist()}}
                       for iid in (1, 2)]
            for obj in objects:
                truth[(job, k, obj["instance_id"])] = obj["bbox"]
            writer.write_frame(job, k, "cam", image_png=png, instance_mask=index,
                               annotation={"job": job, "frame": k, "sensor": "cam", "image_size": [W, H],
                                           "frame_rate": 12, "camera": {"K": [[50, 0, 32], [0, 50, 24], [0, 0, 1]],
                                                                        "lens": {"model": "pinhole"}},
                                           "classes": ["toy", "car"], "objects": objects}, metadata={})
    return root, truth


def _trackeval(gt_folder, trackers, seqmap):
    """Evaluate trackers/<name>/data/<seq>.txt against the MOT ground truth with TrackEval (MOTChallenge's
    official code), every class counted (no MOT17 pedestrian preprocessing)."""
    trackeval = pytest.importorskip("trackeval", reason="TrackEval needs numpy>=2.3; bpy 5.0 (Python 3.11) pins numpy<2")

    evaluator = trackeval.Evaluator({"PRINT_RESULTS": False, "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False,
                                     "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "USE_PARALLEL": False,
                                     "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True})
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt_folder), "TRACKERS_FOLDER": str(trackers), "SKIP_SPLIT_FOL": True,
        "SEQMAP_FILE": str(seqmap), "DO_PREPROC": False, "PRINT_CONFIG": False, "BENCHMARK": "MOT15"})
    results, _ = evaluator.evaluate([dataset], [trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
                                                trackeval.metrics.Identity({"PRINT_CONFIG": False})])
    out = {}
    for name, res in results["MotChallenge2DBox"].items():
        combined = res["COMBINED_SEQ"]["pedestrian"]
        out[name] = {"MOTA": combined["CLEAR"]["MOTA"], "IDSW": combined["CLEAR"]["IDSW"],
                     "IDF1": combined["Identity"]["IDF1"], "GT": combined["CLEAR"]["CLR_TP"]}
    return out


def test_mot_sequences_scored_by_trackeval(sequences, tmp_path):
    root, truth = sequences
    result = convert(root, ["mot"], class_map=ClassMap.default(["toy", "car"]))
    assert result["mot"] == {"sequences": 2, "boxes": 2 * FRAMES * 2}
    seq = root / "mot" / "0000000003-cam"
    info = (seq / "seqinfo.ini").read_text()
    assert "frameRate=12" in info and f"seqLength={FRAMES}" in info and "imWidth=64" in info
    assert sorted(p.name for p in (seq / "img1").iterdir()) == [f"{i:06d}.png" for i in range(1, FRAMES + 1)]
    rows = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",")
    for frame, track, x, y, w, h, conf, cls, vis in rows:
        assert [x - 1, y - 1, w, h] == truth[(3, int(frame) - 1, int(track))]  # MOT is 1-based
        assert conf == 1 and cls == track and vis == 1.0
    # a tracker that reports the ground truth scores perfectly; one that swaps ids midway switches twice
    trackers = tmp_path / "trackers"
    for name in ("same", "swapped"):
        (trackers / name / "data").mkdir(parents=True)
        for s in ("0000000003-cam", "0000000004-cam"):
            rows = [line.split(",") for line in (root / "mot" / s / "gt" / "gt.txt").read_text().splitlines()]
            # a tracker's lines: frame, id, box, confidence, then -1 for the 3D columns
            lines = [",".join([f, str(3 - int(i)) if name == "swapped" and int(f) > 2 else i, *box, "1", "-1,-1,-1"])
                     for f, i, *box, _, _, _ in ((r[0], r[1], *r[2:6], *r[6:9]) for r in rows)]
            (trackers / name / "data" / f"{s}.txt").write_text("\n".join(lines) + "\n")
    scores = _trackeval(root / "mot", trackers, root / "mot" / "seqmap.txt")
    assert scores["same"]["MOTA"] == 1.0 and scores["same"]["IDF1"] == 1.0 and scores["same"]["GT"] == 16
    assert scores["swapped"]["IDSW"] == 4 and scores["swapped"]["IDF1"] < 1.0
    assert (root / "mot" / "seqmap.txt").read_text().split() == ["name", "0000000003-cam", "0000000004-cam"]


def test_coco_video_read_by_pycocotools(sequences):
    root, truth = sequences
    result = convert(root, ["coco-video"], class_map=ClassMap.default(["toy", "car"]))
    assert result["coco-video"] == {"videos": 2, "images": 2 * FRAMES, "tracks": 4}
    path = root / "coco-video" / "instances.json"
    coco = COCO(str(path))
    doc = json.loads(path.read_text())
    assert [v["length"] for v in doc["videos"]] == [FRAMES, FRAMES] and doc["videos"][0]["frame_rate"] == 12
    videos = {v["id"]: v["name"] for v in doc["videos"]}
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        track = next(t for t in doc["tracks"] if t["id"] == ann["track_id"])
        assert track["video_id"] == ann["video_id"] == image["video_id"]
        job = int(videos[ann["video_id"]].split("-")[0])
        assert ann["bbox"] == truth[(job, image["frame_id"], track["instance_id"])]
        assert coco.annToMask(ann).sum() == ann["area"]
    assert {i["frame_id"] for i in doc["images"]} == set(range(FRAMES))
    assert doc["images"][0]["camera"]["K"][0][0] == 50


def test_formats_with_a_pinhole_camera_warn_about_a_distorted_lens(sequences, caplog):
    root, _ = sequences
    convert(root, ["kitti"], class_map=ClassMap.default(["toy", "car"]))
    assert "lens" not in caplog.text
    path = next((root / "annotations").glob("*-ann.json"))
    ann = json.loads(path.read_text())
    ann["camera"]["lens"] = {"model": "fisheye"}
    path.write_text(json.dumps(ann))
    convert(root, ["kitti", "coco"], class_map=ClassMap.default(["toy", "car"]))
    assert "kitti: the images were taken through a fisheye lens" in caplog.text and "coco:" not in caplog.text
