"""The workflow notebooks run headless (nbclient, a real ipykernel) against an embedded farm: the Submit
notebook samples, checks, plots, estimates and submits, and writes the Download notebook, which awaits,
downloads and shows the frames, the distributions and the results dataframe."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from synthfarm.farm.workflow import new_workflow

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"


def execute(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path.with_name(path.stem + "-executed.ipynb"))  # a saved report, as Jupyter keeps it
    return notebook


def outputs(cell, kind: str) -> list:
    """The ``kind`` outputs of a cell: 'text' for printed text and plain results, else a MIME type."""
    found = []
    for out in cell.get("outputs", []):
        if kind == "text" and out.get("output_type") == "stream":
            found.append(out["text"])
        elif "data" in out and (kind in out["data"] or (kind == "text" and "text/plain" in out["data"])):
            found.append(out["data"][kind if kind != "text" else "text/plain"])
    return found


def cell_with(notebook, snippet: str):
    cells = [c for c in notebook.cells if c.cell_type == "code" and snippet in c.source]
    assert len(cells) == 1, snippet
    return cells[0]


@pytest.fixture(scope="module")
def submitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("workflow")
    path = new_workflow(TINY, out, jobs=3, preview=False, seed=3)
    assert path == out / "tiny-submit.ipynb"
    return out, execute(path)


def test_submit_notebook_samples_plots_estimates_and_submits(submitted):
    out, notebook = submitted
    assert "'radius'" in "".join(outputs(cell_with(notebook, "open_session("), "text"))
    assert outputs(cell_with(notebook, "validate_job_params"), "text") == ["3 valid jobs\n"]
    assert len(outputs(cell_with(notebook, "visualize_job_params(jobs"), "image/png")) == 1  # the plot, inline
    estimate = "".join(outputs(cell_with(notebook, "session.estimate("), "text"))
    assert estimate.startswith("3 frames, about 1.0 min on one worker (20.0 s per frame; default:")
    submitted_text = "".join(outputs(cell_with(notebook, "record_batch("), "text"))
    records = sorted((out / "workflow_records").glob("*/download.ipynb"))
    assert len(records) == 1 and str(records[0]) in submitted_text
    record = json.loads((records[0].parent / "batch.json").read_text())
    assert record["BATCH"] in submitted_text and len(record["jobs"]) == 3
    assert records[0].parent.name[:4].isdigit() and records[0].parent.name.count("_") == 1  # <date>_<time>


def test_download_notebook_awaits_downloads_and_shows_the_results(submitted):
    out, _ = submitted
    path = next((out / "workflow_records").glob("*/download.ipynb"))
    notebook = execute(path)
    assert "'done': 3" in "".join(outputs(cell_with(notebook, "await_completion"), "text"))
    dataset = path.parent / "dataset"
    assert len(list((dataset / "annotations").glob("*-ann.json"))) == 3
    assert len(outputs(cell_with(notebook, "view_previews("), "image/png")) == 1
    assert len(outputs(cell_with(notebook, "visualize_batch_results("), "image/png")) == 1
    table = "".join(outputs(cell_with(notebook, "summarize_batch_results_as_dataframe(dataset)"), "text/html"))
    for column in ("job_id", "radius", "objects", "coverage", "mean_visibility", "cam_elevation"):
        assert f"<th>{column}</th>" in table
    assert table.count("</tr>") == 1 + 3  # the header and one row per frame
    assert (dataset / "report" / "index.html").is_file()
    requested = json.loads((path.parent / "batch.json").read_text())["jobs"]
    assert [f"<td>{j['radius']:.6f}</td>" in table for j in requested] == [True] * 3  # pandas shows 6 decimals


def test_workflow_command_writes_a_submit_notebook(tmp_path):
    run = subprocess.run([sys.executable, "-m", "synthfarm.cli", "workflow", "new", str(TINY), "--out",
                          str(tmp_path), "--endpoint", "tcp://127.0.0.1:5556", "--jobs", "5", "--full"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    notebook = nbformat.read(Path(run.stdout.strip()), as_version=4)
    nbformat.validate(notebook)
    settings = notebook.cells[1]
    assert settings.metadata.tags == ["parameters"]
    for line in ("ENDPOINT = 'tcp://127.0.0.1:5556'", "JOBS = 5", "PREVIEW = False", f"RECIPE = {str(TINY)!r}"):
        assert line in settings.source
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\ngenerators: []\nsensors: nope\n")
    run = subprocess.run([sys.executable, "-m", "synthfarm.cli", "workflow", "new", str(bad), "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "bad.yaml" in run.stderr and "sensors" in run.stderr
