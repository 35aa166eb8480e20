"""Functions for notebooks, named as a user of batch-rendering tools would guess them:

    visualize_job_params(jobs, stratify="num_toys")     # before submitting: the parameters' distributions
    view_previews("out/first-look")                     # frames with masks, boxes and keypoints drawn
    summarize_batch_results_as_dataframe("out/batch")   # one row per frame: parameters joined with results
    visualize_batch_results("out/batch")                # requested vs realised, and the per-frame results

Figures are matplotlib Figures and grids are PIL images: a notebook shows both inline.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import plots
from .overlay import DEFAULT_LAYERS, Layers, pick_stems, preview_grid
from .stats import DatasetStats, collect, read_jobs

SEED = "seed"
METRICS = {"objects": "visible objects per frame", "coverage": "image covered by objects",
           "mean_visibility": "mean visibility of its objects"}


def visualize_job_params(jobs, stratify: str | None = None, columns: int = 3, bins: int = 20):
    """One panel per parameter of ``jobs`` (a list of job dicts or a DataFrame; ``seed`` is left out). With
    ``stratify``, each panel shows one distribution per value of that parameter (numbers in up to four
    quantile groups), so you can see how the other parameters vary within each group."""
    rows = jobs.to_dict("records") if hasattr(jobs, "to_dict") else [dict(j) for j in jobs]
    names = [n for n in dict.fromkeys(k for row in rows for k in row) if n != SEED]
    if stratify is not None and stratify not in names:
        raise KeyError(f"stratify={stratify!r} is not a parameter of these jobs; they have {names}")
    groups = strata([row.get(stratify) for row in rows]) if stratify else [("", [True] * len(rows))]
    shown = [n for n in names if n != stratify] or names
    fig, axes = _grid(len(shown), columns)
    for ax, name in zip(axes, shown):
        plots.style(ax, name, name, "job count")
        plots.distributions(ax, [(label, [row[name] for row, keep in zip(rows, member) if keep and name in row])
                                 for label, member in groups], bins=bins)
    fig.suptitle(f"{len(rows)} jobs" + (f", by {stratify}" if stratify else ""))
    return fig


def strata(values: list, groups: int = 4) -> list[tuple[str, list[bool]]]:
    """(label, membership) of each group of ``values``: one per distinct value while there are at most
    ``groups`` of them, else quantile ranges of the numbers."""
    distinct = sorted({v for v in values if v is not None}, key=str)
    if len(distinct) <= groups or not plots.is_numeric(distinct):
        return [(f"= {v}", [x == v for x in values]) for v in distinct]
    edges = np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, groups + 1))
    out = []
    for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
        last = i == groups - 1
        out.append((f"{lo:.3g}..{hi:.3g}", [lo <= x < hi or (last and x == hi) for x in values]))
    return out


def summarize_batch_results_as_dataframe(dataset: str | Path):
    """One row per rendered frame of a dataset (a downloaded batch): job id, frame, sensor, seed, the job's
    status and parameters, and what the frame holds: visible objects (and per class), the fraction of the
    image they cover, their mean and lowest visibility, brightness and the camera's viewpoint. Needs pandas."""
    return results_frame(collect(Path(dataset)))


def results_frame(stats: DatasetStats):
    import pandas as pd

    jobs = read_jobs(stats.root)
    by_frame: dict[str, list[dict]] = {}
    for obj in stats.object_rows:
        by_frame.setdefault(obj["stem"], []).append(obj)
    classes = sorted(stats.classes)
    records = []
    for row in stats.frame_rows:
        objs = by_frame.get(row["stem"], [])
        visibility = [o["visibility"] for o in objs if o.get("visibility") is not None]
        records.append({
            "job_id": row["job"], "frame": row["frame"], "sensor": row["sensor"], "seed": row["seed"],
            "status": jobs.get(row["job"], {}).get("status"), **row["params"],
            "objects": row["objects"], **{f"objects_{c}": sum(o["class"] == c for o in objs) for c in classes},
            "coverage": row["coverage"],
            "mean_visibility": float(np.mean(visibility)) if visibility else np.nan,
            "min_visibility": float(np.min(visibility)) if visibility else np.nan,
            "brightness": row.get("brightness"), "cam_azimuth": row.get("cam_azimuth"),
            "cam_elevation": row.get("cam_elevation"), "cam_height": row.get("cam_height"), "stem": row["stem"]})
    return pd.DataFrame.from_records(records)


def visualize_batch_results(dataset: str | Path, columns: int = 3):
    """A downloaded batch at a glance: each parameter requested (every job asked for) against realised
    (every frame rendered), then the per-frame results (objects, coverage, visibility)."""
    stats = collect(Path(dataset), brightness=False)
    frame = results_frame(stats)
    names = sorted(stats.requested)
    fig, axes = _grid(len(names) + len(METRICS), columns)
    for ax, name in zip(axes, names):
        plots.style(ax, f"{name}: requested vs realised", name)
        requested, realised = stats.requested[name], stats.realised.get(name, [])
        plots.distributions(ax, [(f"requested ({len(requested)} jobs)", requested),
                                 (f"realised ({len(realised)} frames)", realised)])
    for ax, (metric, title) in zip(axes[len(names):], METRICS.items()):
        plots.style(ax, title, metric, "frame count")
        plots.distributions(ax, [("", [v for v in frame[metric].tolist() if v == v])] if len(frame) else [("", [])])
    fig.suptitle(f"{stats.frames} frames of {stats.jobs} jobs")
    return fig


def view_previews(dataset: str | Path, count: int = 8, columns: int = 4, width: int = 320,
                  layers: Layers = DEFAULT_LAYERS, stems: list[str] | None = None):
    """A grid of frames (``count`` spread over the dataset, or the given ``stems``) with masks, boxes, class
    tags and keypoints drawn (``layers=Layers(amodal=True, box3d=True)`` adds amodal and 3D boxes)."""
    dataset = Path(dataset)
    if stems is None:
        stems = pick_stems(sorted(p.name.removesuffix("-ann.json")
                                  for p in (dataset / "annotations").glob("*-ann.json")), count)
    return preview_grid(dataset, stems, columns=columns, width=width, layers=layers)


def _grid(panels: int, columns: int):
    columns = max(1, min(columns, panels))
    rows = max(1, -(-panels // columns))
    fig, axes = plots.pyplot().subplots(rows, columns, figsize=(4.4 * columns, 3.3 * rows + 0.4), dpi=100,
                                        squeeze=False)
    axes = list(axes.flat)
    for ax in axes[panels:]:
        ax.set_axis_off()
    fig.set_layout_engine("tight")
    return fig, axes
