"""Plots of a dataset's statistics: each function returns a matplotlib Figure (Agg backend, no screen).

Counts are drawn on integer axes; several distributions on one axis (requested against realised, or one
per stratum) are told apart by colour, fill and line style, not by blending.
"""
from __future__ import annotations

import sys

import numpy as np

from .stats import DatasetStats

COLOURS = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000"]
LINESTYLES = ["-", "--", ":", "-."]


def pyplot():
    """matplotlib.pyplot on the Agg backend (no screen), except in a notebook's kernel: there its own
    backend shows the figures inline."""
    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(title: str, xlabel: str, ylabel: str = "count", *, size=(6.4, 3.8)):
    fig, ax = pyplot().subplots(figsize=size, dpi=100)
    style(ax, title, xlabel, ylabel)
    fig.set_layout_engine("tight")
    return fig, ax


def style(ax, title: str, xlabel: str, ylabel: str = "count") -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylabel == "count" or ylabel.endswith(" count"):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)


def is_numeric(values: list) -> bool:
    return bool(values) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)


def is_integer(values: list) -> bool:
    """Whole numbers by type (counts, int parameters), not floats that happen to be whole."""
    return is_numeric(values) and all(isinstance(v, (int, np.integer)) for v in values)


def distributions(ax, series: list[tuple[str, list]], *, bins: int = 20, value_range=None) -> None:
    """Draw one or several distributions on ``ax``, each told apart: the first as filled bars, the others as
    outlines of their own colour and line style (numbers), or as grouped, hatched bars (categories).
    Whole numbers get one bin per integer while there are at most 40 of them, and integer ticks."""
    from matplotlib.ticker import MaxNLocator

    every = [v for _, values in series for v in values]
    if not every:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes, color="#888888")
        return
    if is_numeric(every):
        lo, hi = value_range or (min(every), max(every))
        if is_integer(every) and hi - lo <= 40:
            edges = np.arange(int(lo), int(hi) + 2) - 0.5
            if hi - lo <= 12:
                ax.set_xticks(range(int(lo), int(hi) + 1))
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            edges = np.histogram_bin_edges(every, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
        for i, (label, values) in enumerate(series):
            colour = COLOURS[i % len(COLOURS)]
            if i == 0:
                ax.hist(values, bins=edges, color=colour, alpha=0.45, label=label, edgecolor=colour)
            else:
                ax.hist(values, bins=edges, histtype="step", linewidth=2.2, color=colour,
                        linestyle=LINESTYLES[i % len(LINESTYLES)], label=label)
    else:
        labels = sorted({str(v) for v in every})
        x, width = np.arange(len(labels)), 0.8 / len(series)
        for i, (label, values) in enumerate(series):
            counts = [sum(str(v) == name for v in values) for name in labels]
            ax.bar(x + (i - (len(series) - 1) / 2) * width, counts, width, label=label,
                   color=COLOURS[i % len(COLOURS)], hatch=["", "//", "..", "xx"][i % 4], edgecolor="white")
        ax.set_xticks(x, labels, rotation=30 if max(map(len, labels)) > 6 else 0, ha="right")
    if len(series) > 1 or series[0][0]:
        ax.legend(fontsize="small")


def plot_parameter(stats: DatasetStats, name: str):
    requested, realised = stats.requested.get(name, []), stats.realised.get(name, [])
    fig, ax = figure(f"Parameter {name}: requested vs realised", name)
    distributions(ax, [(f"requested ({len(requested)} jobs)", requested),
                       (f"realised ({len(realised)} frames)", realised)])
    return fig


def plot_classes(stats: DatasetStats):
    fig, ax = figure("Visible objects per class", "class")
    counts = stats.classes
    names = sorted(counts, key=lambda c: (-counts[c], c))
    images = {c: len({r["stem"] for r in stats.object_rows if r["class"] == c}) for c in names}
    x = np.arange(len(names))
    ax.bar(x - 0.2, [counts[n] for n in names], 0.4, color=COLOURS[0], label="objects")
    ax.bar(x + 0.2, [images[n] for n in names], 0.4, color=COLOURS[1], hatch="//", edgecolor="white",
           label="images with it")
    ax.set_xticks(x, names, rotation=30 if len(names) > 5 else 0, ha="right")
    ax.legend(fontsize="small")
    return fig


def plot_per_class(stats: DatasetStats):
    """Visibility, box size and distance of each class, side by side (box plots)."""
    names = sorted(stats.classes)
    fig, axes = pyplot().subplots(1, 3, figsize=(12.8, 3.8), dpi=100)
    for ax, (key, label) in zip(axes, (("visibility", "visible fraction"), ("size", "sqrt(box area) px"),
                                       ("distance", "distance (m)"))):
        data = []
        for name in names:
            rows = [r for r in stats.object_rows if r["class"] == name]
            if key == "size":
                data.append([float(np.sqrt(r["box_w"] * r["box_h"])) for r in rows])
            else:
                data.append([r[key] for r in rows if r.get(key) is not None])
        if names:
            ax.boxplot(data, tick_labels=names, showmeans=True)
            ax.tick_params(axis="x", rotation=30 if len(names) > 4 else 0)
        style(ax, f"{label} by class", "class", label)
    fig.set_layout_engine("tight")
    return fig


def plot_objects_per_image(stats: DatasetStats):
    fig, ax = figure("Visible objects per image", "objects in the image", "image count")
    distributions(ax, [("", stats.column("objects", "frame"))])
    return fig


def plot_box_sizes(stats: DatasetStats):
    fig, ax = figure("Visible box size", "sqrt(area) in pixels")
    distributions(ax, [("", [float(np.sqrt(r["box_w"] * r["box_h"])) for r in stats.object_rows])], bins=30)
    return fig


def plot_box_aspects(stats: DatasetStats):
    fig, ax = figure("Visible box aspect", "log2(width / height)")
    distributions(ax, [("", [float(np.log2(r["box_w"] / r["box_h"])) for r in stats.object_rows])], bins=30)
    return fig


def plot_box_centres(stats: DatasetStats, bins: tuple[int, int] = (32, 24)):
    """Where the visible boxes' centres fall in the image (x, y as fractions of its width and height)."""
    fig, ax = figure("Box centres in the image", "x / width", "y / height", size=(6.4, 4.8))
    counts, _, _ = np.histogram2d(stats.column("centre_x"), stats.column("centre_y"), bins=bins,
                                  range=[[0, 1], [0, 1]])
    shown = ax.imshow(counts.T, origin="upper", extent=(0, 1, 1, 0), cmap="magma", aspect="auto",
                      interpolation="nearest")
    bar = fig.colorbar(shown, ax=ax, label="boxes")
    from matplotlib.ticker import MaxNLocator

    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    return fig


def plot_histogram(stats: DatasetStats, key: str, title: str, xlabel: str, value_range=None):
    """A per-object field (visibility, truncation, distance, depth) as a histogram, one colour per class."""
    fig, ax = figure(title, xlabel, "object count")
    series = [(name, [r[key] for r in stats.object_rows if r["class"] == name and r.get(key) is not None])
              for name in sorted(stats.classes)]
    if len(series) > len(COLOURS):
        series = [("all classes", stats.column(key))]
    distributions(ax, series or [("", [])], value_range=value_range)
    return fig


def plot_visibility(stats: DatasetStats):
    return plot_histogram(stats, "visibility", "Visibility of objects", "visible fraction", (0, 1))


def plot_truncation(stats: DatasetStats):
    return plot_histogram(stats, "truncation", "Truncation by the image border", "fraction outside", (0, 1))


def plot_distance(stats: DatasetStats):
    return plot_histogram(stats, "distance", "Distance from the camera", "distance (m)")


def plot_depth(stats: DatasetStats):
    return plot_histogram(stats, "depth", "Depth of object centres", "planar depth z (m)")


def plot_brightness(stats: DatasetStats):
    fig, ax = figure("Image brightness", "mean luminance", "image count")
    distributions(ax, [("", stats.column("brightness", "frame"))], value_range=(0, 1))
    return fig


def plot_viewpoints(stats: DatasetStats):
    """Where the camera looked from: azimuth around the polar plot, elevation from the rim (0 deg, level)
    to the centre (90 deg, straight down); one dot per frame."""
    fig = pyplot().figure(figsize=(5.2, 5.2), dpi=100)
    ax = fig.add_subplot(projection="polar")
    rows = [r for r in stats.frame_rows if "cam_azimuth" in r]
    ax.scatter(np.radians([r["cam_azimuth"] for r in rows]), [90 - r["cam_elevation"] for r in rows],
               s=28, color=COLOURS[0], alpha=0.75, edgecolors="white")
    ax.set_rlim(0, 180 if any(r["cam_elevation"] < 0 for r in rows) else 90)
    ax.set_title(f"Camera viewpoints ({len(rows)} frames): azimuth, 90 - elevation", fontsize="medium")
    fig.set_layout_engine("tight")
    return fig


def plot_draws(stats: DatasetStats, component: str, columns: int = 3):
    """What one randomizer (or modifier) drew: one panel per field."""
    fields = stats.draws.get(component, {})
    rows = max(1, -(-len(fields) // columns))
    fig, axes = pyplot().subplots(rows, columns, figsize=(4.3 * columns, 3.1 * rows), dpi=100, squeeze=False)
    for ax, (name, values) in zip(axes.flat, fields.items()):
        style(ax, name, "drawn value")
        distributions(ax, [("", values)])
    for ax in list(axes.flat)[len(fields):]:
        ax.set_axis_off()
    fig.suptitle(component)
    fig.set_layout_engine("tight")
    return fig
