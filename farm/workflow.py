"""Workflows as saved reports: a Submit notebook that crafts, checks, plots, estimates and submits a batch,
and, for each batch it submits, a Download notebook in ``workflow_records/<date-time>/`` that awaits,
downloads and shows what came out.

    synthfarm workflow new assets/recipes/toybox.yaml [--endpoint tcp://farm:5556] [--out notebooks/]
    >>> from synthfarm.farm.workflow import new_workflow
    >>> new_workflow("assets/recipes/toybox.yaml", out="notebooks/")

Without an endpoint the notebooks run an embedded farm (a coordinator and one local worker in the notebook's
kernel, its state in ``<records>/embedded-farm``): it renders while a notebook runs, and the Download
notebook starts it again on the same state, so the batch finishes there.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

RECORDS = "workflow_records"
EMBEDDED_STATE = "embedded-farm"


class WorkflowError(Exception):
    """A workflow cannot be written or run as asked; the message says what to change."""


# -- used by the notebooks ----------------------------------------------------------------------------
def open_session(recipe: str | Path, endpoint: str | None = None, *, keys: str | Path | None = None,
                 records: str | Path = RECORDS, random_state: int | None = None):
    """(Session, farm): a Session on the coordinator at ``endpoint``, or on an embedded farm started now with
    its state in ``<records>/embedded-farm`` (then ``farm`` is that farm; close it with :func:`close`)."""
    from .session import Session

    records = Path(records).resolve()
    farm = None
    if endpoint is None:
        from .embedded import EmbeddedFarm

        farm = EmbeddedFarm(records / EMBEDDED_STATE, workers=1).__enter__()
        endpoint = farm.coordinator.clients_endpoint
    session = Session(endpoint, recipe=recipe, keys=keys, out_root=records / "batches", random_state=random_state)
    return session, farm


def close(farm) -> None:
    """Stop an embedded farm started by :func:`open_session` (a coordinator's farm is left running)."""
    if farm is not None:
        farm.__exit__(None, None, None)


def record_batch(batch, recipe: str | Path, *, endpoint: str | None = None, keys: str | Path | None = None,
                 records: str | Path = RECORDS, preview: bool = False, now: dt.datetime | None = None) -> Path:
    """Write the Download notebook of ``batch`` (and batch.json) into ``<records>/<date-time>/``; return it."""
    records = Path(records).resolve()
    stamp = (now or dt.datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    folder, n = records / stamp, 1
    while folder.exists():
        n += 1
        folder = records / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    settings = {"BATCH": batch.id, "RECIPE": str(Path(recipe).resolve()), "ENDPOINT": endpoint,
                "KEYS": str(Path(keys).resolve()) if keys else None, "RECORDS": str(records),
                "RECORD": str(folder), "PREVIEW": preview}
    (folder / "batch.json").write_text(json.dumps({**settings, "jobs": batch.job_params_seeded_for_rerun()},
                                                  indent=1), encoding="utf-8")
    path = folder / "download.ipynb"
    _write(path, download_cells(settings))
    return path


# -- writing the notebooks ------------------------------------------------------------------------------
def new_workflow(recipe: str | Path, out: str | Path = ".", *, endpoint: str | None = None,
                 keys: str | Path | None = None, jobs: int = 8, preview: bool = True, records: str | Path | None = None,
                 name: str | None = None, seed: int | None = None) -> Path:
    """Write the Submit notebook of ``recipe`` into ``out`` (``<recipe name>-submit.ipynb``); return its path.
    Download notebooks go to ``records`` (default ``<out>/workflow_records``)."""
    from ..addon.core.recipe import RecipeError

    recipe = Path(recipe).resolve()
    if not recipe.is_file():
        raise WorkflowError(f"recipe {recipe} does not exist; give a recipe file (YAML) or a .blend with a recipe")
    if recipe.suffix.lower() != ".blend":
        from ..addon.core.recipe import load_recipe

        try:
            model_name = load_recipe(recipe).name
        except RecipeError as err:
            raise WorkflowError(f"{recipe}: {err}") from None
    else:
        model_name = recipe.stem
    if jobs < 1:
        raise WorkflowError(f"jobs={jobs}: a workflow submits at least one job")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    settings = {"RECIPE": str(recipe), "ENDPOINT": endpoint, "KEYS": str(Path(keys).resolve()) if keys else None,
                "RECORDS": str(Path(records).resolve() if records else out / RECORDS), "JOBS": jobs,
                "PREVIEW": preview, "STRATIFY": None, "CALIBRATE": False, "SEED": seed,
                "NAME": name or f"{model_name} workflow"}
    path = out / f"{model_name}-submit.ipynb"
    _write(path, submit_cells(settings, model_name))
    return path


def _settings_cell(settings: dict, comments: dict[str, str]):
    import nbformat.v4 as nbf

    lines = [f"{key} = {value!r}" + (f"  # {comments[key]}" if key in comments else "")
             for key, value in settings.items()]
    return nbf.new_code_cell("\n".join(lines), metadata={"tags": ["parameters"]})


def submit_cells(settings: dict, recipe_name: str) -> list:
    import nbformat.v4 as nbf

    md, code = nbf.new_markdown_cell, nbf.new_code_cell
    return [
        md(f"# Submit: {recipe_name}\n\nCraft job parameters, check them, look at their distributions, estimate "
           "the time, submit, and write the Download notebook for the batch into `RECORDS/<date-time>/`. Run it "
           "top to bottom; change the settings below first."),
        _settings_cell(settings, {
            "ENDPOINT": "a coordinator, e.g. 'tcp://farm:5556'; None runs an embedded farm in this kernel",
            "KEYS": "the farm's key folder (synthfarm keys init), if it uses keys",
            "JOBS": "how many jobs to sample below", "PREVIEW": "True: one frame per job, fewer samples, half size",
            "STRATIFY": "a parameter name: plot the others by its values", "CALIBRATE":
            "True: render one job first when this farm has not measured the recipe",
            "SEED": "a number makes the sampled jobs reproducible"}),
        code("from synthfarm.addon.core.analytics import visualize_job_params\n"
             "from synthfarm.farm import workflow\n\n"
             "session, farm = workflow.open_session(RECIPE, ENDPOINT, keys=KEYS, records=RECORDS, random_state=SEED)\n"
             "session.parameter_info"),
        md("## Job parameters\n\nEach job is a dict of parameter values and a `seed`. `session.sample_input()` "
           "draws every parameter from its declared range; fix some with `session.sample_input(name=value)`, "
           "or build designs with `session.grid(...)`, `session.sobol(n, [...])`, `session.latin_hypercube(...)`, "
           "or write your own distributions in plain Python."),
        code("jobs = [session.sample_input() for _ in range(JOBS)]\n"
             "problems = [f'job {i}: {p}' for i, p in enumerate(session.validate_job_params(jobs)) if p]\n"
             "assert not problems, '\\n'.join(problems)\n"
             "print(f'{len(jobs)} valid jobs')"),
        code("visualize_job_params(jobs, stratify=STRATIFY);"),
        md("## Estimate"),
        code("estimate = session.estimate(jobs, preview=PREVIEW, calibrate=CALIBRATE)\n"
             "print(f'{estimate.frames} frames, about {estimate.seconds / 60:.1f} min on one worker '\n"
             "      f'({estimate.seconds_per_frame:.1f} s per frame; {estimate.source})')"),
        md("## Submit\n\nThis sends the jobs and writes the batch's Download notebook."),
        code("batch = session.submit(jobs, preview=PREVIEW, name=NAME)\n"
             "download = workflow.record_batch(batch, RECIPE, endpoint=ENDPOINT, keys=KEYS, records=RECORDS,\n"
             "                                 preview=PREVIEW)\n"
             "print(f'batch {batch.id} submitted ({len(jobs)} jobs); its Download notebook: {download}')"),
        code("workflow.close(farm)  # an embedded farm stops here; the Download notebook starts it again"),
    ]


def download_cells(settings: dict) -> list:
    import nbformat.v4 as nbf

    md, code = nbf.new_markdown_cell, nbf.new_code_cell
    return [
        md(f"# Download: batch {settings['BATCH']}\n\nAwait the batch, download it into `RECORD/dataset`, and look "
           "at what came out: frames with their labels, the parameters requested against those realised, and "
           "one row per frame joining parameters and results."),
        _settings_cell({**settings, "TIMEOUT": 24 * 3600}, {"TIMEOUT": "seconds to wait for the batch"}),
        code("from pathlib import Path\n\n"
             "from synthfarm.addon.core.analytics import (summarize_batch_results_as_dataframe, view_previews,\n"
             "                                            visualize_batch_results, write_report)\n"
             "from synthfarm.farm import workflow\n"
             "from synthfarm.farm.session import Batch\n\n"
             "session, farm = workflow.open_session(RECIPE, ENDPOINT, keys=KEYS, records=RECORDS)\n"
             "batch = Batch.from_id(session, BATCH)\n"
             "status = batch.await_completion(timeout=TIMEOUT, poll=1.0)\n"
             "print(f\"batch {BATCH}: {status['jobs']}\")"),
        code("dataset = batch.download(Path(RECORD) / 'dataset')\nprint(dataset)"),
        md("## Frames with their labels\n\nMasks (a container only outlined), boxes with their class, keypoints "
           "(filled: visible, ring: hidden)."),
        code("view_previews(dataset, count=8)"),
        md("## Requested against realised, and the per-frame results"),
        code("visualize_batch_results(dataset);"),
        code("results = summarize_batch_results_as_dataframe(dataset)\nresults"),
        code("print('report:', write_report(dataset))\nworkflow.close(farm)"),
    ]


def _write(path: Path, cells: list) -> None:
    import nbformat
    import nbformat.v4 as nbf

    notebook = nbf.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.validate(notebook)
    nbformat.write(notebook, str(path))
