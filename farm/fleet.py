"""What the coordinator knows of its fleet beyond scheduling: workers' capabilities against batches'
requirements (which batch a worker may take, and why a batch waits), and the views that clients and the
dashboard read (workers with their device and current job, jobs with their attempts and log's end)."""
from __future__ import annotations

from .capabilities import Capabilities, Requirements
from .store import Store


class Fleet:
    def __init__(self, store: Store):
        self.store = store
        self.caps = {w: Capabilities.model_validate(c) for w, c in store.capabilities().items()}
        self._requires: dict[str, Requirements] = {}

    def hello(self, worker_id: str, caps: Capabilities | None) -> None:
        caps = caps or Capabilities()  # a worker that reports nothing is taken for a CPU worker
        self.caps[worker_id] = caps
        self.store.set_capabilities(worker_id, caps.model_dump())

    def set_requires(self, batch_id: str, requires: Requirements) -> None:
        self.store.set_requires(batch_id, requires.model_dump(exclude_defaults=True))
        self._requires[batch_id] = requires

    def requires(self, batch_id: str) -> Requirements:
        if batch_id not in self._requires:
            self._requires[batch_id] = Requirements.model_validate(self.store.requires(batch_id))
        return self._requires[batch_id]

    def accepts(self, worker_id: str):
        """For Store.lease: may this worker take jobs of a batch?"""
        caps = self.caps.get(worker_id, Capabilities())
        return lambda batch_id: self.requires(batch_id).unmet(caps) is None

    def waiting_for(self, batch_id: str, live: list[str]) -> str | None:
        """Why a batch's queued jobs cannot go anywhere now (no live worker meets its requirements), or None."""
        requires = self.requires(batch_id)
        unmet = [requires.unmet(self.caps.get(w, Capabilities())) for w in live]
        if all(unmet):
            return (f"waiting for a worker with {unmet[0] if unmet else requires.describe()} (required: "
                    f"{requires.describe()}; {len(live)} connected worker{'s' if len(live) != 1 else ''} lack it)")
        return None

    def status(self, summary: dict, live: list[str]) -> dict:
        if summary["jobs"]["queued"] and summary["status"] == "active":
            why = self.waiting_for(summary["id"], live)
            if why:
                return {**summary, "waiting_for": why}
        return summary

    def workers(self) -> list[dict]:
        running = self.store.running_jobs()
        out = []
        for worker in self.store.workers():
            caps = self.caps.get(worker["id"])
            batch_job = running.get(worker["id"])
            out.append({**worker, **(caps.model_dump() if caps else {}),
                        "current_batch": batch_job[0] if batch_job else None,
                        "current_job": batch_job[1] if batch_job else None})
        return out

    def jobs(self, batch_id: str, jobs: list[dict]) -> list[dict]:
        if not jobs:
            return jobs
        last = self.store.last_attempts(batch_id, jobs[0]["job_id"], jobs[-1]["job_id"])
        return [{"attempts": 0, "worker": None, "log_tail": "", **job, **last.get(job["job_id"], {})} for job in jobs]
