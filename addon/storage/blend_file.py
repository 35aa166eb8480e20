"""The recipe stored on a scene of a saved .blend: which scene holds it, and reading it from a file that is
not open (the add-on's Import Recipe links the file's scenes, reads the recipe, and removes the link again,
so the user's open file is left as it was; no Python inside the other file runs)."""
from __future__ import annotations

from pathlib import Path

import bpy

from ..core.recipe import Recipe, RecipeError
from .convert import scene_base_dir, scene_recipe

HOW_TO_ADD = ("add one in Blender: the Synthfarm tab of the 3D viewport's sidebar (N), with Import Recipe or by "
              "adding generators and sensors, then save the .blend")


def scene_with_recipe(scenes: list, active, path: Path):
    """``active`` if it holds a recipe, else the only scene that does; a RecipeError naming the scenes otherwise."""
    with_recipe = [s for s in scenes if s.synthfarm.recipe.kind]
    if active is not None and active in with_recipe:
        return active
    if len(with_recipe) == 1:
        return with_recipe[0]
    names = ", ".join(repr(s.name) for s in scenes)
    if not with_recipe:
        msg = f"no synthfarm recipe in {path.name} (scenes: {names}); {HOW_TO_ADD}"
    else:
        msg = (f"{'the active scene ' + repr(active.name) + ' of ' if active else ''}{path.name} holds no synthfarm "
               f"recipe and several scenes do ({', '.join(repr(s.name) for s in with_recipe)}): make the one to use "
               "the active scene and save the .blend")
    raise RecipeError([("", msg)], str(path))


def recipe_from_blend(path: str | Path) -> tuple[Recipe, Path]:
    """(the recipe, the folder its relative paths start from) stored in a .blend that is not the open file."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} not found")
    try:
        with bpy.data.libraries.load(str(path), link=True) as (source, linked):
            linked.scenes = list(source.scenes)
    except OSError as err:
        raise RecipeError([("", f"cannot read {path.name} as a .blend: {str(err).strip()}")], str(path)) from None
    scenes = [s for s in linked.scenes if s is not None]
    try:
        scene = scene_with_recipe(scenes, None, path)
        return scene_recipe(scene), scene_base_dir(scene)
    finally:
        for library in {s.library for s in scenes if s.library is not None}:
            bpy.data.libraries.remove(library)
