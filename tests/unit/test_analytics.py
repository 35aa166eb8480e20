"""Dataset statistics, plots and label overlays, on a small dataset written here with known labels."""
import numpy as np
import pytest
from PIL import Image

from synthfarm.addon.core import analytics
from synthfarm.addon.core.analytics.overlay import class_colour
from synthfarm.addon.core.analytics.stats import viewpoint
from synthfarm.addon.core.dataset.native import DatasetWriter
from synthfarm.addon.core.groundtruth import rle_encode

GREY = (128, 128, 128)
W, H = 80, 60


def box_mask(x0, y0, x1, y1, hole=None):
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    if hole:
        mask[hole[1]:hole[3], hole[0]:hole[2]] = False
    return mask


def obj(name, cls, mask, **extra):
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    return {"name": name, "class": cls, "visible_pixels": int(mask.sum()), "bbox": bbox,
            "segmentation": rle_encode(mask), "visibility": extra.pop("visibility", 1.0), "truncation": 0.0,
            "distance": extra.pop("distance", 2.0), "pose": {"R": np.eye(3).tolist(), "t": [0, 0, 1.5]}, **extra}


@pytest.fixture
def dataset(tmp_path):
    """Three frames of a bin (class container) holding toys (class toy), toys with keypoints, amodal and 3D
    boxes; job 0 twice asked with a value the job record keeps, parameters n (int) and kind (choice)."""
    root = tmp_path / "ds"
    writer = DatasetWriter(root)
    writer.open("name: t\n", {"recipe_hash": "h"}, {"name": "t"})
    toys = {0: 1, 1: 2, 2: 2}
    for job, count in toys.items():
        png = tmp_path / f"{job}.png"
        Image.new("RGB", (W, H), GREY).save(png)
        objects = [obj("bin", "container", box_mask(10, 10, 70, 50, hole=(20, 20, 60, 45)))]
        for i in range(count):
            x = 30 + 12 * i
            objects.append(obj(f"toy{i}", "toy", box_mask(x, 25, x + 10, 35), visibility=0.5 + 0.25 * i,
                               amodal_bbox=[x - 2, 23, 14, 14],
                               keypoints=[{"name": "a", "x": x + 2.5, "y": 27.5, "v": 2},
                                          {"name": "b", "x": x + 8.5, "y": 33.5, "v": 1},
                                          {"name": "c", "x": 0.0, "y": 0.0, "v": 0}],
                               box3d={"image": [[x, 25], [x, 20], [x + 6, 20], [x + 6, 25],
                                                [x + 4, 35], [x + 4, 30], [x + 10, 30], [x + 10, 35]]}))
        look_down = [[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 3.0], [0, 0, 0, 1]]  # OpenCV camera looking down
        writer.write_frame(job, 0, "cam", image_png=png, annotation={
            "job": job, "frame": 0, "sensor": "cam", "image_size": [W, H], "objects": objects}, metadata={
            "seed": job, "params": {"n": count, "kind": "a" if job else "b"},
            "camera": {"cam_to_world": look_down},
            "sampled": {"randomizers/lights": {"energy": {"l0": 10.0 * (job + 1)}, "type": {"l0": "SUN"}},
                        "generators/bin": {"count": 1}}})
        writer.record_job(job, {"n": count, "kind": "a" if job else "b"}, job, "done")
    writer.record_job(3, {"n": 3, "kind": "a"}, 3, "failed")  # asked for, never rendered
    return root


def test_collect_rows_viewpoints_and_draws(dataset):
    stats = analytics.collect(dataset)
    assert stats.frames == 3 and stats.classes == {"container": 3, "toy": 5}
    assert stats.requested == {"n": [1, 2, 2, 3], "kind": ["b", "a", "a", "a"]}
    assert stats.realised["n"] == [1, 2, 2]
    row = stats.frame_rows[1]
    assert row["objects"] == 3 and row["coverage"] == pytest.approx((60 * 40 - 40 * 25 + 2 * 100) / (W * H))
    assert row["cam_elevation"] == pytest.approx(90) and row["cam_height"] == 3.0
    assert stats.draws == {"randomizers/lights": {"energy": [10.0, 20.0, 30.0], "type": ["SUN"] * 3}}
    assert sorted(stats.column("depth")) == [1.5] * 8


def test_viewpoint_of_a_level_camera_looking_along_y():
    # camera axes in world: x right = world x, y down = world -z, z forward = world +y
    cam_to_world = [[1, 0, 0, 0], [0, 0, 1, -2], [0, -1, 0, 1], [0, 0, 0, 1]]
    view = viewpoint(cam_to_world)
    assert view["cam_azimuth"] == pytest.approx(-90) and view["cam_elevation"] == pytest.approx(0)


def test_counts_are_drawn_on_integer_axes(dataset):
    stats = analytics.collect(dataset)
    for fig in (analytics.plot_objects_per_image(stats), analytics.plot_classes(stats),
                analytics.plot_parameter(stats, "n"), analytics.plot_visibility(stats)):
        ticks = fig.axes[0].get_yticks()
        assert all(float(t).is_integer() for t in ticks), ticks
    fig = analytics.plot_parameter(stats, "n")  # int parameter: integer bins and integer x ticks
    assert list(fig.axes[0].get_xticks()) == [1, 2, 3]


