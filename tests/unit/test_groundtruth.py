"""Labels from instance images and camera conventions, checked against pycocotools and by hand."""
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from synthfarm.addon.core.groundtruth import (bbox_of_mask, blender_to_opencv_camera, instances_from_mask, project,
                                              rle_decode, rle_encode, rle_encode_window)


def scene_mask():
    index = np.zeros((30, 40), np.int32)
    index[2:5, 3:9] = 1                      # a rectangle
    index[10:20, 10:12] = 2                  # an L-shape
    index[18:20, 10:18] = 2
    index[0:4, 35:40] = 3                    # touches the top and right borders
    index[29, 0] = 4                         # one pixel in the bottom-left corner
    return index


def test_boxes_pixels_and_rle():
    index = scene_mask()
    labels = instances_from_mask(index, [1, 2, 3, 4, 5])
    assert set(labels) == {1, 2, 3, 4}  # id 5 has no pixels: absent
    assert labels[1].bbox == [3, 2, 6, 3] and labels[1].pixels == 18
    assert labels[2].bbox == [10, 10, 8, 10] and labels[2].pixels == 20 + 12
    assert labels[3].bbox == [35, 0, 5, 4]
    assert labels[4].bbox == [0, 29, 1, 1] and labels[4].pixels == 1
    for iid, label in labels.items():
        assert np.array_equal(rle_decode(label.rle), index == iid)
        raw = {"size": label.rle["size"], "counts": label.rle["counts"].encode()}
        assert coco_mask.toBbox(raw).tolist() == label.bbox
        assert int(coco_mask.area(raw)) == label.pixels


def test_rle_helpers_and_empty_mask():
    mask = scene_mask() == 2
    assert np.array_equal(rle_decode(rle_encode(mask)), mask)
    assert bbox_of_mask(np.zeros((3, 3), bool)) is None
    assert instances_from_mask(np.zeros((4, 4), np.int32), []) == {}


def test_opencv_camera_from_a_blender_camera():
    # A Blender camera at (0, 0, 5) with identity rotation looks down -Z at the origin.
    matrix = np.eye(4)
    matrix[2, 3] = 5
    cam_to_world, world_to_cam = blender_to_opencv_camera(matrix)
    origin_in_cam = world_to_cam @ np.array([0, 0, 0, 1.0])
    assert origin_in_cam[:3] == pytest.approx([0, 0, 5])  # straight ahead, 5 m away
    assert np.allclose(cam_to_world @ world_to_cam, np.eye(4))
    K = np.array([[100, 0, 32], [0, 100, 24], [0, 0, 1.0]])
    up, centre = project(K, world_to_cam, np.array([[0, 1.0, 0], [0, 0, 0]]))
    assert centre == pytest.approx([32, 24]) and up[1] < 24  # world +Y is up in the image: a smaller row


def brute_force(index, ids):
    """The slow, obvious labels: one full-image comparison per id."""
    out = {}
    for iid in ids:
        mask = index == iid
        if mask.any():
            out[iid] = (int(mask.sum()), bbox_of_mask(mask), rle_encode(mask))
    return out


@pytest.mark.parametrize("ids, offset", [(range(1, 60), 0), (range(1, 400), 0), ([7, 40 + 60000], 60000)])
def test_instances_agree_with_brute_force(ids, offset):
    rng = np.random.default_rng(7)
    index = rng.integers(0, 12, size=(37, 53)).astype(np.int64)  # speckle: many runs per column
    index[5:30, 10:20] = 40
    index[:, -1] = 41                                               # the whole right column
    index = np.where(index > 0, index + offset, index)
    expected = brute_force(index, sorted(set(ids)))
    labels = instances_from_mask(index, ids)
    assert set(labels) == set(expected)
    for iid, (pixels, bbox, rle) in expected.items():
        assert (labels[iid].pixels, labels[iid].bbox, labels[iid].rle) == (pixels, bbox, rle)


