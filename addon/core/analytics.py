"""Dataset statistics and plots, for notebooks and for ``synthfarm report``.

    >>> from synthfarm.addon.core import analytics
    >>> stats = analytics.collect(Path("out/toybox"))
    >>> analytics.plot_classes(stats).savefig("classes.png")

Every plot function takes the collected statistics and returns a matplotlib Figure (Agg backend: no
screen needed). ``write_report`` puts them, with a contact sheet of sample frames with their boxes and
masks drawn, into ``<dataset>/report/index.html`` (plain HTML and PNGs, no scripts, no network).
"""
from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .groundtruth import rle_decode


@dataclass
class DatasetStats:
    root: Path
    frames: int = 0
    classes: Counter = field(default_factory=Counter)
    objects_per_image: list[int] = field(default_factory=list)
    box_sizes: list[tuple[float, float]] = field(default_factory=list)  # visible boxes (w, h) in pixels
    visibility: list[float] = field(default_factory=list)
    brightness: list[float] = field(default_factory=list)  # mean luminance of each image, 0..1
    requested: dict[str, list] = field(default_factory=dict)  # parameter -> values of every job asked for
    realised: dict[str, list] = field(default_factory=dict)  # parameter -> values of the frames rendered
    stems: list[str] = field(default_factory=list)


