"""The "Synthfarm" tab of the 3D viewport's sidebar: the recipe, labels, parameters, the four component
lists, output settings, and the runs in this scene."""
from __future__ import annotations

import bpy

from ..core import schema
from ..engine.scene import labelled_class
from . import widgets
from .operators import default_cube, unlabelled_visible
from .runs import OutputFolderError, output_folder
from .widgets import draw_problems, problems_at, recipe_problems

ICONS = {"generators": "MESH_DATA", "modifiers": "MODIFIER", "randomizers": "FORCE_TURBULENCE",
         "sensors": "CAMERA_DATA", "parameters": "DRIVER"}  # by section: the lists' item icons


class SynthfarmPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Synthfarm"


class VIEW3D_PT_synthfarm(SynthfarmPanel, bpy.types.Panel):
    bl_label = "Synthfarm"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.synthfarm
        row = layout.row(align=True)
        row.operator("synthfarm.import_recipe", icon="IMPORT")
        row.operator("synthfarm.export_recipe", icon="EXPORT")
        if not settings.recipe.kind:
            layout.label(text="No recipe on this scene yet.", icon="INFO")
            layout.label(text="Import one, or add a generator below.")
            return
        found = recipe_problems(context.scene)
        name, value = widgets.field_row(layout)
        name.label(text="Recipe")
        value.prop(settings.recipe, "name", text="")
        widgets.draw_component(layout, _only(settings.recipe, "description"), context.scene, found, "")
        name, value = widgets.field_row(layout)
        name.label(text="Recipe folder")
        value.prop(settings, "base_dir", text="")
        row = layout.row()
        row.operator("synthfarm.validate", icon="CHECKMARK")
        if found:
            row.alert = True
            row.label(text=f"{len(found)} problem(s)", icon="ERROR")
            draw_problems(layout, [f"{p}: {m}" if p else m for p, m in found], limit=3)
        else:
            row.label(text="Valid", icon="CHECKMARK")


class _Only:
    """A view of a component record limited to some fields (draw_component iterates ``fields``)."""

    def __init__(self, record, keys):
        self._record, self._keys = record, keys

    def __getattr__(self, name):
        return getattr(self._record, name)

    @property
    def fields(self):
        return [f for f in self._record.fields if f.key in self._keys]


def _only(record, *keys):
    return _Only(record, keys)


class VIEW3D_PT_synthfarm_labels(SynthfarmPanel, bpy.types.Panel):
    """The same lines whatever is selected, so that no button moves under the pointer."""

    bl_label = "Labels"
    bl_parent_id = "VIEW3D_PT_synthfarm"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.synthfarm
        row = layout.row(align=True)
        row.prop(settings, "label_class", text="")
        op = row.operator("synthfarm.assign_class", text="Assign")
        op.label, op.to_collection = settings.label_class, False
        op = row.operator("synthfarm.assign_class", text="", icon="OUTLINER_COLLECTION")
        op.label, op.to_collection = settings.label_class, True
        selected = list(context.selected_objects)
        names = [f"{o.name} ({labelled_class(o) or 'no class'})" for o in selected]
        layout.label(text=f"Selected: {summary(names, 3)}" if selected else "Nothing selected",
                     icon="RESTRICT_SELECT_OFF")
        missing = unlabelled_visible(context.scene)
        box = layout.box()
        line = box.row()
        line.alert = bool(missing)
        line.label(text=f"{len(missing)} visible without a class: {summary([o.name for o in missing], 3)}"
                   if missing else "Every visible mesh has a class", icon="ERROR" if missing else "CHECKMARK")
        buttons = box.row(align=True)
        buttons.enabled = bool(missing)
        buttons.operator("synthfarm.select_unlabelled", text="Select", icon="RESTRICT_SELECT_OFF")
        buttons.operator("synthfarm.hide_unlabelled", text="Hide", icon="RESTRICT_RENDER_ON").names = ""


def summary(words: list[str], limit: int) -> str:
    """Some names and how many more."""
    return ", ".join(words[:limit]) + (f" and {len(words) - limit} more" if len(words) > limit else "")


