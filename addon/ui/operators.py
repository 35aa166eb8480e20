"""Operators of the add-on: editing the scene recipe, labels, import/export, validation, and the runs
in the user's scene (Randomize, Preview, Render Locally). They are thin: read the scene recipe into
the core model, call the engine, report errors with ``self.report``."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import bpy
import yaml
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..core import schema
from ..core.recipe import RecipeError, load_recipe, rebase_paths
from ..engine.scene import CLASS_PROP, labelled_class
from .. import storage

log = logging.getLogger(__name__)
SECTION_ITEMS = [(s, s.title(), f"The recipe's {s}") for s in schema.SECTIONS]


def report_error(op, err, what: str = "") -> set:
    """Report an error on ``op`` (shown in Blender's status bar) and cancel."""
    op.report({"ERROR"}, f"{what}{err}")
    return {"CANCELLED"}


class SYNTHFARM_OT_list_edit(bpy.types.Operator):
    """Add, remove, duplicate or move an item of a synthfarm list"""

    bl_idname = "synthfarm.list_edit"
    bl_label = "Edit List"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    path: StringProperty(name="List", description="Data path of the list, from the scene")
    action: EnumProperty(name="Action", items=[(a, a.title(), a.title() + " an item") for a in
                                               ("ADD", "REMOVE", "DUPLICATE", "UP", "DOWN")])
    index: IntProperty(name="Index", description="The item acted on", default=-1)
    active: StringProperty(name="Active", description="Data path of the list's active index, if any")

    @classmethod
    def description(cls, context, properties):
        return {"ADD": "Add an item", "REMOVE": "Remove this item", "DUPLICATE": "Duplicate this item",
                "UP": "Move this item up", "DOWN": "Move this item down"}[properties.action]

    def execute(self, context):
        scene = context.scene
        items = scene.path_resolve(self.path)
        n, i = len(items), self.index
        if self.action != "ADD" and not 0 <= i < n:
            return report_error(self, f"{self.path}: no item {i} (the list has {n})")
        target = i
        if self.action == "ADD":
            new = items.add()
            if 0 <= i < n:  # options and list items start as a copy of the one before
                storage.copy_group(items[i], new)
            target = len(items) - 1
        elif self.action == "REMOVE":
            items.remove(i)
            target = min(i, len(items) - 1)
        elif self.action == "DUPLICATE":
            new = items.add()
            storage.copy_group(items[i], new)
            if "name" in new.bl_rna.properties and new.name:
                new.name = unique_name([x.name for x in items][:-1], new.name)
            items.move(len(items) - 1, i + 1)
            target = i + 1
        else:
            target = max(0, min(n - 1, i + (-1 if self.action == "UP" else 1)))
            items.move(i, target)
        if self.active:
            owner, prop = self.active.rsplit(".", 1)
            setattr(scene.path_resolve(owner), prop, max(target, 0))
        return {"FINISHED"}


def unique_name(taken: list[str], base: str) -> str:
    """``base``, or ``base_2``, ``base_3``... when taken."""
    if base not in taken:
        return base
    stem, n = re.sub(r"_\d+$", "", base), 2
    while f"{stem}_{n}" in taken:
        n += 1
    return f"{stem}_{n}"


class SYNTHFARM_OT_component_add(bpy.types.Operator):
    """Add a component of the chosen kind with its default settings"""

    bl_idname = "synthfarm.component_add"
    bl_label = "Add Component"
    bl_options = {"REGISTER", "UNDO"}

    section: EnumProperty(name="Section", items=SECTION_ITEMS)
    kind: StringProperty(name="Kind", description="Which kind of component (empty: choose from a menu)")

    def invoke(self, context, event):
        if self.kind:
            return self.execute(context)
        section, idname = self.section, self.bl_idname

        def draw(menu, context):
            for kind in schema.KINDS[section]:
                op = menu.layout.operator(idname, text=schema.display_name(kind))
                op.section, op.kind = section, kind

        context.window_manager.popup_menu(draw, title=f"Add to {section}")
        return {"CANCELLED"}  # the menu's choice runs the operator again; this call changes nothing

    def execute(self, context):
        settings = context.scene.synthfarm
        if self.kind not in schema.KINDS[self.section]:
            return report_error(self, f"kind: {self.kind!r} is not a kind of {self.section}; "
                                f"choose from {', '.join(schema.KINDS[self.section])}")
        if not settings.recipe.kind:
            start_recipe(context.scene)
        records = getattr(settings, self.section)
        name = unique_name([r.name for r in records], self.kind)
        storage.new_component(records, self.section, self.kind, name)
        setattr(settings, "active_" + self.section[:-1], len(records) - 1)
        return {"FINISHED"}


def start_recipe(scene) -> None:
    """An empty recipe named after the scene (the first edit of a scene without one)."""
    settings = scene.synthfarm
    settings.recipe.kind, settings.recipe.name = "recipe", _safe_name(scene.name)
    storage.store_component(settings.recipe, schema.top_fields(), {})


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in text) or "recipe"