def collect(root: Path) -> DatasetStats:
    root = Path(root)
    stats = DatasetStats(root)
    jobs_file = root / "jobs.jsonl"
    if jobs_file.is_file():
        latest = {}
        for line in jobs_file.read_text().splitlines():
            try:
                record = json.loads(line)
                latest[record["id"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        for record in latest.values():
            for name, value in (record.get("parameters") or {}).items():
                stats.requested.setdefault(name, []).append(value)
    for ann_path in sorted((root / "annotations").glob("*-ann.json")):
        stem = ann_path.name.removesuffix("-ann.json")
        ann = json.loads(ann_path.read_text())
        stats.frames += 1
        stats.stems.append(stem)
        seen = [o for o in ann["objects"] if o.get("visible_pixels", 0) > 0]
        stats.objects_per_image.append(len(seen))
        for obj in seen:
            stats.classes[obj["class"]] += 1
            stats.box_sizes.append((obj["bbox"][2], obj["bbox"][3]))
            stats.visibility.append(obj.get("visibility", 1.0))
        meta_path = root / "metadata" / f"{stem}-meta.json"
        if meta_path.is_file():
            for name, value in json.loads(meta_path.read_text()).get("params", {}).items():
                stats.realised.setdefault(name, []).append(value)
        image = root / "images" / f"{stem}.png"
        if image.is_file():
            with Image.open(image) as im:
                stats.brightness.append(float(np.asarray(im.convert("L"), dtype=np.float32).mean() / 255.0))
    return stats


def _figure(title: str, xlabel: str, ylabel: str = "count"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.set_layout_engine("tight")
    return fig, ax


def plot_classes(stats: DatasetStats):
    fig, ax = _figure("Objects per class (visible)", "class")
    names = sorted(stats.classes, key=lambda c: -stats.classes[c])
    ax.bar(names, [stats.classes[n] for n in names], color="#4477aa")
    ax.tick_params(axis="x", rotation=45)
    return fig


def plot_objects_per_image(stats: DatasetStats):
    fig, ax = _figure("Visible objects per image", "objects")
    if stats.objects_per_image:
        ax.hist(stats.objects_per_image, bins=range(0, max(stats.objects_per_image) + 2), color="#66ccee")
    return fig


def plot_box_sizes(stats: DatasetStats):
    fig, ax = _figure("Visible box size", "sqrt(area) in pixels")
    sizes = np.sqrt([w * h for w, h in stats.box_sizes]) if stats.box_sizes else []
    ax.hist(sizes, bins=30, color="#228833")
    return fig


def plot_box_aspects(stats: DatasetStats):
    fig, ax = _figure("Visible box aspect", "log2(width / height)")
    aspects = np.log2([w / h for w, h in stats.box_sizes]) if stats.box_sizes else []
    ax.hist(aspects, bins=30, color="#ccbb44")
    return fig


def plot_visibility(stats: DatasetStats):
    fig, ax = _figure("Visibility of objects", "visible fraction")
    ax.hist(stats.visibility, bins=20, range=(0, 1), color="#ee6677")
    return fig


def plot_brightness(stats: DatasetStats):
    fig, ax = _figure("Image brightness", "mean luminance")
    ax.hist(stats.brightness, bins=20, range=(0, 1), color="#aa3377")
    return fig


def plot_parameter(stats: DatasetStats, name: str):
    fig, ax = _figure(f"Parameter {name}: requested vs realised", name)
    requested, realised = stats.requested.get(name, []), stats.realised.get(name, [])
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in requested + realised):
        bins = np.histogram_bin_edges(requested + realised or [0], bins=20)
        ax.hist(requested, bins=bins, alpha=0.6, label=f"requested ({len(requested)} jobs)", color="#4477aa")
        ax.hist(realised, bins=bins, alpha=0.6, label=f"realised ({len(realised)} frames)", color="#ee6677")
    else:
        labels = sorted({str(v) for v in requested + realised})
        x = np.arange(len(labels))
        ax.bar(x - 0.2, [sum(str(v) == lab for v in requested) for lab in labels], 0.4, label="requested")
        ax.bar(x + 0.2, [sum(str(v) == lab for v in realised) for lab in labels], 0.4, label="realised")
        ax.set_xticks(x, labels)
    ax.legend()
    return fig


def contact_sheet(stats: DatasetStats, count: int = 12, columns: int = 4, width: int = 320) -> Image.Image:
    """Sample frames with their visible masks tinted and boxes drawn, in a grid."""
    picks = stats.stems[:: max(1, len(stats.stems) // count)][:count]
    tiles = []
    for stem in picks:
        tile = annotated_frame(stats.root, stem)
        scale = width / tile.width
        tiles.append(tile.resize((width, round(tile.height * scale))))
    if not tiles:
        return Image.new("RGB", (width, width // 2), (40, 40, 40))
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * width, rows * tiles[0].height), (30, 30, 30))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * width, (i // columns) * tiles[0].height))
    return sheet


def annotated_frame(root: Path, stem: str) -> Image.Image:
    """A frame's image with each object's visible mask tinted and its box and class drawn."""
    with Image.open(Path(root) / "images" / f"{stem}.png") as im:
        image = im.convert("RGB")
    ann = json.loads((Path(root) / "annotations" / f"{stem}-ann.json").read_text())
    overlay = np.asarray(image, dtype=np.float32)
    boxes = []
    for i, obj in enumerate(o for o in ann["objects"] if o.get("segmentation")):
        colour = np.array(_palette(i), dtype=np.float32)
        mask = rle_decode(obj["segmentation"])
        overlay[mask] = 0.55 * overlay[mask] + 0.45 * colour
        boxes.append((obj["bbox"], tuple(int(c) for c in colour), obj["class"]))
    frame = Image.fromarray(overlay.astype(np.uint8))
    pen = ImageDraw.Draw(frame)
    for (x, y, w, h), colour, name in boxes:
        pen.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=2)
        pen.text((x + 2, y + 1), name, fill=colour)
    return frame


def _palette(i: int) -> tuple[int, int, int]:
    colours = [(68, 119, 170), (238, 102, 119), (34, 136, 51), (204, 187, 68), (102, 204, 238), (170, 51, 119)]
    return colours[i % len(colours)]


SECTIONS = ("summary", "parameters", "classes", "objects", "boxes", "visibility", "brightness", "samples")


def write_report(root: Path, out: Path | None = None) -> Path:
    """Write the report (index.html and its PNGs) and return the HTML's path."""
    stats = collect(root)
    out = Path(out or Path(root) / "report")
    out.mkdir(parents=True, exist_ok=True)

    def save(fig, name):
        fig.savefig(out / name)
        import matplotlib.pyplot as plt

        plt.close(fig)
        return f'<img src="{name}" alt="{html.escape(name)}">'

    params = "".join(save(plot_parameter(stats, n), f"param-{n}.png") for n in sorted(stats.requested))
    contact_sheet(stats).save(out / "samples.png")
    blocks = {
        "summary": f"<p>{stats.frames} frames, {sum(stats.classes.values())} visible objects, "
                   f"{len(stats.classes)} classes, from <code>{html.escape(str(Path(root).resolve()))}</code>.</p>",
        "parameters": params or "<p>This dataset's recipe declares no parameters.</p>",
        "classes": save(plot_classes(stats), "classes.png"),
        "objects": save(plot_objects_per_image(stats), "objects.png"),
        "boxes": save(plot_box_sizes(stats), "box-sizes.png") + save(plot_box_aspects(stats), "box-aspects.png"),
        "visibility": save(plot_visibility(stats), "visibility.png"),
        "brightness": save(plot_brightness(stats), "brightness.png"),
        "samples": '<img src="samples.png" alt="sample frames with boxes and masks">',
    }
    titles = {"summary": "Summary", "parameters": "Parameters: requested vs realised", "classes": "Class counts",
              "objects": "Objects per image", "boxes": "Box sizes and aspects", "visibility": "Visibility",
              "brightness": "Brightness", "samples": "Samples with boxes and masks"}
    body = "".join(f'<section id="{key}"><h2>{titles[key]}</h2>{blocks[key]}</section>' for key in SECTIONS)
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>synthfarm report: "
            f"{html.escape(Path(root).name)}</title><style>body{{font-family:sans-serif;margin:2em;background:#fafafa}}"
            f"img{{max-width:100%;margin:0.5em}}section{{margin-bottom:2em}}</style></head><body>"
            f"<h1>Dataset report: {html.escape(Path(root).name)}</h1>{body}</body></html>")
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"
