"""The dataset commands of ``synthfarm``: render, convert, report, compare, validate, params.

    synthfarm render RECIPE --jobs N --out DIR [--preview] [--seed S] [--set name=value ...]
    synthfarm convert DIR --to coco|yolo|kitti|voc|bop [--class-map F] [--min-visibility V] ...
    synthfarm report DIR
    synthfarm validate RECIPE
    synthfarm params RECIPE
    synthfarm compare A B [--out DIR] [--features handcrafted|onnx:PATH] [--projection umap|tsne|pca]

RECIPE is a recipe file (YAML) or a .blend whose scene holds a recipe (the add-on stores it there; the
file is then the scene the jobs start from). Blender is imported only by the commands that render and
for .blend inputs, so ``validate`` and ``params`` of a YAML recipe work anywhere.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .app import main
from ..addon.core.jobs import JobError, coerce_param
from ..addon.core.recipe import RecipeError, load_recipe


def _load(path: str):
    """A recipe file, or a .blend with a recipe on its scene (read with the bpy module)."""
    try:
        if path.lower().endswith(".blend"):
            from ..addon.engine.api import load_source

            return load_source(path)[0]
        return load_recipe(path)
    except (RecipeError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None


def _overrides(recipe, pairs: tuple[str, ...]) -> dict:
    params = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: write it as name=value", param_hint="--set")
        try:
            params[name.strip()] = coerce_param(recipe, name.strip(), text.strip())
        except JobError as err:
            raise click.BadParameter(str(err), param_hint="--set") from None
    return params


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--jobs", "-n", type=click.IntRange(min=1), default=1, show_default=True, help="Number of jobs.")
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True,
              help="Dataset folder. The same dataset there (recipe, seed, tier, parameter values, resolutions) is "
                   "resumed; another one is refused, with what differs.")
@click.option("--replace", is_flag=True, help="Delete the dataset in OUT (its frames, exports and report) and render "
                                                "this one, when OUT holds another dataset.")
@click.option("--preview", is_flag=True, help="Preview tier: one frame, fewer samples, smaller images.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Batch seed; job seeds derive from it and the job number.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a recipe parameter (repeatable).")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True,
              help="Render device; gpu falls back to cpu when none is found (the device used is recorded).")
@click.option("--workers", "-w", type=click.IntRange(min=1),
              help="Local workers of the embedded farm, each with one Blender process (default: one per NVIDIA "
                   "GPU, one on a machine without).")
@click.option("--in-process", is_flag=True, help="Render in this process instead of on the embedded farm.")
def render(recipe, jobs, out, replace, preview, seed, sets, device, workers, in_process):
    """Render JOBS jobs of RECIPE into the dataset folder OUT on an embedded farm (a coordinator and local
    workers in one command; its state lives in OUT/.farm)."""
    model = _load(recipe)
    params = _overrides(model, sets)
    from ..addon.core.dataset.native import DatasetError

    try:
        if in_process:
            from ..addon.engine.api import render as render_dataset

            summary = render_dataset(recipe, jobs=jobs, out=out, seed=seed, preview=preview, params=params,
                                     device=device, progress=True, replace=replace)
            rendered, skipped, interrupted = summary.jobs_rendered, summary.jobs_skipped, summary.interrupted
            failed, errors = 0, []
        else:
            from ..farm.embedded import NoWorkerError, render_on_farm

            try:
                with _progress_bar(jobs) as bar:
                    summary = render_on_farm(Path(recipe), jobs, Path(out), seed=seed, preview=preview,
                                             params=params, workers=workers, device=device, progress=bar,
                                             replace=replace)
            except NoWorkerError as err:
                raise click.ClickException(str(err)) from None
            rendered, skipped, interrupted = summary.jobs_done, summary.jobs_skipped, summary.interrupted
            failed, errors = summary.jobs_failed, summary.errors or []
            if summary.stopped:
                raise click.ClickException(f"stopped: {summary.stopped}; free some space and run the same command "
                                           "again")
    except (DatasetError, JobError, RecipeError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{rendered + skipped}/{jobs} jobs in {out} ({rendered} rendered, {skipped} already there"
               f"{f', {failed} failed' if failed else ''}; {summary.seconds:.1f} s)")
    for error in errors[:5]:
        click.echo(f"job {error['job_id']} failed: {error['error'].splitlines()[0]}", err=True)
    for name, counts in (summary.exports or {}).items():
        click.echo(f"{name}: {', '.join(f'{k} {v}' for k, v in counts.items())}")
    if interrupted:
        click.echo("interrupted: run the same command again to finish", err=True)
        sys.exit(130)
    if failed:
        sys.exit(1)


class _progress_bar:
    """A tqdm bar fed with (done, total) calls."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="job", desc="render")

    def __enter__(self):
        return self

    def __call__(self, done: int, total: int) -> None:
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc):
        self.bar.close()
        return False


@main.command()
@click.argument("dataset", type=click.Path(file_okay=False, exists=True))
@click.option("--to", "formats", multiple=True, required=True, metavar="FORMAT",
              help="coco, coco-polygons, yolo, yolo-seg, yolo-pose, kitti, voc, bop, mot or coco-video (repeatable, or "
                   "comma-separated).")
@click.option("--class-map", type=click.Path(dir_okay=False, exists=True),
              help="Class map YAML: class ids, names, supercategories and rules from labels to classes "
                   "(default: the recipe's).")
@click.option("--min-visibility", type=click.FloatRange(0, 1),
              help="Leave out objects whose visible fraction is lower (default: the recipe's output.filters).")
