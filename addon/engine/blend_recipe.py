"""A saved .blend as a job input: the recipe is read from its scene (where the add-on stores it) and the
file itself becomes the scene the workers start from."""
from __future__ import annotations

import logging
from pathlib import Path

import yaml

from ..core.recipe import RecipeError, rebase_paths

log = logging.getLogger(__name__)


def recipe_text_from_blend(path: str | Path) -> tuple[str, Path]:
    """(recipe YAML, the .blend's folder) of the recipe stored in a .blend, its paths relative to that
    folder. The file is opened in this Blender (scripts inside it never run); ``scene.base`` names it."""
    import bpy

    from ..ui import props

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} not found")
    bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False, use_scripts=False)
    props.ensure_registered()
    with_recipe = [s for s in bpy.data.scenes if s.synthfarm.recipe.kind]
    scene = bpy.context.scene if bpy.context.scene in with_recipe else (
        with_recipe[0] if len(with_recipe) == 1 else None)
    if scene is None:
        where = (f"several scenes hold one ({', '.join(s.name for s in with_recipe)}); make the one to render "
                 "the active scene and save") if with_recipe else (
            "add one in Blender: 3D viewport sidebar > Synthfarm (Import Recipe, or add a generator), then save")
        raise RecipeError([("", f"no synthfarm recipe on the active scene of {path.name}: {where}")], str(path))
    data = props.scene_recipe(scene).to_data()
    if data.get("scene", {}).get("base"):
        log.warning("%s: its recipe names scene.base %r; the .blend itself is the base", path.name,
                    data["scene"]["base"])
    # Paths are rebased to the .blend's folder, so the file and what it names form one bundle for a farm.
    data = rebase_paths(data, props.scene_base_dir(scene), path.parent)
    data["scene"] = {"base": path.name}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), path.parent
