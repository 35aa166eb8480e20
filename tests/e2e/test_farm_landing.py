"""A cycle's successes land before they are recorded (farm/landing.py): a coordinator killed between the files
and the state commit loses nothing and doubles nothing. Real coordinator processes on loopback, real SQLite, real
files; the worker is a stand-in that stages its frames as the Blender child does (a real DatasetWriter)."""
import json
import signal
import time
from pathlib import Path

from farm_procs import CLI, Farm, StandIn, check_dataset

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
DIES = ROOT / "tests" / "support" / "coordinator_dies_after_landing.py"


def job_files(out: Path, job_id: int) -> dict[str, bytes]:
    """The dataset's files of a job (not its staging), by path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob(f"{job_id:010d}-*")
            if ".staging" not in p.parts}


def test_a_coordinator_killed_after_the_files_and_before_the_state_runs_the_job_again(tmp_path):
    out = tmp_path / "out"
    farm = Farm(tmp_path, workers=0, coordinator_program=(DIES,))
    try:
        farm.submit(TINY, 2, out)
        w = StandIn(f"tcp://127.0.0.1:{farm.port}", "w")
        task = w.take()
        w.render(task)  # staged, then DONE: the coordinator lands the files and dies before its state commit
        assert farm.coordinator.wait(timeout=60) == -signal.SIGKILL
        landed = job_files(out, task.job_id)
        assert len([p for p in landed if p.startswith("annotations/")]) == task.frames  # the files are in
        assert not list(out.rglob("*.tmp*"))  # no partial file
        lines = (out / "jobs.jsonl").read_text().splitlines() if (out / "jobs.jsonl").exists() else []
        assert not [line for line in lines if json.loads(line)["id"] == task.job_id]  # not recorded done

        farm.coordinator_program = CLI
        farm.coordinator = farm.start_coordinator()
        status = farm.ready()
        assert farm.client.status("batch")["jobs"]["done"] == 0, status
        # the worker's socket reconnects by itself (a second socket with its id could be refused while the
        # first one's connection lingers); its HELLO says it runs nothing: what it held is lost, the job queued again
        w.send("HELLO", w.p.Hello(worker_id=w.name))
        assert w.recv(timeout=60)[0] == "WELCOME"
        again = w.take(timeout=60)
        assert again.job_id == task.job_id and again.attempt_id != task.attempt_id
        w.render(again)
        w.render(w.take(timeout=60))
        farm.wait(lambda s: s["jobs"]["done"] == 2)
        check_dataset(out, 2, task.frames)  # each job once in jobs.jsonl, every file, no partial file
        assert job_files(out, task.job_id) == landed  # the re-run's identical files overwrote the landed ones
        attempts = farm.client.logs("batch", task.job_id)
        assert [a["status"] for a in attempts] == ["lost", "done"], attempts
        w.close()
    finally:
        farm.stop()


def test_a_task_sent_before_a_landing_that_the_coordinator_died_in_is_kept_and_given_once(tmp_path, monkeypatch):
    """A cycle's next tasks leave before its successes' files land. The coordinator dies right after those files
    (before recording them): the task it sent is committed (leased before it left), so after the restart the worker
    that holds it runs it, as that same attempt, and nobody else gets its job; the success whose recording was lost
    runs again. Every job done once, every file there, nothing partial."""
    monkeypatch.setenv("SYNTHFARM_TEST_DIE_AT_LANDING", "2")
    monkeypatch.setenv("SYNTHFARM_TEST_HOLD_SECONDS", "1.5")  # b's DONE and REQUEST arrive during the first landing
    out = tmp_path / "out"
    farm = Farm(tmp_path, workers=0, coordinator_program=(DIES,))
    try:
        farm.submit(TINY, 3, out)
        a = StandIn(f"tcp://127.0.0.1:{farm.port}", "a")
        b = StandIn(f"tcp://127.0.0.1:{farm.port}", "b")
        first, second = a.take(), b.take()
        a.render(first)  # the first landing: held
        time.sleep(0.3)
        b.render(second)  # handled with b's REQUEST in one cycle: its next task leaves, then b's files land, then death
        b.send("REQUEST", b.p.Request(worker_id="b"))
        kind, third = b.recv(timeout=60)
        assert kind == "TASK" and third.job_id == 2  # sent before the landing the coordinator died in
        assert farm.coordinator.wait(timeout=60) == -signal.SIGKILL

        farm.coordinator_program = CLI
        farm.coordinator = farm.start_coordinator()
        farm.ready()
        assert farm.client.status("batch")["jobs"]["done"] == 1, "a's job was recorded before the death"
        b.send("HELLO", b.p.Hello(worker_id="b", running=third.attempt_id))  # it runs what it was given
        assert b.recv(timeout=60)[0] == "WELCOME"
        b.render(third)
        a.send("HELLO", a.p.Hello(worker_id="a"))
        assert a.recv(timeout=60)[0] == "WELCOME"
        again = a.take(timeout=60)
        assert again.job_id == second.job_id  # the success whose recording died with the coordinator
        a.render(again)
        farm.wait(lambda s: s["jobs"]["done"] == 3)
        check_dataset(out, 3, first.frames)  # each job once in jobs.jsonl, every file, no partial file
        attempts = farm.client.logs("batch", 2)  # the task sent before the death: given once, run as that attempt
        assert [(x["id"], x["worker_id"], x["status"]) for x in attempts] == [(third.attempt_id, "b", "done")]
        assert [x["status"] for x in farm.client.logs("batch", second.job_id)] == ["lost", "done"]
        a.close()
        b.close()
    finally:
        farm.stop()
