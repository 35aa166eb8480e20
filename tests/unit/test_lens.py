"""The lens models against OpenCV: projectPoints, fisheye.projectPoints, undistortPoints and
initUndistortRectifyMap, within 0.5 px (they agree far closer)."""
import cv2
import numpy as np
import pytest

from synthfarm.addon.core.lens import Lens, LensError, render_view

W, H = 640, 480
K = np.array([[500.0, 0, 330.0], [0, 500.0, 236.0], [0, 0, 1]])  # principal point off centre
K_CV = K - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])  # OpenCV puts pixel centres on integers
BROWN = (-0.28, 0.09, 0.001, -0.0008, -0.012)
FISHEYE = (0.05, -0.01, 0.003, -0.0005)


def _points(n=2000, seed=1, spread=0.6):
    rng = np.random.default_rng(seed)
    p = np.c_[rng.uniform(-spread, spread, (n, 2)), np.ones(n)] * rng.uniform(0.5, 5.0, (n, 1))
    return p


def test_brown_conrady_matches_projectPoints():
    lens = Lens(K, (W, H), "brown_conrady", BROWN)
    points = _points()
    ours, valid = lens.project(points)
    theirs, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K_CV, np.array(BROWN))
    assert valid.all()
    assert np.abs(ours - 0.5 - theirs.reshape(-1, 2)).max() < 1e-6


def test_fisheye_matches_fisheye_projectPoints():
    lens = Lens(K, (W, H), "fisheye", FISHEYE)
    points = _points(spread=1.5)
    ours, valid = lens.project(points)
    theirs, _ = cv2.fisheye.projectPoints(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K_CV, np.array(FISHEYE))
    assert valid.all()
    assert np.abs(ours - 0.5 - theirs.reshape(-1, 2)).max() < 1e-6


def test_pinhole_is_K():
    lens = Lens(K, (W, H))
    points = _points()
    ours, valid = lens.project(points)
    assert valid.all() and not lens.distorted
    assert np.allclose(ours, (points @ K.T)[:, :2] / points[:, 2:3])
    assert render_view(lens).identity


@pytest.mark.parametrize("model,coeffs", [("brown_conrady", BROWN), ("fisheye", FISHEYE)])
def test_undistort_inverts_distort_and_matches_undistortPoints(model, coeffs):
    lens = Lens(K, (W, H), model, coeffs)
    uv = lens.pixel_centres()[::7, ::7].reshape(-1, 2)
    xy, valid = lens.undistort(lens.from_pixels(uv))
    assert valid.all()
    back, ok = lens.project(np.c_[xy, np.ones(len(xy))])
    assert ok.all() and np.abs(back - uv).max() < 1e-6
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    src = (uv - 0.5).reshape(-1, 1, 2)
    if model == "fisheye":
        theirs = cv2.fisheye.undistortPoints(src, K_CV, np.array(coeffs), criteria=criteria)
    elif hasattr(cv2, "undistortPointsIter"):  # OpenCV 4
        theirs = cv2.undistortPointsIter(src, K_CV, np.array(coeffs), None, None, criteria)
    else:  # OpenCV 5 takes the criteria in undistortPoints
        theirs = cv2.undistortPoints(src, K_CV, np.array(coeffs), criteria=criteria)
    theirs = theirs.reshape(-1, 2)
    # compare in pixels of the pinhole image
    assert np.abs((xy - theirs) * K[0, 0]).max() < 0.5


@pytest.mark.parametrize("model,coeffs", [("brown_conrady", BROWN), ("fisheye", FISHEYE)])
def test_remap_maps_agree_with_initUndistortRectifyMap(model, coeffs):
    """OpenCV's map sends each pixel of a pinhole image P to the distorted image; ours sends each
    distorted pixel to the pinhole render. Sampling OpenCV's map at our positions returns the pixel."""
    lens = Lens(K, (W, H), model, coeffs)
    view = render_view(lens)
    source = view.source
    Kr_cv = source.K.copy()
    Kr_cv[:2, 2] -= 0.5
    Wr, Hr = source.size
    init = cv2.initUndistortRectifyMap if model == "brown_conrady" else cv2.fisheye.initUndistortRectifyMap
    map_x, map_y = init(K_CV, np.array(coeffs), np.eye(3), Kr_cv, (Wr, Hr), cv2.CV_32FC1)
    # our map at output pixel centre (c+.5, r+.5) is a render position p; OpenCV's map at p gives back (c, r)
    rows, cols = np.mgrid[0:H:5, 0:W:5]
    px, py = view.map_x[rows, cols] - 0.5, view.map_y[rows, cols] - 0.5
    back_x = cv2.remap(map_x, px.astype(np.float32), py.astype(np.float32), cv2.INTER_LINEAR)
    back_y = cv2.remap(map_y, px.astype(np.float32), py.astype(np.float32), cv2.INTER_LINEAR)
    assert np.abs(back_x - cols).max() < 0.5 and np.abs(back_y - rows).max() < 0.5
    # the render covers the whole distorted image
    assert (view.rows >= 0).all() and view.covered().any()


