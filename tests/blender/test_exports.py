"""Exports of a real rendered dataset, checked with tools we did not write (pycocotools, XML parser)."""
import json
import math
from pathlib import Path
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
from synthfarm.addon.core.dataset.kitti import box_corners as kitti_box_corners
from synthfarm.addon.core.dataset.models import read_model
from synthfarm.addon.core.dataset.native import read_png
from synthfarm.addon.core.groundtruth import rle_decode
from synthfarm.addon.core.raster import rasterize
from synthfarm.addon.core.recipe import recipe_from_data

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


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


def coco_files(root):
    return sorted((root / "annotations").glob("instances_*.json"))


def test_coco_loads_evaluates_to_ap_1_and_boxes_match_masks(dataset):
    files = coco_files(dataset / "coco")
    assert [f.name for f in files] == ["instances_train.json", "instances_val.json"]  # 3 frames, val 0.2
    images = []
    for path in files:
        gt = COCO(str(path))
        split = path.stem.removeprefix("instances_")
        images += [im["file_name"] for im in gt.dataset["images"]]
        assert all((dataset / "coco" / "images" / split / im["file_name"]).is_file() for im in gt.dataset["images"])
        assert {c["name"] for c in gt.loadCats(gt.getCatIds())} == {"apple", "pear"}
        assert min(gt.getCatIds()) == 1
        anns = gt.loadAnns(gt.getAnnIds())
        assert anns and all(a["area"] > 0 and a["bbox"][2] > 0 and a["bbox"][3] > 0 for a in anns)
        assert "Hidden" not in {a["attributes"]["name"] for a in anns}  # fully hidden: no box
        for a in anns:
            rle = gt.annToRLE(a)
            assert coco_mask.toBbox(rle).tolist() == a["bbox"]
            assert int(coco_mask.area(rle)) == a["area"]
        names = {gt.loadCats(a["category_id"])[0]["name"] for a in anns
                 if a["attributes"]["name"].startswith("Apple")}
        assert names == {"apple"}  # duplicate Blender names keep their label's class
        pear = next(c for c in gt.loadCats(gt.getCatIds()) if c["name"] == "pear")
        assert pear["keypoints"] == ["stem"]
        pear_ann = next(a for a in anns if a["attributes"]["name"] == "Pear.001")
        assert len(pear_ann["keypoints"]) == 3 and pear_ann["keypoints"][2] == 2 and pear_ann["num_keypoints"] == 1
        apple_ann = next(a for a in anns if a["attributes"]["name"] == "Apple")
        assert apple_ann["keypoints"] == [0, 0, 0] and apple_ann["num_keypoints"] == 0
        detections = gt.loadRes([{**a, "score": 1.0} for a in anns])
        for kind in ("bbox", "segm", "keypoints"):  # keypoints over every category: a mixed dataset
            evaluation = COCOeval(gt, detections, kind)
            if kind == "keypoints":
                evaluation.params.kpt_oks_sigmas = np.array([0.05])
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            assert evaluation.stats[0] == pytest.approx(1.0)
    assert len(images) == len(set(images)) == 3


def test_coco_polygons_trace_pixel_corners(dataset):
    convert(dataset, ["coco-polygons"])
    for path in coco_files(dataset / "coco-polygons"):
        gt = COCO(str(path))
        for a in gt.loadAnns(gt.getAnnIds()):
            assert isinstance(a["segmentation"], list)  # these masks have no holes
            stem = gt.imgs[a["image_id"]]["synthfarm_stem"]
            native = json.loads((dataset / "annotations" / f"{stem}-ann.json").read_text())
            exact = rle_decode(next(o for o in native["objects"]
                                    if o["instance_id"] == a["attributes"]["instance_id"])["segmentation"])
            assert np.array_equal(gt.annToMask(a).astype(bool), exact)


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
        assert sorted([h, w, l]) == pytest.approx(sorted(obj["size"]), abs=0.001)
        centre = np.mean(obj["box3d"]["camera"], axis=0)
        assert (x, y, z) == pytest.approx(tuple(centre + [0, h / 2, 0]), abs=0.02)  # bottom centre, y down
        # the camera looks along world +y (azimuth -91..-89 degrees): the cubes' x axes are the camera's x
        assert abs(float(f[14])) < math.radians(1.5)
    calib = (dataset / "kitti" / "calib" / "0000000000-0000-cam.txt").read_text()
    P2 = np.array(calib.splitlines()[2].split()[1:], dtype=float).reshape(3, 4)
    assert np.allclose(P2[:, :3], ann["camera"]["K"], atol=1e-4)  # a level camera: R0_rect = I (to 1e-7)


