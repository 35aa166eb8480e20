"""The panels as a user reads them: one line per field, numbers in their units, integers as integers,
acronyms as written, long lists folded, lines that stay put while the selection changes, Blender's own icons,
progress as a bar (drawn with the recording layout of tests/support/layout_recorder.py)."""
from __future__ import annotations

import math
import re
from pathlib import Path

import bpy
import pytest

from synthfarm.addon import storage
from synthfarm.addon.core import schema
from synthfarm.addon.core.recipe import parse_recipe_text
from synthfarm.addon.ui import panels
from synthfarm.farm import ui as farm_ui

from layout_recorder import draw, draw_list_item

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("assets/recipes/*.yaml")) + sorted(ROOT.glob("tests/data/*.yaml"))
TINY = ROOT / "tests/data/tiny.yaml"
BLENDER_UNIT = {"m": "LENGTH", "mm": "CAMERA", "deg": "ROTATION", "K": "COLOR_TEMPERATURE", "W": "POWER",
                "s": "TIME_ABSOLUTE"}


def _store(scene, path: Path):
    storage.store_recipe(scene.synthfarm, parse_recipe_text(path.read_text(), path.parent, check_files=False))
    scene.synthfarm.base_dir = str(path.parent)


def _field_entries(layout, field) -> list[int]:
    """Indices of what was drawn for one field record: its properties, its arguments', its list buttons."""
    path = field.path_from_id()
    out = []
    for i, entry in enumerate(layout.log):
        if entry[0] == "prop" and hasattr(entry[1], "path_from_id"):
            drawn = entry[1].path_from_id()
        elif entry[0] == "operator":
            drawn = entry[2].values.get("path") or ""
        else:
            continue
        if drawn == path or drawn.startswith(path + "."):
            out.append(i)
    return out


def _one_line_forms(field, spec) -> bool:
    """Fields whose every value form fits one line: all but vector distributions, clipped normals and
    unfolded lists or options."""
    if spec.widget == "value":
        if field.mode == "choice":
            return len(field.args) > 3 and not field.show_expanded
        return field.mode in ("constant", "param") or (spec.domain.kind != "vector" and not field.use_clip)
    if spec.widget in ("names", "weights"):
        return len(field.items) <= 1 or (len(field.items) > 3 and not field.show_expanded)
    return spec.widget != "flags" or not field.show_expanded


def drawn_fields(settings):
    """(layout, record, field, spec) for every field of every component, each drawn as the active one."""
    for section in schema.SECTIONS:
        panel = getattr(panels, f"VIEW3D_PT_synthfarm_{section}")
        for i, record in enumerate(getattr(settings, section)):
            setattr(settings, f"active_{section[:-1]}", i)
            layout = draw(panel)
            specs = storage.specs_of(record)
            for field in record.fields:
                yield layout, record, field, specs[field.key]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_one_line_per_field(addon, path):
    _store(addon, path)
    checked = 0
    for layout, record, field, spec in drawn_fields(addon.synthfarm):
        if _one_line_forms(field, spec):
            entries = _field_entries(layout, field)
            lines = {layout.line_key(k) for k in entries}
            assert len(lines) == 1, (record.kind, field.key, layout.lines(entries))
            checked += 1
    assert checked > 10


def test_the_lights_randomizer_fits_a_screen(addon):
    """The issue saw the lights randomizer alone taller than the screen (three lines per field)."""
    _store(addon, TINY)
    settings = addon.synthfarm
    settings.active_randomizer = [r.kind for r in settings.randomizers].index("lights")
    record = settings.randomizers[settings.active_randomizer]
    layout = draw(panels.VIEW3D_PT_synthfarm_randomizers)
    assert len(layout.lines()) <= len(record.fields) + 4, layout.lines()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_numbers_show_their_unit_and_integers_are_integers(addon, path):
    _store(addon, path)
    units = set()
    for layout, record, field, spec in drawn_fields(addon.synthfarm):
        for k in _field_entries(layout, field):
            data, prop = layout.log[k][1:3]
            rna = data.bl_rna.properties[prop] if layout.log[k][0] == "prop" else None
            if rna is None or rna.type not in ("FLOAT", "INT") or prop == "weight":
                continue
            if spec.widget == "int" or (spec.domain and spec.domain.kind == "int"
                                        and field.mode in ("constant", "randint", "choice")):
                assert rna.type == "INT", (record.kind, field.key, prop)
            if spec.unit and rna.type == "FLOAT":
                assert rna.unit == BLENDER_UNIT[spec.unit], (record.kind, field.key, prop, rna.unit)
                units.add(spec.unit)
    if path == TINY:
        assert {"m", "deg", "K", "W"} <= units


