"""Workers placed by Slurm: an sbatch script that starts one worker per array task (one per GPU).

Slurm only places workers; the coordinator stays the one source of truth. Each array task runs
``synthfarm worker`` named after its task (``slurm-<array job>_<task>``), with a work folder on the
node's local scratch. ``--gres=gpu:N`` makes Slurm set ``CUDA_VISIBLE_DEVICES`` for the task, so the
worker renders on exactly the GPUs it was given. When Slurm stops a task (``scancel``, time limit,
preemption) the worker gets SIGTERM, says BYE, and the coordinator requeues the attempt it was running.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


class SlurmError(Exception):
    """sbatch is missing or refused the script (its message is included)."""


@dataclass
class SlurmWorkers:
    connect: str  # the coordinator's worker endpoint, as the compute nodes reach it
    workers: int = 1  # array tasks, one worker each
    gpus_per_worker: int = 0  # --gres=gpu:N (0: CPU rendering)
    cpus_per_worker: int = 4
    mem: str = ""  # e.g. 16G (empty: the partition's default)
    time: str = ""  # e.g. 4:00:00 (empty: the partition's default)
    partition: str = ""
    account: str = ""
    job_name: str = "synthfarm-workers"
    log_dir: str = "."  # where Slurm writes each task's output
    keys: str = ""  # a keys folder readable on the nodes (worker.key_secret + coordinator.key)
    work_dir: str = "${TMPDIR:-/tmp}/synthfarm-${SLURM_JOB_ID}"  # node-local: input cache and attempt files
    command: str = field(default_factory=lambda: f"{sys.executable} -m synthfarm.cli")  # how nodes run synthfarm
    max_jobs: int = 0
    max_rss_gb: float = 0.0
    requeue: bool = False  # let Slurm requeue a preempted task (its attempt is requeued by the coordinator anyway)
    extra: list[str] = field(default_factory=list)  # more sbatch options, e.g. ["--constraint=a100"]

    def __post_init__(self):
        if self.workers < 1:
            raise SlurmError(f"workers must be at least 1, not {self.workers}")
        if self.gpus_per_worker < 0 or self.cpus_per_worker < 1:
            raise SlurmError("gpus_per_worker must be >= 0 and cpus_per_worker >= 1")
        if not re.fullmatch(r"tcp://[^\s:]+:\d+", self.connect):
            raise SlurmError(f"connect {self.connect!r} is not a tcp://HOST:PORT endpoint that the nodes can reach")
        for option in self.extra:
            if not option.startswith("--") or "\n" in option:
                raise SlurmError(f"sbatch option {option!r} must be one --name[=value] on one line")


def sbatch_script(spec: SlurmWorkers) -> str:
    """The batch script: #SBATCH options, then ``exec synthfarm worker`` (so Slurm's signals reach it)."""
    options = [f"--job-name={spec.job_name}", f"--array=0-{spec.workers - 1}", "--ntasks=1",
               f"--cpus-per-task={spec.cpus_per_worker}",
               f"--output={Path(spec.log_dir) / 'synthfarm-worker-%A_%a.log'}"]
    if spec.gpus_per_worker:
        options.append(f"--gres=gpu:{spec.gpus_per_worker}")
    for name, value in (("mem", spec.mem), ("time", spec.time), ("partition", spec.partition),
                        ("account", spec.account)):
        if value:
            options.append(f"--{name}={value}")
    options.append("--requeue" if spec.requeue else "--no-requeue")
    options += spec.extra
    worker = [*shlex.split(spec.command), "worker", "--connect", spec.connect,
              "--device", "gpu" if spec.gpus_per_worker else "cpu"]
    if spec.keys:
        worker += ["--keys", spec.keys]
    if spec.max_jobs:
        worker += ["--max-jobs", str(spec.max_jobs)]
    if spec.max_rss_gb:
        worker += ["--max-rss", f"{spec.max_rss_gb:g}"]
    lines = ["#!/bin/bash", "# synthfarm workers as a Slurm job array: one worker per task (made by `synthfarm slurm`)"]
    lines += [f"#SBATCH {option}" for option in options]
    lines += [
        "set -eu",
        # Slurm sets CUDA_VISIBLE_DEVICES from --gres: the worker sees exactly its GPUs
        'echo "synthfarm worker: task ${SLURM_ARRAY_TASK_ID} of job ${SLURM_ARRAY_JOB_ID} on $(hostname),'
        ' GPUs ${CUDA_VISIBLE_DEVICES:-none}"',
        f'work_dir="{spec.work_dir}"',
        'mkdir -p "$work_dir"',
        "exec " + " ".join(shlex.quote(arg) for arg in worker)
        + ' --name "slurm-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" --work-dir "$work_dir"',
        "",
    ]
    return "\n".join(lines)


def submit(spec: SlurmWorkers, sbatch: str = "sbatch", test_only: bool = False) -> str:
    """Hand the script to sbatch; returns the array job id (or sbatch's verdict with ``test_only``)."""
    if shutil.which(sbatch) is None:
        raise SlurmError(f"{sbatch} not found: run this on a Slurm login node, or print the script with --print "
                         "and submit it there")
    cmd = [sbatch, "--test-only" if test_only else "--parsable"]
    run = subprocess.run(cmd, input=sbatch_script(spec), capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise SlurmError(f"sbatch refused the workers' script: {run.stderr.strip() or run.stdout.strip()}")
    if test_only:
        return run.stderr.strip()  # "sbatch: Job ... to start at ..."
    return run.stdout.strip().split(";")[0]  # --parsable: "jobid[;cluster]"
