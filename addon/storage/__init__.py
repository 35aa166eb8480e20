"""The recipe stored on a scene: PropertyGroups saved in the .blend (:mod:`.properties`) and their exact
conversion to and from the Recipe model (:mod:`.convert`), and the recipe of a saved .blend (:mod:`.blend_file`). Used by the add-on's UI and by the headless
engine when a .blend is a job input; imports neither."""
from .blend_file import recipe_from_blend, scene_with_recipe
from .convert import (absolute_blender_paths, new_component, problems, recipe_data, scene_base_dir, scene_recipe,
                      store_component, store_recipe)
from .properties import (BLEND_RELATIVE, arg_slots, classes, copy_group, ensure_registered, f32, field_spec,
                         register, resize_args, specs_of, unregister, view_of)

__all__ = ["recipe_from_blend", "scene_with_recipe", "absolute_blender_paths", "new_component", "problems",
           "recipe_data", "scene_base_dir", "scene_recipe", "store_component", "store_recipe", "BLEND_RELATIVE", "arg_slots", "classes", "copy_group",
           "ensure_registered", "f32", "field_spec", "register", "resize_args", "specs_of", "unregister", "view_of"]