@pytest.mark.parametrize("shape, order", [((1, 40), "C"), ((40, 1), "C"), ((23, 31), "F"), ((2, 2), "C")])
def test_instances_of_thin_and_column_major_images(shape, order):
    """Runs are found in the image's own layout: one row, one column, a column-major array."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        index = np.asarray(rng.integers(0, 4, size=shape), dtype=np.uint16, order=order)
        expected = brute_force(index, range(1, 4))
        labels = instances_from_mask(index, range(1, 4))
        assert {iid: (label.pixels, label.bbox, label.rle) for iid, label in labels.items()} == expected


def test_full_image_instance_and_input_checks():
    labels = instances_from_mask(np.full((4, 6), 9, np.uint16), [9, 3])
    assert list(labels) == [9] and labels[9].bbox == [0, 0, 6, 4] and labels[9].pixels == 24
    assert np.array_equal(rle_decode(labels[9].rle), np.ones((4, 6), bool))
    with pytest.raises(TypeError, match="integer"):
        instances_from_mask(np.zeros((4, 4), np.float32), [1])




def test_rle_of_a_window_is_the_rle_of_its_whole_mask():
    """rle_encode_window (the amodal mask, encoded without making a full image) equals rle_encode of the full
    mask: windows anywhere, empty, full, and as tall as the image (runs going on into the next column)."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        height, width = (int(v) for v in rng.integers(1, 30, 2))
        h, w = int(rng.integers(0, height + 1)), int(rng.integers(0, width + 1))
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        window = rng.random((h, w)) < rng.choice([0.0, 0.3, 0.9, 1.0])
        full = np.zeros((height, width), dtype=bool)
        full[top:top + h, left:left + w] = window
        assert rle_encode_window(np.asfortranarray(window), top, left, height, width) == rle_encode(full)


def _camera_and_images(seed: int, ids: int):
    """A random camera (K, world_to_cam) and random (48, 64) instance ids (0..ids-1) and depths; the generator too."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    world_to_cam = np.eye(4)
    world_to_cam[:3, :3], world_to_cam[:3, 3] = q * np.sign(np.linalg.det(q)), rng.normal(size=3)
    K = np.array([[41.3, 0, 32.1], [0, 40.7, 23.9], [0, 0, 1]])
    return rng, K, world_to_cam, rng.integers(0, ids, size=(48, 64)), rng.uniform(0.5, 12, size=(48, 64))


def _moved_alone(K, world_to_cam, point) -> tuple[float, float, float]:
    """A point's depth and pixel, moved and projected alone (one-row products)."""
    cam = np.asarray(point, float)[None] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    uvw = cam @ K.T
    x, y = (uvw[:, :2] / uvw[:, 2:3])[0]
    return float(cam[0, 2]), float(x), float(y)


def test_keypoints_are_those_of_each_point_moved_alone():
    """An object's keypoints are moved and projected in one call: each exactly as one point alone (numpy's one-row
    product), in front of the camera and behind it, in the image and outside it."""
    from synthfarm.addon.core.groundtruth import keypoint_labels

    rng, K, world_to_cam, index, depth = _camera_and_images(2, 3)
    index[:, :32], depth[:, :32] = 1, 1e3  # the object's surface far behind: its points there are seen
    points = {f"p{i}": (rng.normal(size=3) * 6).tolist() for i in range(60)}
    labels = keypoint_labels(K, world_to_cam, points, index, depth, 1)
    assert [label["name"] for label in labels] == sorted(points) and {label["v"] for label in labels} == {0, 1, 2}
    for label in labels:
        z, x, y = _moved_alone(K, world_to_cam, points[label["name"]])
        if label["v"]:
            assert (label["x"], label["y"]) == (x, y)
        else:
            assert z <= 0 or not (0 <= x < 64 and 0 <= y < 48)


def test_keypoints_of_many_objects_are_each_objects_alone():
    """The keypoints of a frame's objects are moved and projected in one call: each object's labels are those of its
    points alone (one point, several, each object its own instance id), to the bit."""
    from synthfarm.addon.core.groundtruth import keypoint_labels, keypoint_labels_many

    rng, K, world_to_cam, index, depth = _camera_and_images(6, 5)
    depth[:, :32] = 1e3  # surfaces far behind: the points there are seen where the id is the object's
    objects = [({f"p{i}": (rng.normal(size=3) * 6).tolist() for i in range(count)}, iid)
               for iid, count in zip((1, 2, 3, 4, 2), (1, 7, 30, 2, 12))]
    many = keypoint_labels_many(K, world_to_cam, objects, index, depth)
    assert len(many) == len(objects) and {label["v"] for labels in many for label in labels} == {0, 1, 2}
    for (points, iid), labels in zip(objects, many):
        alone = [keypoint_labels(K, world_to_cam, {name: point}, index, depth, iid)[0] for name, point in points.items()]
        assert labels == sorted(alone, key=lambda label: label["name"])
        for label in labels:
            if label["v"]:
                assert (label["x"], label["y"]) == _moved_alone(K, world_to_cam, points[label["name"]])[1:]