@click.option("--min-pixels", type=click.IntRange(min=1),
              help="Leave out objects with fewer visible pixels (fully hidden objects are always left out).")
@click.option("--drop-truncated/--keep-truncated", default=None,
              help="Leave out (or keep) objects cut by the image border (> 1 %).")
@click.option("--ignore-class", "ignore", multiple=True, metavar="CLASS",
              help="Leave out a class (repeatable; replaces the recipe's list).")
@click.option("--val-fraction", type=click.FloatRange(0, 1),
              help="Share of frames in the validation split (COCO, YOLO, VOC; default: the recipe's).")
@click.option("--test-fraction", type=click.FloatRange(0, 1), help="Share of frames in a test split.")
@click.option("--out", type=click.Path(file_okay=False), help="Where to write DATASET/<format>/ (default: DATASET).")
def convert(dataset, formats, class_map, min_visibility, min_pixels, drop_truncated, ignore, val_fraction,
            test_fraction, out):
    """Export the native DATASET to other formats, into DATASET/<format>/ (each export replaces the
    previous one whole). The recipe's output section (filters, splits, class map) applies unless an
    option says otherwise."""
    import dataclasses

    from ..addon.core.dataset.classmap import ClassMapError
    from ..addon.core.dataset.convert import convert as run, recipe_settings
    from ..addon.core.dataset.native import DatasetError, require_dataset

    names = [n.strip() for item in formats for n in item.split(",") if n.strip()]
    given = {"min_visibility": min_visibility, "min_pixels": min_pixels, "drop_truncated": drop_truncated,
             "ignore_classes": frozenset(ignore) if ignore else None}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        filters = None
        if given:  # the options given replace those fields of the recipe's filters
            require_dataset(Path(dataset))
            filters = dataclasses.replace(recipe_settings(Path(dataset)).filters, **given)
        results = run(Path(dataset), names, class_map=class_map, filters=filters, val_fraction=val_fraction,
                      test_fraction=test_fraction, out=Path(out) if out else None)
    except (DatasetError, ClassMapError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    for name, counts in results.items():
        click.echo(f"{name}: {', '.join(f'{k} {v}' for k, v in counts.items())} -> {Path(out or dataset) / name}")


@main.command()
@click.argument("dataset", type=click.Path(file_okay=False, exists=True))
@click.option("--out", type=click.Path(file_okay=False), help="Report folder (default: DATASET/report).")
def report(dataset, out):
    """Write an HTML report of DATASET: parameters requested vs realised, class counts, objects per image,
    box sizes and aspects, visibility, brightness, and sample frames with boxes and masks drawn."""
    from ..addon.core.analytics import write_report
    from ..addon.core.dataset.native import DatasetError

    try:
        click.echo(write_report(Path(dataset), Path(out) if out else None))
    except DatasetError as err:
        raise click.ClickException(str(err)) from None


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
def validate(recipe):
    """Check RECIPE: every problem is listed with its field path; exit status 1 if any."""
    model = _load(recipe)
    click.echo(f"{recipe}: valid recipe {model.name!r} ({len(model.generators)} generators, "
               f"{len(model.modifiers)} modifiers, {len(model.randomizers)} randomizers, "
               f"{len(model.sensors)} sensors, {model.frames} frame(s) per job; hash {model.hash()})")


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print parameter_info as JSON.")
def params(recipe, as_json):
    """List the parameters a job of RECIPE may set (--set name=value)."""
    info = _load(recipe).parameter_info
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    if not info:
        click.echo("this recipe declares no parameters")
    for name, p in info.items():
        opts = ", ".join(f"{k} {v}" for k, v in p["options"].items())
        click.echo(f"{name}: {p['type']} (default {p['default']!r}{'; ' + opts if opts else ''})"
                   + (f" - {p['description']}" if p["description"] else ""))


@main.command()
@click.argument("a", type=click.Path(file_okay=False, exists=True))
@click.argument("b", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "-o", type=click.Path(file_okay=False), default="compare", show_default=True,
              help="Folder of the page (index.html, thumbnails).")
@click.option("--samples", "-n", type=click.IntRange(min=4), default=200, show_default=True,
              help="Images sampled from each set.")
@click.option("--features", default="handcrafted", show_default=True, metavar="handcrafted|onnx:PATH",
              help="Feature extractor: the built-in hand-crafted set, or a pretrained network as an ONNX file.")
@click.option("--projection", type=click.Choice(["umap", "tsne", "pca"]), default="umap", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def compare(a, b, out, samples, features, projection, seed):
    """Compare two image sets (a dataset, or any folder of images such as real photos): distances on the
    same features (Fréchet and kernel) and a 2-D map of both, as a page in OUT."""
    from ..addon.core.compare import CompareError, compare as run

    try:
        result = run(a, b, out, samples=samples, features=features, projection=projection, seed=seed)
    except CompareError as err:
        raise click.ClickException(str(err)) from None
    except ImportError as err:
        raise click.ClickException(f"compare needs {err.name}: pip install 'synthfarm[analysis]'") from None
    click.echo(f"features: {result.features}")
    click.echo(f"images: {result.sizes[0]} and {result.sizes[1]}")
    click.echo(f"Fréchet distance {result.frechet:.4g}; kernel distance {result.kernel[0]:.4g} ± {result.kernel[1]:.2g}")
    click.echo(f"at {result.reference_size} images each: A vs B Fréchet {result.between[0]:.4g}, kernel "
               f"{result.between[1]:.4g}; two halves of A Fréchet {result.within[0]:.4g}, kernel {result.within[1]:.4g}")
    click.echo(result.page)
