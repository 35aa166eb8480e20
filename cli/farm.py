"""The farm commands of ``synthfarm``: run a coordinator or a worker, and submit and steer batches."""
from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import click

from .app import main

COORDINATOR = "tcp://127.0.0.1:5556"
_connect = click.option("--connect", "-c", default=COORDINATOR, show_default=True, envvar="SYNTHFARM_COORDINATOR",
                        help="The coordinator's client endpoint (or $SYNTHFARM_COORDINATOR).")
keys_option = click.option("--keys", type=click.Path(file_okay=False, exists=True), envvar="SYNTHFARM_KEYS",
                           help="Keys folder from `synthfarm keys init` (or $SYNTHFARM_KEYS): CURVE encryption "
                                "and authentication.")

health_option = click.option("--health-file", type=click.Path(dir_okay=False),
                              help="Rewrite this file at every heartbeat, for a liveness probe: "
                                   "`synthfarm health FILE --max-age S`.")


def connect_option(fn):
    return _connect(keys_option(fn))


def _keys(keys: str | None, role: str) -> Path | None:
    """The keys folder, checked for what ``role`` needs (a clear error instead of a traceback)."""
    from ..farm.auth import KeysError, check_keys

    if not keys:
        return None
    try:
        check_keys(Path(keys), role)
    except KeysError as err:
        raise click.ClickException(str(err)) from None
    return Path(keys)


def _client(connect: str, keys: str | None = None):
    from ..farm.client import FarmClient

    return FarmClient(connect, keys=_keys(keys, "client"))


def _call(fn, *args, **kw):
    from ..farm.client import FarmError

    try:
        return fn(*args, **kw)
    except FarmError as err:
        raise click.ClickException(str(err)) from None


def _loopback(endpoint: str) -> bool:
    host = endpoint.split("://", 1)[-1].rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost", "[::1]", "::1") or endpoint.startswith(("ipc://", "inproc://"))


def _stop_on_signals(stop_event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_event.set())


@main.command()
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5555, show_default=True,
              help="Workers' port; clients use PORT+1, events PORT+2, file transfers PORT+3.")