def test_an_int_parameter_shows_whole_numbers(addon):
    _store(addon, ROOT / "assets/recipes/toybox.yaml")
    settings = addon.synthfarm
    settings.active_parameter = next(i for i, p in enumerate(settings.parameters) if p.type == "int")
    param = settings.parameters[settings.active_parameter]
    param.use_min = param.use_max = True
    layout = draw(panels.VIEW3D_PT_synthfarm_parameters)
    drawn = [e[2] for e in layout.log if e[0] == "prop" and e[1] == param]
    assert "min_i" in drawn and "max_i" in drawn and "min" not in drawn
    param.max_i = 25
    assert param.max == 25.0 and storage.recipe_data(settings)["parameters"][param.name]["max"] == 25.0


def test_degrees_are_shown_as_angles_and_stored_as_written(addon):
    _store(addon, TINY)
    field = next(f for f in addon.synthfarm.randomizers[0].fields if f.key == "azimuth")
    low, high = field.args
    assert math.isclose(low.f_deg, math.radians(-60), rel_tol=1e-6)
    for degrees in (30.0, 359.5, 360.0, -60.0, 12.25):
        low.f_deg = math.radians(degrees)  # what Blender hands over when a user types "<degrees>" (single precision)
        assert low.f == degrees
    low.f_deg = math.radians(-45.5)
    assert storage.scene_recipe(addon, check_files=False).randomizers[0].azimuth.to_data() == {
        "uniform": [-45.5, -30.0]}


def test_acronyms_as_written(addon):
    _store(addon, ROOT / "assets/recipes/toybox.yaml")
    settings = addon.synthfarm
    next(f for f in settings.recipe.fields if f.key == "output.formats").items.add().text = "kitti"
    settings.active_sensor = 0
    fov = next(f for f in settings.sensors[0].fields if f.key == "fov")
    texts = draw(panels.VIEW3D_PT_synthfarm_sensors).texts() + draw(panels.VIEW3D_PT_synthfarm_output).texts()
    assert any("RGB" in t for t in texts) and any("COCO" in t and "YOLO" in t for t in texts), texts
    assert "FOV" in texts and fov is not None
    assert not any(re.search(r"\b(Rgb|Coco|Yolo|Kitti|Fov|Hdri)\b", text) for text in texts), texts
    assert schema.display_name("boxes2d") == "Boxes 2D" and schema.display_name("coco-polygons") == "COCO polygons"
    assert schema.display_name("k1") == "K1" and schema.display_name("pose6d") == "Pose 6D"


def test_long_lists_fold_to_a_summary(addon):
    _store(addon, TINY)
    settings = addon.synthfarm
    modifier = settings.modifiers[0]
    targets = next(f for f in modifier.fields if f.key == "targets")
    for name in ("floor", "cube", "ball"):
        targets.items.add().text = name
    assert len(targets.items) == 5
    layout = draw(panels.VIEW3D_PT_synthfarm_modifiers)
    entries = _field_entries(layout, targets)
    assert len({layout.line_key(k) for k in entries}) == 1
    assert any(text.startswith("cube, ball, floor, cube") and "+1" in text for text in layout.labels())
    targets.show_expanded = True
    entries = _field_entries(draw_again := draw(panels.VIEW3D_PT_synthfarm_modifiers), targets)
    assert len({draw_again.line_key(k) for k in entries}) == 5


