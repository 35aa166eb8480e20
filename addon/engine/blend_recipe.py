"""A saved .blend as a job input: the recipe is read from its scene (where the add-on stores it) and the
file itself becomes the scene the workers start from.

Opening the file replaces this Blender session's data (fine in a CLI process; the add-on never calls
this on the user's open file). Python inside the file never runs.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from ..core.recipe import RecipeError, rebase_paths

log = logging.getLogger(__name__)

@contextmanager
def _blender_chatter_to_stderr():
    """Blender reports ``Read blend: ...`` on the process's stdout, which may carry a command's output
    (``synthfarm params --json``, the batch id of ``submit``): send it to stderr while the file opens."""
    saved = None
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. inside Blender's UI): leave it
        if saved is not None:
            os.close(saved)
            saved = None
    try:
        yield
    finally:
        if saved is not None:
            try:
                import ctypes

                ctypes.CDLL(None).fflush(None)  # C stdio buffers go where they were written: stderr
            except (OSError, AttributeError, TypeError):
                pass
            os.dup2(saved, 1)
            os.close(saved)


def recipe_text_from_blend(path: str | Path) -> tuple[str, Path]:
    """(recipe YAML, the .blend's folder) of the recipe stored on a .blend's scene.

    The recipe's relative paths are rewritten to start at the .blend's folder (wherever the scene's
    Recipe folder pointed), and ``scene.base`` names the .blend itself, so the file and what the recipe
    names form one bundle a remote worker can lay out. Raises FileNotFoundError or RecipeError."""
    import bpy

    from .. import storage

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} not found")
    try:  # Python auto-execution stays off: scripts inside a job's .blend never run
        with _blender_chatter_to_stderr():
            bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False, use_scripts=False)
    except RuntimeError as err:
        raise RecipeError([("", f"cannot open {path.name} as a .blend: {str(err).strip()}")], str(path)) from None
    storage.ensure_registered()
    scene = storage.scene_with_recipe(list(bpy.data.scenes), bpy.context.scene, path)
    data = storage.scene_recipe(scene).to_data()  # validated; Blender's // paths already made recipe-relative
    stored_base = (data.get("scene") or {}).get("base")
    if stored_base:
        log.warning("%s: its recipe names scene.base %r; the .blend itself is used as the base scene instead",
                    path.name, stored_base)
    data = rebase_paths(data, storage.scene_base_dir(scene).resolve(), path.parent)
    data["scene"] = {**(data.get("scene") or {}), "base": path.name}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), path.parent