@click.option("--data", type=click.Path(file_okay=False), required=True, help="Folder for the farm's SQLite state.")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback address without keys.")
@keys_option
@click.option("--heartbeat", type=click.FloatRange(min=0.05), default=1.0, show_default=True, help="Seconds.")
@click.option("--lost-after", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds of silence after which a worker's job is requeued.")
@click.option("--hang-after", type=click.FloatRange(min=0.1), default=600.0, show_default=True,
              help="Seconds a worker may heartbeat without progress before its job is requeued (a recipe's "
                   "farm.hang_after raises it for its own jobs).")
@click.option("--out-root", type=click.Path(file_okay=False),
              help="Datasets are written under this folder (relative --out of submit too) [default: DATA/datasets].")
@click.option("--any-out", is_flag=True, help="Let a submit write its dataset into any folder this process can write.")
@click.option("--shared-root", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="A shared file system folder recipes may be read from (submit --shared); repeatable. "
                   "Without it every submit sends its files.")
@click.option("--max-jobs-per-batch", type=click.IntRange(min=1), default=1_000_000, show_default=True)
@click.option("--max-attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Failed attempts after which a job fails.")
@click.option("--forget-after", type=click.FloatRange(min=0.1), default=86400.0, show_default=True,
              help="Seconds after which a lost or departed worker is forgotten.")
@health_option
@click.option("--dashboard", "dashboard_port", type=click.IntRange(0, 65535),
              help="Serve a read-only web page of the farm on this port: on loopback, or with --keys on --bind "
                   "behind a token.")
@click.option("--dashboard-token", envvar="SYNTHFARM_DASHBOARD_TOKEN",
              help="The dashboard's token with --keys (or $SYNTHFARM_DASHBOARD_TOKEN; default: a random one, printed).")
@click.option("--min-free-mb", type=click.FloatRange(min=0), default=64.0, show_default=True,
              help="A batch paused because its disk filled up resumes once this much is free.")
@click.option("--upload-idle", type=click.FloatRange(min=0.1), default=3600.0, show_default=True,
              help="Seconds after which a half-uploaded file nobody adds to is deleted.")
@click.option("--recover", is_flag=True, help="Rebuild a damaged state first: the file is moved aside, what is "
              "readable kept, finished jobs taken from the datasets on disk.")
def coordinator(bind, port, data, insecure, keys, heartbeat, lost_after, hang_after, out_root, any_out, shared_root,
                max_jobs_per_batch, max_attempts, forget_after, health_file, dashboard_port, dashboard_token,
                min_free_mb, upload_idle, recover):
    """Run a coordinator: workers connect to PORT, clients (submit, status, ...) to PORT+1."""
    from ..farm.auth import KeysError
    from ..farm.coordinator import Coordinator
    from ..farm.health import HealthFile
    from ..farm.store import StoreError

    endpoints = [f"tcp://{bind}:{port + i}" for i in range(4)]
    if not keys and not all(_loopback(e) for e in endpoints) and not insecure:
        raise click.ClickException(f"refusing to listen on {bind} without keys: anyone who can reach it could submit "
                                   "work; bind to 127.0.0.1, or pass --insecure on a trusted network")
    if recover:
        from ..farm.recovery import recover as recover_state

        click.echo(recover_state(Path(data)), err=True)
    try:
        coord = Coordinator(Path(data), *endpoints, heartbeat=heartbeat, lost_after=lost_after, hang_after=hang_after,
                            keys=Path(keys) if keys else None, out_root=Path(out_root) if out_root else None,
                            any_out=any_out, shared_roots=tuple(map(Path, shared_root)),
                            max_jobs_per_batch=max_jobs_per_batch, max_attempts=max_attempts,
                            forget_workers_after=forget_after, min_free_bytes=int(min_free_mb * 1e6),
                            upload_idle_seconds=upload_idle)
    except (KeysError, StoreError) as err:
        raise click.ClickException(str(err)) from None
    coord.health = HealthFile(Path(health_file), every=heartbeat) if health_file else None
    _stop_on_signals(coord.stop_event)
    click.echo(f"coordinator: workers {endpoints[0]}, clients {endpoints[1]}, events {endpoints[2]}, "
               f"transfers {endpoints[3]}; state in {data}; datasets under "
               f"{'any folder' if any_out else coord.settings.out_root}")
    page = None
    if dashboard_port is not None:
        from ..farm.dashboard import Dashboard

        host = "127.0.0.1" if bind in ("0.0.0.0", "*") else bind  # the coordinator, from its own process
        try:
            page = Dashboard(f"tcp://{host}:{port + 1}", f"tcp://{host}:{port + 2}",
                             bind=bind if keys else "127.0.0.1", port=dashboard_port,
                             keys=Path(keys) if keys else None, token=dashboard_token).start()
        except OSError as err:
            coord.close()
            raise click.ClickException(f"the dashboard cannot listen on port {dashboard_port}: {err}; choose "
                                       "another --dashboard port") from None
        click.echo(f"dashboard: {page.url}")
    try:
        coord.serve()
    finally:
        if page is not None:
            page.stop()


@main.command()
@click.option("--connect", "-c", default="tcp://127.0.0.1:5555", show_default=True,
              help="The coordinator's worker endpoint.")
@click.option("--gpu", type=int, help="Render on this GPU only (index among the backend's devices).")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto", show_default=True)
@click.option("--max-jobs", type=click.IntRange(min=0), default=0, help="Restart Blender after this many jobs (0: never).")
@click.option("--max-rss", type=click.FloatRange(min=0), default=0.0, help="Restart Blender above this memory, in GB.")
@click.option("--blender", type=click.Path(dir_okay=False), help="A Blender executable (default: the bpy module).")
@click.option("--name", help="Worker id (default: host-pid-random).")
@click.option("--work-dir", type=click.Path(file_okay=False), help="Cache of inputs and attempts' files.")
@click.option("--ahead", type=click.IntRange(0, 64), default=1, show_default=True,
              help="Tasks held besides the one rendering, so Blender starts the next at once (0: ask when idle).")
@keys_option
@health_option
def worker(connect, gpu, device, max_jobs, max_rss, blender, name, work_dir, ahead, keys, health_file):
    """Run a worker: a supervisor that keeps one Blender process rendering the coordinator's jobs."""
    from ..farm.health import HealthFile
    from ..farm.worker import Worker

    w = Worker(connect, name, blender=blender, gpu=gpu, device=device, max_jobs=max_jobs, max_rss_gb=max_rss,
               work_dir=Path(work_dir) if work_dir else None, keys=_keys(keys, "worker"), ahead=ahead)
    w.health = HealthFile(Path(health_file)) if health_file else None
    _stop_on_signals(w.stop_event)
    click.echo(f"worker {w.worker_id} -> {connect}")
    w.run()
    if w.fatal:
        raise click.ClickException(f"this worker cannot render: {w.fatal}")


@main.command()
@click.argument("recipe", type=click.Path(dir_okay=False, exists=True))
@click.option("--jobs", "-n", type=click.IntRange(min=1), required=True)
@click.option("--out", "-o", type=click.Path(file_okay=False), required=True,
              help="Dataset folder on the coordinator: relative to its dataset root (--out-root), or an absolute "
                   "path under it.")
@click.option("--preview", is_flag=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--priority", type=click.IntRange(0, 100), default=50, show_default=True)
@click.option("--name", default="", help="A name for the batch.")
@click.option("--batch-id", help="Idempotency key: submitting the same id twice creates one batch.")
@click.option("--shared", is_flag=True, help="Workers read the recipe's files from the same paths (a shared file "
              "system the coordinator allows with --shared-root) instead of receiving them by content hash.")
@click.option("--require", "requires", multiple=True, metavar="CAPABILITY[=VALUE]",
              help="Only workers with this capability take the batch: gpu, min_vram_gb=N, min_memory_gb=N, "
                   "gpu_model=GLOB (repeatable).")
@connect_option
def submit(recipe, jobs, out, preview, seed, priority, name, batch_id, shared, requires, connect, keys):
    """Submit a batch of JOBS jobs of RECIPE (a recipe file, or a .blend with a recipe on its scene); prints the
    batch id. The recipe and every file it names are uploaded (only what the coordinator lacks); OUT is a
    folder on the coordinator's machine."""
    from ..addon.core.recipe import RecipeError
    from ..addon.engine.api import load_source  # a .blend is read with the bpy module
    from ..farm.capabilities import parse_requirements
    from ..farm.transfer import make_bundle

    try:
        needs = parse_requirements(list(requires))
        model, recipe_dir, text = load_source(recipe)
    except (RecipeError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    path = Path(recipe).resolve()
    client = _client(connect, keys)
    inputs, recipe_path = {}, ""
    if not shared:
        root, recipe_path, inputs = make_bundle(model, path)
        sent = _call(client.upload_inputs, root, inputs)
        click.echo(f"inputs: {len(inputs)} files, {sent} uploaded", err=True)
    data = _call(client.submit, batch_id=batch_id or uuid.uuid4().hex[:16], name=name, recipe=text,
                 recipe_dir=str(recipe_dir), out=out, count=jobs, seed=seed, preview=preview,
                 priority=priority, inputs=inputs, recipe_path=recipe_path, requires=needs)
    click.echo(data["id"])
    if data.get("waiting_for"):
        click.echo(f"note: {data['waiting_for']}", err=True)


@main.command()
@click.argument("batch", required=False)
@click.option("--json", "as_json", is_flag=True)
@connect_option
def status(batch, as_json, connect, keys):
    """Show one batch (with its failed jobs' errors) or all batches."""
    data = _call(_client(connect, keys).status, batch)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for b in ([data] if batch else data["batches"]):
        jobs = b["jobs"]
        click.echo(f"{b['id']} {b['name'] or '-'} [{b['status']}, priority {b['priority']}] "
                   + " ".join(f"{k} {v}" for k, v in jobs.items()) + f" -> {b['out']}")
        click.echo(f"  {b['reason']}")
        for error in b.get("errors", []):
            click.echo(f"  job {error['job_id']} failed: {error['error'].splitlines()[0] if error['error'] else ''}")


@main.command()
@click.argument("batch")
@connect_option
def watch(batch, connect, keys):
    """Follow a batch with a progress bar until it ends."""
    from tqdm import tqdm

    client = _client(connect, keys)
    data = _call(client.status, batch)
    with tqdm(total=data["count"], unit="job", desc=batch) as bar:
        while True:
            jobs = data["jobs"]
            bar.update(jobs["done"] + jobs["failed"] - bar.n)
            bar.set_postfix(running=jobs["running"], failed=jobs["failed"])
            if data["status"] == "cancelled" or (jobs["queued"] == 0 and jobs["running"] == 0):
                break
            time.sleep(1.0)
            data = _call(client.status, batch)
    click.echo(f"{batch}: " + " ".join(f"{k} {v}" for k, v in data["jobs"].items()))


@main.command()
@click.argument("batch")
@connect_option
def cancel(batch, connect, keys):
    """Cancel a batch: queued jobs are dropped, running ones stopped."""
    data = _call(_client(connect, keys).cancel, batch)
    click.echo(f"{batch}: cancelled; " + " ".join(f"{k} {v}" for k, v in data["jobs"].items()))


@main.command()
@click.argument("batch")
@connect_option
def retry(batch, connect, keys):
    """Requeue a batch's failed and cancelled jobs."""
    click.echo(f"{batch}: {_call(_client(connect, keys).retry, batch)['requeued']} jobs requeued")


@main.command("set-priority")
@click.argument("batch")
@click.argument("priority", type=click.IntRange(0, 100))
@connect_option
def set_priority(batch, priority, connect, keys):
    """Set a batch's priority (0-100, higher first)."""
    _call(_client(connect, keys).set_priority, batch, priority)
    click.echo(f"{batch}: priority {priority}")


@main.command()
@click.argument("batch")
@click.argument("directory", type=click.Path(file_okay=False))
@connect_option
def download(batch, directory, connect, keys):
    """Copy a batch's dataset from the coordinator into DIRECTORY (resumes: complete files are skipped)."""
    from tqdm import tqdm

    with tqdm(unit="file", desc=f"download {batch}") as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        fetched, skipped = _call(_client(connect, keys).download, batch, Path(directory), progress)
    click.echo(f"{batch}: {fetched} files fetched, {skipped} already there -> {directory}")


@main.command()
@click.argument("batch")
@click.argument("job", type=click.IntRange(min=0))
@connect_option
def logs(batch, job, connect, keys):
    """Show every attempt of job JOB of BATCH: its worker, outcome, error, and the end of its Blender log."""
    attempts = _call(_client(connect, keys).logs, batch, job)
    if not attempts:
        click.echo(f"job {job} of {batch} has not been attempted yet")
    for a in attempts:
        click.echo(f"== attempt {a['id']} on {a['worker_id']}: {a['status']}"
                   + (f" ({a['error'].splitlines()[0]})" if a["error"] else ""))
        click.echo(a["log"].rstrip() or "(no output)")


@main.command()
@connect_option
def workers(connect, keys):
    """List the workers the coordinator knows."""
    for w in _call(_client(connect, keys).workers):
        gpu = f" {w['gpu_model']} ({w['vram_bytes'] / 2**30:.0f} GiB)" if w.get("gpu_model") else ""
        job = f", job {w['current_job']} of {w['current_batch']}" if w.get("current_batch") else ""
        click.echo(f"{w['id']} {w['status']} {w['device'] or '-'}{gpu} on {w['host'] or '-'}{job} "
                   f"(seen {time.time() - w['last_seen']:.0f} s ago)" + (f": {w['error']}" if w.get("error") else ""))




@main.group()
def keys():
    """CURVE keys for an encrypted, authenticated farm."""


@keys.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
def keys_init(directory):
    """Create coordinator, worker and client key pairs in DIRECTORY (see farm/auth.py for the layout)."""
    from ..farm.auth import KeysError, init_keys

    try:
        made = init_keys(Path(directory))
    except KeysError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{len(made)} key files in {directory}: start the coordinator with --keys {directory}; give workers "
               "worker.key_secret + coordinator.key, clients client.key_secret + coordinator.key")