class SYNTHFARM_OT_field_help(bpy.types.Operator):
    """What this field means"""

    bl_idname = "synthfarm.field_help"
    bl_label = "Field"
    bl_options = {"INTERNAL"}

    kind: StringProperty()
    section: StringProperty()
    key: StringProperty()

    @classmethod
    def description(cls, context, properties):
        spec = _spec_of(properties.section, properties.kind, properties.key)
        return schema.field_help(properties.kind, spec) if spec else properties.key

    def execute(self, context):
        spec = _spec_of(self.section, self.kind, self.key)
        self.report({"INFO"}, schema.field_help(self.kind, spec) if spec else self.key)
        return {"FINISHED"}


def _spec_of(section: str, kind: str, key: str):
    fields = schema.top_fields() if kind == "recipe" else schema.fields_of(schema.component_model(section, kind))
    return next((f for f in fields if f.id == key), None)


# -- recipe files -------------------------------------------------------------------------------------------
class SYNTHFARM_OT_import_recipe(bpy.types.Operator, ImportHelper):
    """Replace this scene's recipe with a recipe file (YAML) or the recipe saved in another .blend"""

    bl_idname = "synthfarm.import_recipe"
    bl_label = "Import Recipe"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".yaml"
    filter_glob: StringProperty(default="*.yaml;*.yml;*.blend", options={"HIDDEN"})

    def execute(self, context):
        path = Path(self.filepath)
        try:
            if path.suffix.lower() == ".blend":
                recipe, folder = storage.recipe_from_blend(path)
            else:
                recipe, folder = load_recipe(path), path.resolve().parent
        except (RecipeError, FileNotFoundError) as err:
            return report_error(self, err)
        settings = context.scene.synthfarm
        storage.store_recipe(settings, recipe)
        settings.base_dir = bpy.path.relpath(str(folder)) if bpy.data.filepath else str(folder)
        self.report({"INFO"}, f"imported recipe {recipe.name!r} from {self.filepath}")
        for warning in scene_warnings(context.scene):
            self.report({"WARNING"}, warning)
        return {"FINISHED"}


def default_cube(scene):
    """Blender's default cube, untouched, when it still renders in ``scene`` (it encloses a recipe's scene)."""
    cube = scene.objects.get("Cube")
    if (cube is None or cube.type != "MESH" or cube.hide_render or not cube.visible_get() or labelled_class(cube)
            or len(cube.data.vertices) != 8 or tuple(cube.dimensions) != (2.0, 2.0, 2.0)
            or cube.matrix_world.translation.length > 1e-6):
        return None
    return cube


def scene_warnings(scene) -> list[str]:
    """What in the open scene will surprise a first Preview (the scene is the base of the runs)."""
    cube = default_cube(scene)
    others = [o.name for o in unlabelled_visible(scene) if o is not cube]
    out = []
    if cube is not None:
        out.append("the default cube is still in this scene and renders around the recipe's objects (the "
                   "camera would see its inside): delete it, or Hide it from renders (Labels or Preview panel)")
    if others:
        out.append(f"{len(others)} visible object(s) without a class render in every frame with no labels: "
                   f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''} (give them a class in Labels, "
                   "or hide them from renders)")
    return out


