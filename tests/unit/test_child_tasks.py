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