class SYNTHFARM_UL_items(bpy.types.UIList):
    """A list of named records (components, parameters) with their kind and problems."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_prop, index=0, flt_flag=0):
        section = item.path_from_id().split(".")[-1].split("[")[0]
        row = layout.row(align=True)
        row.prop(item, "name", text="", emboss=False, icon=ICONS.get(section, "DOT"))
        row.label(text=schema.display_name(getattr(item, "kind", "") or getattr(item, "type", "")))
        where = f"{section}.{item.name}" if section == "parameters" else f"{section}[{index}]"
        if problems_at(recipe_problems(context.scene), where):
            row.label(text="", icon="ERROR")


class SectionPanel(SynthfarmPanel):
    """One list of components (the subclasses only name the section)."""

    bl_parent_id = "VIEW3D_PT_synthfarm"
    bl_options = {"DEFAULT_CLOSED"}
    section = ""

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        settings = scene.synthfarm
        records = getattr(settings, self.section)
        active = "active_" + self.section[:-1]
        row = layout.row()
        row.template_list("SYNTHFARM_UL_items", self.section, settings, self.section, settings, active, rows=3)
        side = row.column(align=True)
        index = getattr(settings, active)
        op = side.operator("synthfarm.component_add", text="", icon="ADD")
        op.section, op.kind = self.section, ""
        widgets.list_buttons(side, f"synthfarm.{self.section}", index, f"synthfarm.{active}", add=False)
        if not 0 <= index < len(records):
            layout.label(text=f"Add a {self.section[:-1]} with +.", icon="INFO")
            return
        record = records[index]
        problems = recipe_problems(scene)
        where = f"{self.section}[{index}]"
        box = layout.box()
        name, value = widgets.field_row(box)
        name.label(text=schema.display_name(record.kind), icon=ICONS[self.section])
        value.prop(record, "name", text="")
        draw_problems(box, [m for p, m in problems if p in (where, where + ".name")])
        widgets.draw_component(box, record, scene, problems, where)


def _section_panel(section: str, label: str):
    return type(f"VIEW3D_PT_synthfarm_{section}", (SectionPanel, bpy.types.Panel),
                {"bl_label": label, "section": section, "bl_idname": f"VIEW3D_PT_synthfarm_{section}"})


VIEW3D_PT_synthfarm_generators = _section_panel("generators", "Generators")
VIEW3D_PT_synthfarm_modifiers = _section_panel("modifiers", "Modifiers")
VIEW3D_PT_synthfarm_randomizers = _section_panel("randomizers", "Randomizers")
VIEW3D_PT_synthfarm_sensors = _section_panel("sensors", "Sensors")


class VIEW3D_PT_synthfarm_parameters(SynthfarmPanel, bpy.types.Panel):
    bl_label = "Parameters"
    bl_parent_id = "VIEW3D_PT_synthfarm"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.synthfarm
        row = layout.row()
        row.template_list("SYNTHFARM_UL_items", "parameters", settings, "parameters", settings, "active_parameter",
                          rows=3)
        widgets.list_buttons(row, "synthfarm.parameters", settings.active_parameter, "synthfarm.active_parameter")
        problems = recipe_problems(context.scene)
        if 0 <= settings.active_parameter < len(settings.parameters):
            param = settings.parameters[settings.active_parameter]
            box = layout.box()
            box.prop(param, "name")
            box.prop(param, "type")
            box.prop(param, {"int": "default_i", "float": "default_f", "bool": "default_flag",
                             "choice": "default_text"}[param.type])
            if param.type in ("int", "float"):
                line = box.row(align=True)
                for end in ("min", "max"):
                    line.prop(param, "use_" + end, text="")
                    sub = line.row(align=True)
                    sub.enabled = getattr(param, "use_" + end)
                    sub.prop(param, end + ("_i" if param.type == "int" else ""))
            if param.type == "choice":
                path = f"{param.path_from_id()}.choices"
                for k, item in enumerate(param.choices):
                    line = box.row(align=True)
                    line.prop(item, "text", text=f"choice {k + 1}")
                    widgets.item_button(line, path, "REMOVE", k)
                widgets.item_button(box, path, "ADD", len(param.choices) - 1, text="Add Choice")
            box.prop(param, "description")
            draw_problems(box, problems_at(problems, f"parameters.{param.name}"))
        layout.label(text="Constraints (every job keeps them):")
        for k, rule in enumerate(settings.constraints):
            line = layout.row(align=True)
            line.prop_search(rule, "left", settings, "parameters", text="")
            line.prop(rule, "op", text="")
            line.prop(rule, "right", text="")
            widgets.item_button(line, "synthfarm.constraints", "REMOVE", k)
            draw_problems(layout, problems_at(problems, f"constraints[{k}]"))
        widgets.item_button(layout, "synthfarm.constraints", "ADD", -1, text="Add Constraint")


class VIEW3D_PT_synthfarm_output(SynthfarmPanel, bpy.types.Panel):
    bl_label = "Output"
    bl_parent_id = "VIEW3D_PT_synthfarm"
    bl_options = {"DEFAULT_CLOSED"}

    @classmethod
    def poll(cls, context):
        return bool(context.scene.synthfarm.recipe.kind)

    def draw(self, context):
        settings = context.scene.synthfarm
        keys = [f.key for f in settings.recipe.fields if f.key != "description"]
        widgets.draw_component(self.layout, _only(settings.recipe, *keys), context.scene,
                               recipe_problems(context.scene), "")


class VIEW3D_PT_synthfarm_preview(SynthfarmPanel, bpy.types.Panel):
    bl_label = "Preview and Render"
    bl_parent_id = "VIEW3D_PT_synthfarm"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        settings = scene.synthfarm
        ready = bool(settings.recipe.kind) and not recipe_problems(scene)
        row = layout.row(align=True)
        row.prop(settings, "seed")
        sub = row.row(align=True)
        sub.enabled = ready
        sub.operator("synthfarm.randomize", text="", icon="FILE_REFRESH").next_seed = False
        sub.operator("synthfarm.randomize", text="", icon="MOD_NOISE").next_seed = True
        col = layout.column(align=True)
        col.enabled = ready
        col.operator("synthfarm.randomize", icon="SHADERFX").next_seed = False
        col.operator("synthfarm.clear_sample", icon="X")
        col.operator("synthfarm.preview", icon="IMAGE_DATA")
        cube = default_cube(scene)
        if cube is not None:  # it would enclose the recipe's objects: the first preview sees its inside
            line = layout.row()
            line.alert = True
            line.operator("synthfarm.hide_unlabelled", text="Hide the Default Cube", icon="ERROR").names = cube.name
        box = layout.box()
        box.enabled = ready
        box.prop(settings, "jobs")
        box.prop(settings, "out")
        try:
            box.label(text=f"Writes to {output_folder(settings)}", icon="FILE_FOLDER")
        except OutputFolderError:
            line = box.row()
            line.alert = True
            line.label(text="Unsaved file: asks for a folder", icon="ERROR")
        box.prop(settings, "preview_quality")
        box.operator("synthfarm.render_local", icon="RENDER_ANIMATION")
        if settings.status:
            line = layout.row(align=True)
            line.progress(factor=settings.progress, type="BAR", text=settings.status)
            if settings.last_out:
                line.operator("wm.path_open", text="Open Folder", icon="FILE_FOLDER").filepath = settings.last_out
        if not ready:
            layout.label(text="Fix the recipe's problems to run it.", icon="INFO")


classes = (VIEW3D_PT_synthfarm, VIEW3D_PT_synthfarm_labels, SYNTHFARM_UL_items,
           VIEW3D_PT_synthfarm_parameters, VIEW3D_PT_synthfarm_generators, VIEW3D_PT_synthfarm_modifiers,
           VIEW3D_PT_synthfarm_randomizers, VIEW3D_PT_synthfarm_sensors, VIEW3D_PT_synthfarm_output,
           VIEW3D_PT_synthfarm_preview)
register, unregister = bpy.utils.register_classes_factory(classes)
