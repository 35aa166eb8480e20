"""The coordinator's answers to clients: submit (every field checked, the dataset's place and the recipe's files
within what the coordinator allows), status with where a batch stands and why, paged job lists, cancel,
retry, priorities. A mixin of :class:`Coordinator`; every request runs in its own savepoint."""
from __future__ import annotations

from pathlib import Path

from ..addon.core.dataset.identity import batch_identity
from ..addon.core.dataset.native import DatasetError, DatasetWriter
from ..addon.core.jobs import resolve_params
from ..addon.core.recipe import RecipeError, parse_recipe_text
from . import protocol as p
from .objectstore import StorageError, is_url
from .paths import RequestError, dataset_folder, recipe_root
from .store import StoreError
from .transfer import TransferError

READS = {"STATUS", "LIST", "WORKERS", "JOBS", "LOGS", "ESTIMATE"}  # what is answered while the state cannot be written


def batch_record(seed: int, preview: bool, params: dict, jobs: list[tuple[dict, int]]) -> dict:
    """What dataset.yaml says of a batch: the parameter values its jobs use. Jobs crafted one by one (the
    batch API) are recorded as ``job_params`` (each parameter's values in job order) and ``job_seeds``;
    otherwise every job uses ``params`` with seeds derived from ``seed``."""
    if not jobs:
        return {"seed": seed, "preview": preview, "params": params}
    names = list(jobs[0][0])
    return {"preview": preview, "jobs": len(jobs),
            "job_params": {name: [values[name] for values, _ in jobs] for name in names},
            "job_seeds": [job[1] for job in jobs]}