def test_nearest_remap_never_blends_ids():
    lens = Lens(K, (W, H), "brown_conrady", BROWN)
    view = render_view(lens)
    Wr, Hr = view.source.size
    ids = np.random.default_rng(0).integers(0, 7, (Hr, Wr)).astype(np.int32) * 3
    out = view.nearest(ids)
    assert out.shape == (H, W) and set(np.unique(out)) <= set(np.unique(ids))
    # a point's pixel in the distorted image takes the id the render has at the same point
    point = np.array([[0.2, -0.1, 1.0]])
    uv, _ = lens.project(point)
    uvr, _ = view.source.project(point)
    assert out[int(uv[0, 1]), int(uv[0, 0])] == ids[int(uvr[0, 1]), int(uvr[0, 0])]
    yy, xx = np.mgrid[0:Hr, 0:Wr]
    rgb = np.stack([xx * 255 / Wr, yy * 255 / Hr, 128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 7.0)], -1).astype(np.uint8)
    ours, theirs = view.linear_numpy(rgb), view.linear(rgb)  # numpy (inside Blender) and OpenCV's remap
    assert ours.shape == (H, W, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs).max() <= 2  # up to OpenCV's 1/32-pixel fixed-point weights


def test_points_past_the_fold_are_invalid_not_folded_into_the_image():
    lens = Lens(K, (W, H), "brown_conrady", (-0.5, 0.0, 0.0, 0.0, 0.0))  # r*(1-0.5 r^2) turns at r = 0.816
    uv, valid = lens.project(np.array([[0.5, 0, 1.0], [2.0, 0, 1.0]]))
    assert valid.tolist() == [True, False]


def test_lens_too_wide_for_a_pinhole_render_is_refused():
    lens = Lens(np.array([[150.0, 0, 320], [0, 150.0, 240], [0, 0, 1]]), (W, H), "fisheye", (0, 0, 0, 0))
    with pytest.raises(LensError, match="field of view"):
        render_view(lens)


def test_record_gives_opencv_forms():
    lens = Lens(K, (W, H), "brown_conrady", BROWN)
    rec = lens.record()
    assert rec["coefficients"]["p1"] == BROWN[2] and rec["opencv"]["D"] == list(BROWN)
    assert rec["opencv"]["K"][0][2] == K[0, 2] - 0.5


def test_keypoints_and_box_corners_go_through_the_lens():
    from synthfarm.addon.core.groundtruth import geometry_labels, keypoint_labels

    lens = Lens(K, (W, H), "fisheye", FISHEYE)
    view = render_view(lens)
    world_to_cam = np.eye(4)
    point = [0.4, -0.3, 2.0]
    index = np.zeros((H, W), np.int32)
    depth = np.full((H, W), np.inf, np.float32)
    (u, v), _ = (a[0] for a in lens.project(np.array([point])))
    index[int(v), int(u)], depth[int(v), int(u)] = 3, 2.0
    kp = keypoint_labels(K, world_to_cam, {"tip": point}, index, depth, 3, lens=lens)[0]
    theirs, _ = cv2.fisheye.projectPoints(np.array([[point]]), np.zeros(3), np.zeros(3), K_CV, np.array(FISHEYE))
    assert kp["v"] == 2 and abs(kp["x"] - 0.5 - theirs[0, 0, 0]) < 1e-6 and abs(kp["y"] - 0.5 - theirs[0, 0, 1]) < 1e-6
    # a small cube in front of the camera: its box corners are the lens's, its amodal box holds them
    cube = np.array([[x, y, z] for x in (-0.1, 0.1) for y in (-0.1, 0.1) for z in (1.9, 2.1)])
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6), (0, 2, 6),
             (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    matrix = np.eye(4)
    matrix[:3, 3] = [0.3, 0.2, 0]
    tris = (cube + matrix[:3, 3])[np.array(faces)]
    labels = geometry_labels(K, world_to_cam, (W, H), tris, matrix, cube.min(axis=0), cube.max(axis=0), view=view)
    corners, _ = lens.project(np.array(labels["box3d"]["camera"]))
    assert np.allclose(labels["box3d"]["image"], corners)
    x, y, w, h = labels["amodal_bbox"]
    assert labels["amodal_pixels"] > 0 and labels["truncation"] == 0.0
    assert (corners[:, 0] >= x - 1e-6).all() and (corners[:, 0] <= x + w + 1e-6).all()