def test_bop_scene_files(dataset):
    convert(dataset, ["bop"])
    scene = dataset / "bop" / "train_pbr" / "000000"
    gt = json.loads((scene / "scene_gt.json").read_text())["0"]
    info = json.loads((scene / "scene_gt_info.json").read_text())["0"]
    cam = json.loads((scene / "scene_camera.json").read_text())["0"]
    origin = json.loads((dataset / "bop" / "models" / "models_synthfarm.json").read_text())
    models_info = json.loads((dataset / "bop" / "models" / "models_info.json").read_text())
    ann = annotations(dataset)[0]
    visible = [o for o in ann["objects"] if o["visible_pixels"] > 0]
    assert len(gt) == len(info) == len(visible)
    K = np.array(cam["cam_K"]).reshape(3, 3)
    W, H = ann["image_size"]
    for i, (g, inf, obj) in enumerate(zip(gt, info, visible)):
        t = np.array(g["cam_t_m2c"]) / 1000
        assert np.allclose(t, obj["pose"]["t"])
        assert origin[str(g["obj_id"])] == {"class": obj["class"], "model": obj["model"]}
        visib = np.asarray(Image.open(scene / "mask_visib" / f"000000_{i:06d}.png")) > 0
        assert np.array_equal(visib, rle_decode(obj["segmentation"]))
        amodal = np.asarray(Image.open(scene / "mask" / f"000000_{i:06d}.png")) > 0
        assert amodal.sum() == obj["amodal_pixels"]
        # BOP's definitions: the whole silhouette, also beyond the border (the Edge apple is cut by it)
        assert inf["px_count_all"] == obj["amodal_pixels_all"] >= obj["amodal_pixels"]
        assert inf["visib_fract"] == pytest.approx(obj["visible_pixels"] / obj["amodal_pixels_all"])
        x, y, w, h = inf["bbox_obj"]
        if obj["name"] == "Edge":
            assert inf["px_count_all"] > 1.2 * obj["amodal_pixels"] and x + w >= W  # reaches past the border
        # the model, placed by cam_R_m2c and cam_t_m2c, covers exactly the amodal mask
        vertices, faces = read_model(dataset / "bop" / "models" / f"obj_{g['obj_id']:06d}.ply")
        R = np.array(g["cam_R_m2c"]).reshape(3, 3)
        cam_points = vertices @ R.T + np.array(g["cam_t_m2c"])
        pixels = cam_points @ K.T
        triangles = (pixels[:, :2] / pixels[:, 2:])[faces]
        placed = rasterize(triangles, W, H)
        assert (placed & amodal).sum() / (placed | amodal).sum() > 0.99
        size = np.array(obj["size"]) * 1000
        model = models_info[str(g["obj_id"])]
        assert [model["size_x"], model["size_y"], model["size_z"]] == pytest.approx(size.tolist(), rel=1e-4)
        assert model["diameter"] == pytest.approx(float(np.linalg.norm(size)), rel=1e-4)  # a cube's diagonal
    by_name = {o["name"]: g["obj_id"] for o, g in zip(visible, gt)}
    assert by_name["Apple"] == by_name["Apple.001"] != by_name["Edge"]  # one class, two sizes: two models
    assert len(models_info) == len(set(by_name.values()))
    depth = read_png(scene / "depth" / "000000.png").astype(float) * cam["depth_scale"] / 1000
    apple = rle_decode(visible[0]["segmentation"])
    assert np.all(depth[apple] > 2.0) and np.all(depth[apple] < 3.5)


def test_bop_without_the_models_falls_back_to_class_ids(dataset, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy, ignore=shutil.ignore_patterns("bop", "coco*", "yolo*", "voc", "kitti"))
    next((copy / "models").glob("*.ply")).unlink()  # as a dataset whose models/ was not copied
    assert convert(copy, ["bop"])["bop"]["models"] == 0
    gt = json.loads((copy / "bop" / "train_pbr" / "000000" / "scene_gt.json").read_text())["0"]
    visible = [o for o in annotations(copy)[0]["objects"] if o["visible_pixels"] > 0]
    assert [g["obj_id"] for g in gt] == [o["class_id"] for o in visible]
    assert not (copy / "bop" / "models").exists()