class ClientRequests:
    def _on_client(self, frames: list[bytes]) -> None:
        if len(frames) < 2:
            self.dropped["malformed"] += 1
            return
        identity = frames[0]
        try:
            kind, msg = p.decode(frames[1:], p.CLIENT_TYPES)
        except p.VersionMismatch as err:
            self._refuse("clients", identity, err)
            return
        except p.ProtocolError as err:
            self.dropped["malformed"] += 1
            self._send("clients", identity, "REPLY", p.Reply(ok=False, error=str(err)))
            return
        try:
            with self.store.request():  # a refused request keeps nothing
                reply = p.Reply(ok=True, data=self._answer(kind, msg))
        except (StoreError, RecipeError, ValueError, DatasetError, TransferError, StorageError) as err:
            reply = p.Reply(ok=False, error=str(err))
        except OSError as err:
            reply = p.Reply(ok=False, error=f"{kind.lower()}: {err.strerror or err} ({err.filename or ''})")
        self._send("clients", identity, "REPLY", reply)

    def _answer(self, kind: str, msg) -> dict:
        if self.state_error and kind not in READS:
            raise RequestError(self.state_error)
        if kind == "SUBMIT":
            return self._submit(msg)
        if kind == "STATUS" and msg.batch_id:
            return self.summary(msg.batch_id)
        if kind in ("STATUS", "LIST"):  # the newest page of batches
            batches = [self.summary(b) for b in self.store.batch_ids(self.settings.page_size)]
            return {"batches": batches, "dropped": dict(self.dropped), "state_error": self.state_error,
                    "transfer_port": int(self.transfer_endpoint.rsplit(":", 1)[1])}
        if kind == "WORKERS":
            return {"workers": [{**w, "error": self.worker_errors.get(w["id"], "")} for w in self.fleet.workers()]}
        if kind == "JOBS":
            limit = min(msg.limit, self.settings.page_size)
            jobs = self.fleet.jobs(msg.batch_id, self.store.jobs(msg.batch_id, msg.offset, limit))
            return {"jobs": jobs, "next": jobs[-1]["job_id"] + 1 if len(jobs) == limit else None}
        if kind == "LOGS":
            return {"attempts": self.store.attempts_of(msg.batch_id, msg.job_id)}
        if kind == "ESTIMATE":
            found = self.store.seconds_per_frame(msg.recipe_hash, msg.preview)
            return {"seconds_per_frame": found[0], "jobs_measured": found[1]} if found else {}
        if kind == "SET_PRIORITY":
            self.store.set_priority(msg.batch_id, msg.priority)
            return self.summary(msg.batch_id)
        if kind == "CANCEL_BATCH":
            for attempt_id, worker_id in self.store.cancel(msg.batch_id):
                self._send("workers", worker_id.encode(), "CANCEL", p.Cancel(attempt_id=attempt_id))
            self._event(msg.batch_id, kind="batch", status="cancelled")
            return self.summary(msg.batch_id)
        if kind == "RETRY":
            return {"requeued": self.store.retry(msg.batch_id), **self.summary(msg.batch_id)}
        raise ValueError(f"unhandled {kind}")

    def _submit(self, msg: p.Submit) -> dict:
        count = len(msg.jobs) or msg.count
        if count > self.settings.max_jobs_per_batch:
            raise RequestError(f"count: {count} jobs is more than this coordinator takes in one batch "
                               f"({self.settings.max_jobs_per_batch}); split it into several batches")
        # a dataset in a bucket: its own files live in a local mirror, its frames go straight to the bucket
        out = self.buckets.prepare(msg.out) if is_url(msg.out) else dataset_folder(self.settings, msg.out)
        if msg.inputs:  # no shared file system: every input must be here, and the recipe is checked against them
            missing = [h for h in msg.inputs.values() if not self.transfer.blobs.has(h)]
            if missing:
                raise ValueError(f"{len(missing)} input files were not uploaded; upload them first (synthfarm submit "
                                 "does this)")
            if msg.inputs.get(msg.recipe_path) is None:
                raise ValueError(f"recipe_path {msg.recipe_path!r} is not one of the inputs")
            recipe = parse_recipe_text(msg.recipe, None, check_files=False, max_nodes=self.settings.max_yaml_nodes)
        else:  # a shared file system: nothing outside the allowed root is looked at
            root = recipe_root(self.settings, msg.recipe_dir)
            parse_recipe_text(msg.recipe, Path(msg.recipe_dir), check_files=False, root=root,
                              max_nodes=self.settings.max_yaml_nodes)
            recipe = parse_recipe_text(msg.recipe, Path(msg.recipe_dir), root=root)
        params = resolve_params(recipe, msg.params)
        jobs = []
        for i, job in enumerate(msg.jobs):
            try:
                jobs.append((resolve_params(recipe, job.params), job.seed))
            except ValueError as err:
                raise ValueError(f"job {i}: {err}") from None
        frames = 1 if msg.preview else recipe.frames
        identity = batch_identity(recipe, preview=msg.preview, seed=msg.seed, params=params, jobs=jobs)
        done = DatasetWriter(out).open(msg.recipe, identity, {
            "name": recipe.name, "batch": batch_record(msg.seed, msg.preview, params, jobs)}, jobs=jobs)
        batch, created = self.store.submit(msg.batch_id, name=msg.name or recipe.name, recipe=msg.recipe,
                                           recipe_dir=msg.recipe_dir, out=str(out), count=count, seed=msg.seed,
                                           params=params, frames=frames, preview=msg.preview,
                                           priority=msg.priority, inputs=msg.inputs, recipe_path=msg.recipe_path,
                                           recipe_hash=recipe.hash(), jobs=jobs, hang_after=recipe.farm.hang_after)
        if created:
            self.fleet.set_requires(msg.batch_id, msg.requires)
            if is_url(msg.out):
                self.buckets.remember(msg.batch_id, msg.out)
        if created and done:  # resuming into a dataset: its complete jobs are not rendered again
            self.store.db.executemany("UPDATE jobs SET status='done' WHERE batch_id=? AND job_id=?",
                                      ((msg.batch_id, j) for j in done if j < count))
        if self.store.batch_finished(msg.batch_id):
            self._finish_batch(batch)
        return {**self.summary(msg.batch_id), "new": created}

    def summary(self, batch_id: str) -> dict:
        """A batch's counts, errors, and a line saying where it stands and why (status shows it)."""
        summary = self.fleet.status(self.store.summary(batch_id), sorted(self._live()))  # + what it waits for
        if self.buckets.url_of(batch_id):
            summary["out"] = self.buckets.url_of(batch_id)
        jobs, why = summary["jobs"], []
        if summary["status"] == "cancelled":
            why.append("cancelled")
        elif summary["paused"]:
            why.append(f"paused: {summary['paused']}")
        elif jobs["queued"] + jobs["running"] == 0:
            why.append("finished")
        elif summary.get("waiting_for"):
            why.append(summary["waiting_for"])
        elif not self._seen:
            why.append("waiting for a worker (none connected)")
        else:
            why.append("running" + (f" ({summary['held']} of the queued jobs held ahead by workers)"
                                    if summary["held"] else ""))
        if jobs["failed"]:
            first = summary["errors"][0]
            why.append(f"{jobs['failed']} job{'s' * (jobs['failed'] > 1)} failed after {self.settings.max_attempts} "
                       f"attempts (job {first['job_id']}: {(first['error'].splitlines() or [''])[0][:200]})")
        if summary["blocked"]:
            why.append(f"{', '.join(summary['blocked'])} left out after failing {self.settings.block_after} of its "
                       "jobs (others take them; retry clears this)")
        if self.state_error:
            why.insert(0, self.state_error)
        return {**summary, "reason": "; ".join(why)}
