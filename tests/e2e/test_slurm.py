"""Workers placed by a real Slurm (a one-node cluster started for the test): the array's workers join a
coordinator on loopback, a batch completes with every frame once, and scancel of one task requeues its attempt."""
import sqlite3
import subprocess
import sys

import pytest

from farm_procs import Farm, check_dataset, wait_for
from slurm_cluster import SlurmCluster, slurm_missing

pytestmark = pytest.mark.skipif(bool(slurm_missing()), reason=slurm_missing() or "-")


@pytest.fixture()
def cluster(tmp_path):
    cluster = SlurmCluster(tmp_path / "slurm").start()
    yield cluster
    cluster.stop()


@pytest.fixture()
def coordinator(tmp_path):
    farm = Farm(tmp_path, workers=0)
    yield farm
    farm.stop()


def slurm_command(cluster, *args):
    return subprocess.run([sys.executable, "-m", "synthfarm.cli", "slurm", *map(str, args)], env=cluster.env,
                          capture_output=True, text=True, timeout=120)


def test_printed_script_is_accepted_by_sbatch(cluster, tmp_path):
    printed = slurm_command(cluster, "--print", "--connect", "tcp://127.0.0.1:5555", "--workers", 8,
                            "--gpus-per-worker", 1, "--cpus-per-worker", 1, "--time", "0:10:00", "--partition",
                            "test", "--mem", "100M", "--log-dir", tmp_path, "--sbatch-option=--nice=10")
    assert printed.returncode == 0, printed.stderr
    script = printed.stdout
    for line in ("#SBATCH --array=0-7", "#SBATCH --gres=gpu:1", "#SBATCH --time=0:10:00", "#SBATCH --partition=test",
                 "#SBATCH --nice=10"):
        assert line in script.splitlines()
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    verdict = cluster.run("sbatch", "--test-only", input=script, check=False)
    assert verdict.returncode == 0 and "to start at" in verdict.stderr, verdict.stderr
    refused = cluster.run("sbatch", "--test-only", input=script.replace("--partition=test", "--partition=nope"),
                          check=False)
    assert refused.returncode != 0 and "partition" in refused.stderr.lower()


def test_bad_options_are_refused_with_the_field():
    run = subprocess.run([sys.executable, "-m", "synthfarm.cli", "slurm", "--print", "--connect", "login1:5555"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0 and "tcp://HOST:PORT" in run.stderr


def test_array_of_workers_renders_a_batch_and_scancel_requeues(cluster, coordinator, slow_recipe, tmp_path):
    logs = tmp_path / "slurm-logs"
    logs.mkdir()
    started = slurm_command(cluster, "--connect", f"tcp://127.0.0.1:{coordinator.port}", "--workers", 2,
                            "--gpus-per-worker", 1, "--cpus-per-worker", 1, "--log-dir", logs,
                            "--work-dir", tmp_path / "node-scratch/${SLURM_ARRAY_TASK_ID}")
    assert started.returncode == 0, started.stderr
    job = started.stdout.strip()
    assert job.isdigit()
    names = {f"slurm-{job}_0", f"slurm-{job}_1"}
    wait_for(lambda: {w["id"] for w in coordinator.client.workers() if w["status"] != "gone"} >= names, 180,
             "both array tasks to join the coordinator")
    assert cluster.tasks(job) == {"0": "RUNNING", "1": "RUNNING"}
    # Slurm gave each task its own GPU (the worker's log says which)
    gpus = {(logs / f"synthfarm-worker-{job}_{i}.log").read_text().split("GPUs ")[1].split()[0] for i in (0, 1)}
    assert gpus == {"0", "1"}

    out = tmp_path / "out"
    coordinator.submit(slow_recipe, 8, out)
    busy = wait_for(lambda: [w["id"] for w in coordinator.client.workers() if w["status"] == "busy"
                             and w["id"] == f"slurm-{job}_0"], 180, "task 0 to render a job")
    assert busy
    cluster.run("scancel", f"{job}_0")
    wait_for(lambda: "0" not in cluster.tasks(job), 60, "task 0 to end")
    status = coordinator.wait(lambda s: s["jobs"]["done"] == 8, timeout=300)
    assert status["jobs"]["failed"] == 0
    check_dataset(out, 8, 3)

    db = sqlite3.connect(tmp_path / "state" / "farm.sqlite")
    lost = db.execute("SELECT job_id, error FROM attempts WHERE worker_id=? AND status='lost'",
                      (f"slurm-{job}_0",)).fetchall()
    # the job it rendered, and the one it held ahead if it held one: requeued, not counted as failures
    assert 1 <= len(lost) <= 2 and {error for _, error in lost} == {"worker left"}, lost
    for job_id, _ in lost:
        redone = db.execute("SELECT worker_id, status FROM attempts WHERE job_id=? AND id IN (SELECT id FROM "
                            "attempts WHERE status='done')", (job_id,)).fetchall()
        assert redone == [(f"slurm-{job}_1", "done")]
    assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0
    assert {w["id"]: w["status"] for w in coordinator.client.workers()}[f"slurm-{job}_0"] == "gone"
