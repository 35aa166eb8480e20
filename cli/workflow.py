"""``synthfarm workflow new RECIPE``: write the Submit notebook of a recipe (see farm/workflow.py)."""
from __future__ import annotations

import click

from .app import main


@main.group()
def workflow():
    """Notebooks as saved reports: a Submit notebook per recipe, a Download notebook per batch."""


@workflow.command("new")
@click.argument("recipe", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "-o", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder of the Submit notebook (its Download notebooks go to OUT/workflow_records/).")
@click.option("--endpoint", help="Coordinator's client endpoint, e.g. tcp://farm:5556 (default: an embedded farm).")
@click.option("--keys", type=click.Path(file_okay=False, exists=True), help="The farm's key folder.")
@click.option("--jobs", "-n", type=click.IntRange(min=1), default=8, show_default=True, help="Jobs to sample.")
@click.option("--preview/--full", default=True, show_default=True, help="Submit previews or full jobs.")
def new(recipe, out, endpoint, keys, jobs, preview):
    """Write RECIPE's Submit notebook into OUT; run it top to bottom (Jupyter, or `jupyter nbconvert --execute`)."""
    from ..farm.workflow import WorkflowError, new_workflow

    try:
        click.echo(new_workflow(recipe, out, endpoint=endpoint, keys=keys, jobs=jobs, preview=preview))
    except WorkflowError as err:
        raise click.ClickException(str(err)) from None
