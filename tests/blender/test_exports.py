"""Exports of a real rendered dataset, checked with tools we did not write (pycocotools, XML parser)."""
import json
import math
import xml.etree.ElementTree as ET

import bpy
import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import synthfarm
from synthfarm.addon.core.dataset.classmap import ClassMap
from synthfarm.addon.core.dataset.convert import convert
from synthfarm.addon.core.dataset.frames import Filters
from synthfarm.addon.core.dataset.native import read_png
from synthfarm.addon.core.groundtruth import rle_decode
from synthfarm.addon.core.recipe import recipe_from_data


def cube(name, location, size, collection=None, label=None):
    bpy.ops.mesh.primitive_cube_add(size=size, location=location)
    obj = bpy.context.active_object
    obj.name = name
    if collection is not None:
        for coll in list(obj.users_collection):
            coll.objects.unlink(obj)
        collection.objects.link(obj)
    if label:
        obj["synthfarm_class"] = label
    return obj


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Fruit on a table: duplicate Blender names, a fully hidden object, one cut by the image border."""
    tmp = tmp_path_factory.mktemp("exports")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    fruit = bpy.data.collections.new("Fruit")
    fruit["synthfarm_class"] = "apple"  # a label on a collection labels its objects
    bpy.context.scene.collection.children.link(fruit)
    for x in (-0.5, 0.0):
        cube("Apple", (x, 0, 0), 0.3, fruit)  # Blender names the second one Apple.001
    pear = cube("Pear.001", (0.5, 0, 0.1), 0.25, label="pear")
    stem = bpy.data.objects.new("kp:stem", None)
    bpy.context.scene.collection.objects.link(stem)
    stem.parent, stem.location = pear, (0, -0.125, 0.05)  # on the face towards the camera
    cube("Hidden", (0, 2, 0), 0.2, label="pear")  # behind the wall
    cube("Wall", (0, 1.5, 0), 0.8)  # unlabelled occluder
    cube("Edge", (1.55, 0, -0.4), 0.4, label="apple")  # straddles the right border
    blend = tmp / "fruit.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    recipe = recipe_from_data({
        "name": "fruit", "scene": {"base": str(blend)},
        "generators": [{"name": "fruit", "kind": "scene", "collection": "Fruit"}],
        "randomizers": [{"kind": "camera_orbit", "radius": 3.0, "height": 0.0, "azimuth": {"uniform": [-91, -89]},
                         "look_at": [0, 0, 0]},
                        {"kind": "lights", "count": 1, "type": "SUN", "energy": 3},
                        {"kind": "world", "color": [0.3, 0.3, 0.3]}],
        "sensors": [{"name": "cam", "kind": "camera", "resolution": [96, 72], "samples": 1, "focal_length": 35}],
        "output": {"formats": ["native", "coco"]},
    }, base_dir=tmp)
    summary = synthfarm.render(recipe, jobs=3, out=tmp / "ds", progress=False)
    assert summary.exports["coco"]["images"] == 3
    return tmp / "ds"


def annotations(ds):
    return [json.loads(p.read_text()) for p in sorted((ds / "annotations").glob("*-ann.json"))]


def test_native_labels_of_the_special_objects(dataset):
    ann = annotations(dataset)[0]
    by_name = {o["name"]: o for o in ann["objects"]}
    assert sorted(by_name) == ["Apple", "Apple.001", "Edge", "Hidden", "Pear.001"]
    assert by_name["Apple.001"]["class"] == "apple" and by_name["Pear.001"]["class"] == "pear"
    assert by_name["Hidden"]["visible_pixels"] == 0 and by_name["Hidden"]["amodal_pixels"] > 0
    assert 0.2 < by_name["Edge"]["truncation"] < 0.8


def test_coco_loads_evaluates_to_ap_1_and_boxes_match_masks(dataset):
    gt = COCO(str(dataset / "coco" / "instances.json"))
    assert {c["name"] for c in gt.loadCats(gt.getCatIds())} == {"apple", "pear"}
    assert min(gt.getCatIds()) == 1
    anns = gt.loadAnns(gt.getAnnIds())
    assert anns and all(a["area"] > 0 and a["bbox"][2] > 0 and a["bbox"][3] > 0 for a in anns)
    assert "Hidden" not in {a["attributes"]["name"] for a in anns}  # fully hidden: no box
    for a in anns:
        rle = gt.annToRLE(a)
        assert coco_mask.toBbox(rle).tolist() == a["bbox"]
        assert int(coco_mask.area(rle)) == a["area"]
    names = {gt.loadCats(a["category_id"])[0]["name"] for a in anns if a["attributes"]["name"].startswith("Apple")}
    assert names == {"apple"}  # duplicate Blender names keep their label's class
    pear = next(c for c in gt.loadCats(gt.getCatIds()) if c["name"] == "pear")
    assert pear["keypoints"] == ["stem"]
    pear_ann = next(a for a in anns if a["attributes"]["name"] == "Pear.001")
    assert len(pear_ann["keypoints"]) == 3 and pear_ann["keypoints"][2] == 2 and pear_ann["num_keypoints"] == 1
    detections = gt.loadRes([{**a, "score": 1.0} for a in anns])
    for kind in ("bbox", "segm"):
        evaluation = COCOeval(gt, detections, kind)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        assert evaluation.stats[0] == pytest.approx(1.0)


def test_coco_polygons_cover_the_mask(dataset):
    convert(dataset, ["coco-polygons"])
    gt = COCO(str(dataset / "coco-polygons" / "instances.json"))
    for a in gt.loadAnns(gt.getAnnIds()):
        assert isinstance(a["segmentation"], list)
        stem = gt.imgs[a["image_id"]]["synthfarm_stem"]
        native = json.loads((dataset / "annotations" / f"{stem}-ann.json").read_text())
        exact = rle_decode(next(o for o in native["objects"]
                                if o["instance_id"] == a["attributes"]["instance_id"])["segmentation"])
        poly = gt.annToMask(a).astype(bool)
        assert (poly & exact).sum() / (poly | exact).sum() > 0.75


def test_yolo_boxes_convert_back_within_half_a_pixel(dataset):
    convert(dataset, ["yolo", "yolo-seg"], val_fraction=0.5)
    data = yaml.safe_load((dataset / "yolo" / "data.yaml").read_text())
    assert data["names"] == {0: "apple", 1: "pear"}
    labels = sorted((dataset / "yolo" / "labels").rglob("*.txt"))
    images = sorted((dataset / "yolo" / "images").rglob("*.png"))
    assert len(labels) == len(images) == 3
    for label in labels:
        ann = json.loads((dataset / "annotations" / f"{label.stem}-ann.json").read_text())
        W, H = ann["image_size"]
        visible = [o for o in ann["objects"] if o["visible_pixels"] > 0]
        rows = [list(map(float, line.split())) for line in label.read_text().splitlines()]
        assert len(rows) == len(visible)
        for (cls, cx, cy, w, h), obj in zip(rows, visible):
            box = [(cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H]
            assert np.allclose(box, obj["bbox"], atol=0.5)
            assert data["names"][int(cls)] == obj["class"]
    seg = sorted((dataset / "yolo-seg" / "labels").rglob("*.txt"))
    assert all(len(line.split()) >= 7 for p in seg for line in p.read_text().splitlines())


def test_voc_xml_is_one_based(dataset):
    convert(dataset, ["voc"])
    ann = annotations(dataset)[0]
    doc = ET.parse(next((dataset / "voc" / "Annotations").glob("*.xml"))).getroot()
    objects = doc.findall("object")
    visible = [o for o in ann["objects"] if o["visible_pixels"] > 0]
    assert len(objects) == len(visible)
    for node, obj in zip(objects, visible):
        box = [int(node.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax")]
        x, y, w, h = obj["bbox"]
        assert box == [x + 1, y + 1, x + w, y + h]
        assert node.find("truncated").text == str(int(obj["truncation"] > 0.01))


def test_kitti_labels_and_calib(dataset):
    convert(dataset, ["kitti"])
    ann = annotations(dataset)[0]
    lines = (dataset / "kitti" / "label_2" / "0000000000-0000-cam.txt").read_text().splitlines()
    visible = [o for o in ann["objects"] if o["visible_pixels"] > 0]
    assert len(lines) == len(visible)
    for line, obj in zip(lines, visible):
        f = line.split()
        assert len(f) == 15 and f[0] == obj["class"]
        h, w, l = map(float, f[8:11])
        x, y, z = map(float, f[11:14])
        assert sorted([h, w, l]) == pytest.approx(sorted(obj["size"]), abs=0.01)
        centre = np.mean(obj["box3d"]["camera"], axis=0)
        assert (x, y, z) == pytest.approx(tuple(centre + [0, h / 2, 0]), abs=0.02)  # bottom centre, y down
        # the camera looks along world +y (azimuth -91..-89 degrees): the cubes' x axes are the camera's x
        assert abs(float(f[14])) < math.radians(1.5)
    calib = (dataset / "kitti" / "calib" / "0000000000-0000-cam.txt").read_text()
    P2 = np.array(calib.splitlines()[2].split()[1:], dtype=float).reshape(3, 4)
    assert np.allclose(P2[:, :3], ann["camera"]["K"])


def test_bop_scene_files(dataset):
    convert(dataset, ["bop"])
    scene = dataset / "bop" / "train_pbr" / "000000"
    gt = json.loads((scene / "scene_gt.json").read_text())["0"]
    info = json.loads((scene / "scene_gt_info.json").read_text())["0"]
    cam = json.loads((scene / "scene_camera.json").read_text())["0"]
    ann = annotations(dataset)[0]
    visible = [o for o in ann["objects"] if o["visible_pixels"] > 0]
    assert len(gt) == len(info) == len(visible)
    K = np.array(cam["cam_K"]).reshape(3, 3)
    for i, (g, inf, obj) in enumerate(zip(gt, info, visible)):
        t = np.array(g["cam_t_m2c"]) / 1000
        assert np.allclose(t, obj["pose"]["t"]) and g["obj_id"] == obj["class_id"]
        assert inf["visib_fract"] == pytest.approx(obj["visibility"])
        visib = np.asarray(Image.open(scene / "mask_visib" / f"000000_{i:06d}.png")) > 0
        assert np.array_equal(visib, rle_decode(obj["segmentation"]))
        assert (np.asarray(Image.open(scene / "mask" / f"000000_{i:06d}.png")) > 0).sum() == obj["amodal_pixels"]
        u, v, w = K @ t
        assert 0 <= u / w <= ann["image_size"][0] + 40  # the origin projects near the image
    depth = read_png(scene / "depth" / "000000.png").astype(float) * cam["depth_scale"] / 1000
    apple = rle_decode(visible[0]["segmentation"])
    assert np.all(depth[apple] > 2.0) and np.all(depth[apple] < 3.5)


def test_filters_and_class_map(dataset, tmp_path):
    class_map = ClassMap.model_validate({
        "classes": [{"id": 1, "name": "fruit", "supercategory": "food"}, {"id": 7, "name": "edge-apple"}],
        "rules": [{"match": {"name": "Edge*"}, "class": "edge-apple"}, {"match": {"label": ["apple", "pear"]},
                                                                          "class": "fruit"}]})
    convert(dataset, ["coco"], class_map=class_map, out=tmp_path)
    doc = json.loads((tmp_path / "coco" / "instances.json").read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 7]
    names = {a["attributes"]["name"]: a["category_id"] for a in doc["annotations"]}
    assert names["Edge"] == 7 and names["Pear.001"] == 1 and names["Apple.001"] == 1
    convert(dataset, ["coco"], out=tmp_path / "f", filters=Filters(drop_truncated=True, ignore_classes=frozenset({"pear"})))
    doc = json.loads((tmp_path / "f" / "coco" / "instances.json").read_text())
    assert {a["attributes"]["name"] for a in doc["annotations"]} == {"Apple", "Apple.001"}
    convert(dataset, ["coco"], out=tmp_path / "v", filters=Filters(min_visibility=1.01 - 1e-9))
    assert json.loads((tmp_path / "v" / "coco" / "instances.json").read_text())["annotations"] == []
