"""``synthfarm report``: the statistics and sample frames of a dataset as one HTML page with its PNGs
(plain HTML, no scripts, no network), in ``<dataset>/report/``."""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from . import plots
from .overlay import ALL_LAYERS, DEFAULT_LAYERS, Layers, pick_stems, preview_grid
from .stats import DatasetStats, collect

SECTIONS = ("summary", "parameters", "classes", "per-class", "objects", "boxes", "box-centres", "visibility",
            "truncation", "distance", "depth", "viewpoints", "randomizers", "brightness", "samples", "overlays")
TITLES = {"summary": "Summary", "parameters": "Parameters: requested vs realised", "classes": "Class counts",
          "per-class": "Per class", "objects": "Objects per image", "boxes": "Box sizes and aspects",
          "box-centres": "Box centres (heatmap)", "visibility": "Visibility", "truncation": "Truncation",
          "distance": "Distance", "depth": "Depth", "viewpoints": "Camera viewpoint coverage",
          "randomizers": "What each randomizer drew", "brightness": "Brightness",
          "samples": "Samples with masks and boxes", "overlays": "Amodal boxes, 3D boxes and keypoints"}
STYLE = ("body{font-family:sans-serif;margin:2em;background:#fafafa;color:#222}img{max-width:100%;margin:.5em}"
         "section{margin-bottom:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;"
         "text-align:right}th{background:#eee}td:first-child{text-align:left}p.note{color:#555}")


def write_report(root: Path, out: Path | None = None, samples: int = 12) -> Path:
    """Write the report (index.html and its PNGs) and return the HTML's path. Raises DatasetError for a
    folder that holds no dataset or no finished frame."""
    from ..dataset.native import require_dataset

    require_dataset(Path(root))
    stats = collect(root)
    out = Path(out or Path(root) / "report")
    out.mkdir(parents=True, exist_ok=True)

    def save(fig, name):
        fig.savefig(out / name)
        plots.pyplot().close(fig)
        return f'<img src="{name}" alt="{html.escape(name)}">'

    blocks = {
        "summary": summary(stats, root),
        "parameters": "".join(save(plots.plot_parameter(stats, n), f"param-{slug(n)}.png")
                              for n in sorted(stats.requested)) or "<p>This dataset's recipe declares no parameters.</p>",
        "classes": save(plots.plot_classes(stats), "classes.png"),
        "per-class": class_table(stats) + save(plots.plot_per_class(stats), "per-class.png"),
        "objects": save(plots.plot_objects_per_image(stats), "objects.png"),
        "boxes": save(plots.plot_box_sizes(stats), "box-sizes.png") + save(plots.plot_box_aspects(stats),
                                                                            "box-aspects.png"),
        "box-centres": save(plots.plot_box_centres(stats), "box-centres.png"),
        "visibility": save(plots.plot_visibility(stats), "visibility.png"),
        "truncation": save(plots.plot_truncation(stats), "truncation.png"),
        "distance": save(plots.plot_distance(stats), "distance.png"),
        "depth": save(plots.plot_depth(stats), "depth.png"),
        "viewpoints": save(plots.plot_viewpoints(stats), "viewpoints.png"),
        "randomizers": "".join(save(plots.plot_draws(stats, c), f"draws-{slug(c)}.png") for c in sorted(stats.draws))
                       or "<p>No randomizer or modifier drew a value.</p>",
        "brightness": save(plots.plot_brightness(stats), "brightness.png"),
        "samples": sample_sheet(stats, out / "samples.png", samples),
        "overlays": "<p class='note'>Solid: visible box; dashed: amodal box (the whole object, occluded parts "
                    "included); thin wireframe: 3D box; dots: keypoints (filled visible, ring hidden).</p>"
                    + sample_sheet(stats, out / "overlays.png", min(4, samples), ALL_LAYERS),
    }
    body = "".join(f'<section id="{key}"><h2>{TITLES[key]}</h2>{blocks[key]}</section>' for key in SECTIONS)
    name = html.escape(Path(root).resolve().name)
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>synthfarm report: {name}</title>"
            f"<style>{STYLE}</style></head><body><h1>Dataset report: {name}</h1>{body}</body></html>")
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def summary(stats: DatasetStats, root: Path) -> str:
    return (f"<p>{stats.frames} frames, {len(stats.object_rows)} visible objects, {len(stats.classes)} classes, "
            f"{stats.jobs} jobs requested, from "
            f"<code>{html.escape(str(Path(root).resolve()))}</code>.</p>")


def class_table(stats: DatasetStats) -> str:
    rows = []
    for name in sorted(stats.classes, key=lambda c: (-stats.classes[c], c)):
        objs = [r for r in stats.object_rows if r["class"] == name]

        def mean(key, objs=objs):
            values = [r[key] for r in objs if r.get(key) is not None]
            return f"{np.mean(values):.2f}" if values else "-"

        size = np.median([np.sqrt(r["box_w"] * r["box_h"]) for r in objs])
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{len(objs)}</td><td>{len({r['stem'] for r in objs})}</td>"
                    f"<td>{mean('visibility')}</td><td>{mean('truncation')}</td><td>{size:.1f}</td>"
                    f"<td>{mean('distance')}</td></tr>")
    head = ("<tr><th>class</th><th>objects</th><th>images</th><th>mean visibility</th><th>mean truncation</th>"
            "<th>median box size (px)</th><th>mean distance (m)</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def sample_sheet(stats: DatasetStats, path: Path, count: int, layers: Layers = DEFAULT_LAYERS) -> str:
    preview_grid(stats.root, pick_stems(stats.stems, count), layers=layers).save(path)
    return f'<img src="{path.name}" alt="sample frames with their labels drawn">'
