"""The Blender child's work per task that does not depend on the task: done once for a batch's tasks."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_tasks_of_a_batch_parse_their_recipe_once(tmp_path, monkeypatch):
    """The Blender child parses and checks a batch's recipe once, not for every task (~2-5 ms a job), and gives the
    runner the same Recipe object (hashed once); another recipe, or the same text in another folder, is parsed anew,
    and a recipe that does not parse fails every task that carries it."""
    from synthfarm.addon.core.recipe import RecipeError
    from synthfarm.farm import blender_child

    parsed = []
    parse = blender_child.parse_recipe_text

    def counting(text, base_dir, **kw):
        parsed.append((text, base_dir))
        return parse(text, base_dir, **kw)

    monkeypatch.setattr(blender_child, "parse_recipe_text", counting)
    blender_child.task_recipe.cache_clear()
    tiny = ROOT / "tests" / "data" / "tiny.yaml"
    text, folder = tiny.read_text(), str(tiny.parent)
    first = blender_child.task_recipe(text, folder, "")
    assert all(blender_child.task_recipe(text, folder, "") is first for _ in range(3)) and len(parsed) == 1
    other = tmp_path / "tiny.yaml"
    other.write_text(text)
    assert blender_child.task_recipe(text, str(tmp_path), "") is not first and len(parsed) == 2
    for _ in range(2):
        with pytest.raises(RecipeError):
            blender_child.task_recipe("sensors: 3\n", folder, "")
    assert len(parsed) == 4


def test_an_attempts_staging_folder_holds_its_frames_files_only(tmp_path):
    """A real Blender child renders a task into its staging folder: the frames' files and their models only (what the
    coordinator lands), in the dataset's folders; no dataset.yaml or recipe.yaml made durable there for every job."""
    import threading

    import zmq

    from synthfarm.addon.core.jobs import resolve_params
    from synthfarm.addon.core.recipe import load_recipe
    from synthfarm.farm import protocol as p
    from synthfarm.farm.paths import COMMITTED_FOLDERS
    from synthfarm.farm.worker import Worker

    context = zmq.Context()
    coordinator = context.socket(zmq.ROUTER)  # the coordinator's side, played by the test
    coordinator.setsockopt(zmq.LINGER, 0)
    port = coordinator.bind_to_random_port("tcp://127.0.0.1")
    worker = Worker(f"tcp://127.0.0.1:{port}", "w0", context=context, work_dir=tmp_path / "w0", ahead=0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()

    def receive(kind, timeout):
        while coordinator.poll(int(timeout * 1000)):
            frames = coordinator.recv_multipart()
            if frames[2] == kind.encode():
                return frames
        raise AssertionError(f"no {kind} from the worker")

    try:
        identity = receive("HELLO", 120)[0]
        coordinator.send_multipart([identity, *p.encode("WELCOME", p.Welcome(heartbeat_seconds=1, liveness=3))])
        receive("REQUEST", 120)
        tiny = ROOT / "tests" / "data" / "tiny.yaml"
        staging = tmp_path / "staging"
        params = resolve_params(load_recipe(tiny), None)  # as the coordinator gives them
        task = p.Task(attempt_id="a" * 32, batch_id="b", job_id=3, recipe=tiny.read_text(),
                      recipe_dir=str(tiny.parent), params=params, seed=1, frames=1, preview=True, staging=str(staging))
        coordinator.send_multipart([identity, *p.encode("TASK", task)])
        done = p.decode(receive("DONE", 120)[1:])[1]
        assert done.ok, done.error
        top = sorted(entry.name for entry in staging.iterdir())
        assert "annotations" in top and set(top) <= COMMITTED_FOLDERS, top
        files = [f for f in staging.rglob("*") if f.is_file()]
        assert files and all(f.name.startswith("0000000003-0000-") for f in files if f.parent.name != "models"), files
    finally:
        worker.stop()
        thread.join(timeout=30)
        context.destroy(linger=0)