def test_requested_and_realised_are_told_apart(dataset):
    stats = analytics.collect(dataset)
    ax = analytics.plot_parameter(stats, "n").axes[0]
    from matplotlib.patches import Polygon, Rectangle

    bars = [p for p in ax.patches if isinstance(p, Rectangle)]  # requested: filled bars
    steps = [p for p in ax.patches if isinstance(p, Polygon)]  # realised: a dashed outline of another colour
    assert len(bars) == 3 and all(b.get_fill() for b in bars) and [b.get_height() for b in bars] == [1, 2, 1]
    assert len(steps) == 1 and not steps[0].get_fill() and steps[0].get_linestyle()[1]  # a dash pattern
    assert bars[0].get_facecolor()[:3] != steps[0].get_edgecolor()[:3]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["requested (4 jobs)", "realised (3 frames)"]
    bars = analytics.plot_parameter(stats, "kind").axes[0]  # choices: grouped bars, one hatched
    assert {p.get_hatch() for p in bars.containers[1].patches} == {"//"}
    assert [p.get_height() for p in bars.containers[0].patches] == [3, 1]  # a: jobs 1, 2, 3; b: job 0


def test_overlay_outlines_a_container_and_draws_each_layer(dataset):
    stem, classes = "0000000002-0000-cam", ["container", "toy"]
    Layers = analytics.Layers

    def draw(**layers):
        return np.asarray(analytics.annotated_frame(dataset, stem, classes=classes, layers=Layers(**layers)))

    toy = np.array(class_colour("toy", classes))
    masks = draw(boxes=False, labels=False, keypoints=False)
    assert tuple(masks[45, 15]) == GREY  # inside the bin's mask: its colours kept (only outlined)
    assert tuple(masks[10, 40]) != GREY  # the bin's outline
    inside_toy = masks[31, 35].astype(int)  # a toy: lightly filled with its class colour
    assert np.abs(inside_toy - (0.65 * np.array(GREY) + 0.35 * toy)).max() <= 1
    points = draw(boxes=False, labels=False)
    assert np.array_equal(points[27, 32], toy)  # a visible keypoint: a dot of the class colour
    assert np.array_equal(points[33, 38], masks[33, 38])  # a hidden one: a ring, its centre left as it was
    assert not np.array_equal(points[30, 38], masks[30, 38])  # ... the ring
    amodal = draw(boxes=False, labels=False, keypoints=False, amodal=True)
    top = amodal[23, 28:42]  # the amodal boxes' top edges, dashed: some pixels drawn, some not
    assert 0 < sum(np.array_equal(p, toy) for p in top) < len(top)
    wire = draw(boxes=False, labels=False, keypoints=False, box3d=True)
    assert np.array_equal(wire[20, 33], toy)  # an edge of the 3D box ([x, 20] to [x + 6, 20])
    plain = draw(labels=False)  # the default: no amodal and no 3D boxes
    assert tuple(plain[23, 28]) == GREY and tuple(plain[20, 33]) == GREY
    boxes = draw(masks=False, keypoints=False)
    assert np.array_equal(boxes[25, 30], toy) and np.array_equal(boxes[34, 39], toy)  # a visible box, 2 px wide
    assert np.array_equal(boxes[24, 31], toy)  # its class tag, above it


def test_preview_grid_is_scaled_before_drawing(dataset):
    grid = analytics.view_previews(dataset, count=2, columns=2, width=240)
    assert grid.size == (2 * 244, 180 + 20 + 4)
    tile = np.asarray(grid)[:180, :240]
    assert (np.abs(tile.astype(int) - GREY).sum(axis=2) > 0).mean() > 0.05  # labels drawn at tile size


def test_visualize_job_params_stratified(dataset):
    jobs = [{"n": n, "kind": k, "seed": i} for i, (n, k) in enumerate([(1, "a"), (2, "a"), (5, "b"), (3, "b")])]
    fig = analytics.visualize_job_params(jobs, stratify="kind")
    assert [ax.get_title() for ax in fig.axes if ax.axison] == ["n"]  # seed and the stratifier are not panels
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["= a", "= b"]
    whole = analytics.visualize_job_params(jobs)
    assert [ax.get_title() for ax in whole.axes if ax.axison] == ["n", "kind"]
    with pytest.raises(KeyError, match="stratify='colour'.*\\['n', 'kind'\\]"):
        analytics.visualize_job_params(jobs, stratify="colour")
    many = [{"x": float(i)} for i in range(20)]
    labels = [t.get_text() for t in analytics.visualize_job_params(many + [{"x": 1.0, "y": 2}], stratify="x")
              .axes[0].get_legend().get_texts()]
    assert len(labels) == 4 and labels[0].startswith("0..")  # numbers in quantile groups


def test_results_dataframe_joins_parameters_and_frame_metrics(dataset):
    frame = analytics.summarize_batch_results_as_dataframe(dataset)
    assert list(frame["job_id"]) == [0, 1, 2] and list(frame["n"]) == [1, 2, 2]
    assert list(frame["objects_toy"]) == [1, 2, 2] and list(frame["objects_container"]) == [1, 1, 1]
    assert list(frame["mean_visibility"]) == [0.75] * 3 and list(frame["min_visibility"]) == [0.5] * 3
    assert set(frame["status"]) == {"done"} and frame["cam_elevation"].round(6).tolist() == [90.0] * 3
    fig = analytics.visualize_batch_results(dataset)
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert titles[:2] == ["kind: requested vs realised", "n: requested vs realised"]
    assert len(titles) == 5


def test_report_writes_every_section(dataset):
    page = analytics.write_report(dataset).read_text()
    for key in analytics.SECTIONS:
        assert f'<section id="{key}">' in page
    assert "draws-randomizers-lights.png" in page and "generators" not in page
    assert "<td>toy</td><td>5</td><td>3</td><td>0.60</td>" in page  # per class: objects, images, visibility