class SYNTHFARM_OT_export_recipe(bpy.types.Operator, ExportHelper):
    """Write this scene's recipe to a YAML file (paths are made relative to where it is written)"""

    bl_idname = "synthfarm.export_recipe"
    bl_label = "Export Recipe"

    filename_ext = ".yaml"
    filter_glob: StringProperty(default="*.yaml;*.yml", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        return bool(context.scene.synthfarm.recipe.kind)

    def execute(self, context):
        scene = context.scene
        try:
            recipe = storage.scene_recipe(scene, check_files=False)
        except RecipeError as err:
            return report_error(self, err)
        target = Path(self.filepath)
        data = rebase_paths(recipe.to_data(), storage.scene_base_dir(scene), target.resolve().parent)
        source = bpy.data.filepath or "unsaved file"
        header = f"# synthfarm recipe exported from Blender ({source}, scene {scene.name})\n"
        target.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        self.report({"INFO"}, f"wrote {target}")
        return {"FINISHED"}


class SYNTHFARM_OT_validate(bpy.types.Operator):
    """Check the scene's recipe: every field, the names between components, the files it uses"""

    bl_idname = "synthfarm.validate"
    bl_label = "Validate"

    def execute(self, context):
        scene = context.scene
        if not scene.synthfarm.recipe.kind:
            return report_error(self, "this scene has no recipe yet: add a generator or Import Recipe")
        found = storage.problems(scene)
        for path, message in found:
            self.report({"WARNING"}, f"{path}: {message}" if path else message)
        if found:
            self.report({"ERROR"}, f"{len(found)} problem(s) in the recipe; they are shown next to their fields")
            return {"CANCELLED"}
        self.report({"INFO"}, f"recipe {scene.synthfarm.recipe.name!r} is valid")
        return {"FINISHED"}


# -- labels -----------------------------------------------------------------------------------------------------
def unlabelled_visible(scene) -> list:
    """Mesh objects that render but have no class (their own or a collection's)."""
    return [o for o in scene.objects if o.type == "MESH" and not o.hide_render and o.visible_get()
            and not labelled_class(o) and not o.get("synthfarm_generator")]


class SYNTHFARM_OT_assign_class(bpy.types.Operator):
    """Label the selected objects (or the active collection) with a class"""

    bl_idname = "synthfarm.assign_class"
    bl_label = "Assign Class"
    bl_options = {"REGISTER", "UNDO"}

    label: StringProperty(name="Class", description="The class label (empty: remove the label)")
    to_collection: BoolProperty(name="Active collection", description="Label the active collection instead")

    def execute(self, context):
        label = self.label.strip()
        targets = [context.collection] if self.to_collection else list(context.selected_objects)
        if not targets or targets == [context.scene.collection]:
            return report_error(self, "select objects (or make a collection active) to label")
        for target in targets:
            if label:
                target[CLASS_PROP] = label
            else:
                target.pop(CLASS_PROP, None)
        what = f"class {label!r}" if label else "no class"
        self.report({"INFO"}, f"{len(targets)} {'collection' if self.to_collection else 'object(s)'} now have {what}")
        return {"FINISHED"}


class SYNTHFARM_OT_select_unlabelled(bpy.types.Operator):
    """Select the visible mesh objects that have no class (they get no annotations)"""

    bl_idname = "synthfarm.select_unlabelled"
    bl_label = "Select Unlabelled"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        found = unlabelled_visible(context.scene)
        for obj in context.scene.objects:
            obj.select_set(obj in found)
        self.report({"INFO"}, f"{len(found)} unlabelled object(s) selected")
        return {"FINISHED"}


class SYNTHFARM_OT_hide_unlabelled(bpy.types.Operator):
    """Hide the visible mesh objects without a class from renders (the default cube, a stray floor...);
    Ctrl-Z or the outliner's camera icon brings them back"""

    bl_idname = "synthfarm.hide_unlabelled"
    bl_label = "Hide from Render"
    bl_options = {"REGISTER", "UNDO"}

    names: StringProperty(name="Objects", description="Only these objects (comma separated); empty: every one")

    def execute(self, context):
        wanted = {n.strip() for n in self.names.split(",") if n.strip()}
        found = [o for o in unlabelled_visible(context.scene) if not wanted or o.name in wanted]
        for obj in found:
            obj.hide_render = True
        self.report({"INFO"}, f"hidden from renders: {', '.join(o.name for o in found) or 'nothing'}")
        return {"FINISHED"}


classes = (SYNTHFARM_OT_list_edit, SYNTHFARM_OT_component_add, SYNTHFARM_OT_field_help, SYNTHFARM_OT_import_recipe,
           SYNTHFARM_OT_export_recipe, SYNTHFARM_OT_validate, SYNTHFARM_OT_assign_class,
           SYNTHFARM_OT_select_unlabelled, SYNTHFARM_OT_hide_unlabelled)
register, unregister = bpy.utils.register_classes_factory(classes)