def test_kitti_boxes_are_exact_under_a_tilted_camera(tmp_path):
    """Upright objects seen from above: the box rebuilt from the label as KITTI's devkit does (P2, rotation_y)
    lands on the object's projected 3D box; an object turned off upright is counted and enclosed."""
    data = yaml.safe_load(TINY.read_text())
    data["generators"].append({"name": "tilted", "kind": "primitive", "shape": "cube", "size": [0.3, 0.15, 0.1],
                               "class": "tilted", "location": [-0.5, -0.2, 0.3]})
    data["randomizers"].insert(0, {"kind": "pose_in_volume", "targets": ["tilted"],
                                   "position": [-0.5, -0.2, 0.3], "rotation": "uniform"})
    recipe = recipe_from_data(data)
    synthfarm.render(recipe, jobs=2, out=tmp_path / "ds", progress=False)
    result = convert(tmp_path / "ds", ["kitti"])["kitti"]
    assert result["not_upright"] == 2  # the tilted cube, once per frame
    for label in sorted((tmp_path / "ds" / "kitti" / "label_2").glob("*.txt")):
        ann = json.loads((tmp_path / "ds" / "annotations" / f"{label.stem}-ann.json").read_text())
        calib = dict(line.split(": ") for line in (tmp_path / "ds" / "kitti" / "calib" / label.name).read_text()
                     .splitlines())
        P2 = np.array(calib["P2"].split(), dtype=float).reshape(3, 4)
        R0 = np.array(calib["R0_rect"].split(), dtype=float).reshape(3, 3)
        assert not np.allclose(R0, np.eye(3), atol=0.05)  # the camera looks down on the scene
        assert np.allclose(P2[:, :3] @ R0, ann["camera"]["K"], atol=1e-6)
        visible = [o for o in ann["objects"] if o["visible_pixels"] > 0]
        for line, obj in zip(label.read_text().splitlines(), visible):
            fields = line.split()
            assert all(len(v.split(".")[1]) == 3 for v in fields[1:] if "." in v)  # three decimals
            h, w, l, x, y, z, ry = map(float, fields[8:15])
            corners = kitti_box_corners(h, w, l, (x, y, z), ry)
            image = np.c_[corners, np.ones(8)] @ P2.T
            image = image[:, :2] / image[:, 2:]
            truth = np.array(obj["box3d"]["image"])
            nearest = np.linalg.norm(image[:, None] - truth[None], axis=-1).min(axis=1)
            if obj["class"] == "tilted":  # enclosed: every true corner inside the written box's projection
                assert truth.min(axis=0).tolist() >= (image.min(axis=0) - 0.05).tolist()
                assert truth.max(axis=0).tolist() <= (image.max(axis=0) + 0.05).tolist()
            else:
                assert nearest.max() < 0.1, (obj["name"], nearest)


def test_filters_and_class_map(dataset, tmp_path):
    class_map = ClassMap.model_validate({
        "classes": [{"id": 1, "name": "fruit", "supercategory": "food"}, {"id": 7, "name": "edge-apple"}],
        "rules": [{"match": {"name": "Edge*"}, "class": "edge-apple"}, {"match": {"label": ["apple", "pear"]},
                                                                          "class": "fruit"}]})
    convert(dataset, ["coco"], class_map=class_map, out=tmp_path)
    doc = coco_document(tmp_path / "coco")
    assert [c["id"] for c in doc["categories"]] == [1, 7]
    names = {a["attributes"]["name"]: a["category_id"] for a in doc["annotations"]}
    assert names["Edge"] == 7 and names["Pear.001"] == 1 and names["Apple.001"] == 1
    convert(dataset, ["coco"], out=tmp_path / "f", filters=Filters(drop_truncated=True, ignore_classes=frozenset({"pear"})))
    doc = coco_document(tmp_path / "f" / "coco")
    assert {a["attributes"]["name"] for a in doc["annotations"]} == {"Apple", "Apple.001"}
    convert(dataset, ["coco"], out=tmp_path / "v", filters=Filters(min_visibility=1.01 - 1e-9))
    assert coco_document(tmp_path / "v" / "coco")["annotations"] == []


def coco_document(root):
    """The split files of a COCO export as one document (annotations of every split)."""
    docs = [json.loads(p.read_text()) for p in coco_files(root)]
    return {"categories": docs[0]["categories"], "annotations": [a for d in docs for a in d["annotations"]]}
