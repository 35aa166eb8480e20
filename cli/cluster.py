"""Cluster commands of ``synthfarm``: workers placed by Slurm, and the liveness check that Kubernetes probes run
(the manifests live in deploy/kubernetes/)."""
from __future__ import annotations

from pathlib import Path

import click

from .app import main


@main.command()
@click.option("--connect", "-c", required=True,
              help="The coordinator's worker endpoint as the compute nodes reach it, e.g. tcp://login1:5555.")
@click.option("--workers", "-n", type=click.IntRange(min=1), default=1, show_default=True,
              help="Array tasks, one worker each.")
@click.option("--gpus-per-worker", type=click.IntRange(min=0), default=1, show_default=True,
              help="GPUs per worker (--gres=gpu:N); 0 renders on CPUs.")
@click.option("--cpus-per-worker", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--mem", default="", help="Memory per worker, e.g. 16G (default: the partition's).")
@click.option("--time", "time_limit", default="", help="Time limit per task, e.g. 4:00:00 (default: the partition's).")
@click.option("--partition", "-p", default="")
@click.option("--account", "-A", default="")
@click.option("--job-name", default="synthfarm-workers", show_default=True)
@click.option("--log-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where each task's output goes (synthfarm-worker-JOB_TASK.log).")
@click.option("--keys", type=click.Path(file_okay=False), default="",
              help="The workers' keys folder as the nodes see it (worker.key_secret + coordinator.key).")
@click.option("--work-dir", default="${TMPDIR:-/tmp}/synthfarm-${SLURM_JOB_ID}", show_default=True,
              help="Node-local folder for the input cache and attempt files (shell variables allowed).")
@click.option("--command", "command", default=None,
              help="How the nodes run synthfarm (default: this Python's `-m synthfarm.cli`), e.g. "
                   "'apptainer exec synthfarm.sif synthfarm'.")
@click.option("--max-jobs", type=click.IntRange(min=0), default=0, help="Restart Blender after this many jobs.")
@click.option("--max-rss", type=click.FloatRange(min=0), default=0.0, help="Restart Blender above this memory, in GB.")
@click.option("--requeue", is_flag=True, help="Let Slurm requeue preempted tasks.")
@click.option("--sbatch-option", "extra", multiple=True, help="Another sbatch option, e.g. --constraint=a100 "
              "(repeatable).")
@click.option("--print", "print_only", is_flag=True, help="Print the sbatch script instead of submitting it.")
def slurm(connect, workers, gpus_per_worker, cpus_per_worker, mem, time_limit, partition, account, job_name, log_dir,
          keys, work_dir, command, max_jobs, max_rss, requeue, extra, print_only):
    """Start workers as a Slurm job array (one worker per task and GPU), or print the script with --print."""
    from ..farm.slurm import SlurmError, SlurmWorkers, sbatch_script, submit

    fields = dict(connect=connect, workers=workers, gpus_per_worker=gpus_per_worker, cpus_per_worker=cpus_per_worker,
                  mem=mem, time=time_limit, partition=partition, account=account, job_name=job_name,
                  log_dir=str(Path(log_dir).resolve()), keys=str(Path(keys).resolve()) if keys else "",
                  work_dir=work_dir, max_jobs=max_jobs, max_rss_gb=max_rss, requeue=requeue, extra=list(extra))
    if command:
        fields["command"] = command
    try:
        spec = SlurmWorkers(**fields)
        if print_only:
            click.echo(sbatch_script(spec), nl=False)
            return
        job = submit(spec)
    except SlurmError as err:
        raise click.ClickException(str(err)) from None
    click.echo(job)
    click.echo(f"{workers} workers as array job {job}: `squeue -j {job}` shows them, `scancel {job}` stops them "
               f"(their running jobs are requeued); logs in {fields['log_dir']}", err=True)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--max-age", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds since the last heartbeat after which the process counts as stuck.")
def health(file, max_age):
    """Exit 0 when the coordinator or worker writing FILE (--health-file) heartbeat within MAX_AGE seconds,
    1 otherwise: a liveness probe for Kubernetes or systemd."""
    from ..farm.health import check

    ok, why = check(Path(file), max_age)
    click.echo(why)
    if not ok:
        raise SystemExit(1)