def test_remove_buttons_never_sit_beside_a_search_fields_clear_button(addon):
    """A search field has its own X (clear); removing an item of a list uses Blender's list icon (minus)."""
    _store(addon, ROOT / "assets/recipes/tabletop.yaml")
    settings = addon.synthfarm
    for section in schema.SECTIONS:
        for i in range(len(getattr(settings, section))):
            setattr(settings, f"active_{section[:-1]}", i)
            layout = draw(getattr(panels, f"VIEW3D_PT_synthfarm_{section}"))
            removes = [e for e in layout.log if e[0] == "operator" and e[1] == "synthfarm.list_edit"
                       and e[2].values.get("action") == "REMOVE"]
            assert all(e[2].icon == "REMOVE" for e in removes)
    assert all(e[2].icon != "X" for e in draw(panels.VIEW3D_PT_synthfarm_parameters).log if e[0] == "operator")


def test_labels_panel_keeps_its_lines_while_the_selection_changes(addon):
    scene = addon
    for name in ("A", "B", "C", "D", "E"):
        obj = bpy.data.objects.new(name, bpy.data.meshes.new(name))
        scene.collection.objects.link(obj)
    shapes = []
    for chosen in ([], ["Cube"], ["A", "B", "C", "D", "E", "Camera"]):
        for obj in scene.objects:
            obj.select_set(obj.name in chosen)
        shapes.append(draw(panels.VIEW3D_PT_synthfarm_labels).lines())
    for obj in scene.objects:
        obj["synthfarm_class"] = "thing"
    shapes.append(draw(panels.VIEW3D_PT_synthfarm_labels).lines())  # nothing unlabelled any more
    assert all(shape == shapes[0] for shape in shapes), shapes


def test_list_items_show_their_sections_icon(addon):
    _store(addon, ROOT / "assets/recipes/toybox.yaml")
    settings = addon.synthfarm
    for section, icon in panels.ICONS.items():
        records = getattr(settings, section)
        assert records, section
        layout = draw_list_item(panels.SYNTHFARM_UL_items, settings, records[0], 0)
        assert layout.icons()[0] == icon, (section, layout.icons())


def test_farm_panel_offline_uses_icons_blender_has(addon):
    bpy.context.preferences.system.use_online_access = False
    layout = draw(farm_ui.VIEW3D_PT_synthfarm_farm)  # the recorder refuses an icon Blender does not have
    assert "INTERNET_OFFLINE" in layout.icons()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_icon_drawn_exists(addon, path):
    _store(addon, path)
    settings = addon.synthfarm
    for field in (f for s in schema.SECTIONS for r in getattr(settings, s) for f in r.fields):
        field.show_expanded = True
    for panel in [getattr(panels, n) for n in dir(panels) if n.startswith("VIEW3D_PT")] + [
            farm_ui.VIEW3D_PT_synthfarm_farm]:
        draw(panel)  # raises on an unknown icon
    for item in storage.properties.MODE_ITEMS:
        assert item[3] in bpy.types.UILayout.bl_rna.functions["prop"].parameters["icon"].enum_items.keys()


def test_render_panel_states_the_folder_and_shows_progress_as_a_bar(addon, tmp_path):
    _store(addon, TINY)
    settings = addon.synthfarm
    layout = draw(panels.VIEW3D_PT_synthfarm_preview)
    assert any("Unsaved file" in text for text in layout.labels())  # //synthfarm_out with no .blend saved
    settings.out = str(tmp_path / "ds")
    assert f"Writes to {tmp_path / 'ds'}" in draw(panels.VIEW3D_PT_synthfarm_preview).labels()
    settings.status, settings.progress, settings.last_out = "done: 2 jobs", 1.0, str(tmp_path / "ds")
    layout = draw(panels.VIEW3D_PT_synthfarm_preview)
    assert [e[1:3] for e in layout.log if e[0] == "progress"] == [(1.0, "done: 2 jobs")]
    assert "progress" not in layout.props(settings)
    opens = [e[2] for e in layout.log if e[0] == "operator" and e[1] == "wm.path_open"]
    assert opens and opens[0].values["filepath"] == str(tmp_path / "ds")
