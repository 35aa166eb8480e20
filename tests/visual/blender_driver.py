"""Runs inside a real Blender window (started by screenshot_panels.py): opens the Synthfarm sidebar, imports a
recipe, opens each panel in turn and saves screenshots, then runs Preview. Steps run from a timer so that
Blender draws between them. Writes <out>/done.txt at the end and quits."""
import json
import sys
import traceback
from pathlib import Path

import bpy

args = sys.argv[sys.argv.index("--") + 1:]
OUT = Path(args[args.index("--out") + 1])
RECIPE = args[args.index("--recipe") + 1]
ADDON = "bl_ext.user_default.synthfarm"


def view3d():
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                return window, area, next(r for r in area.regions if r.type == "UI")
    raise RuntimeError("no 3D viewport")


def sub_panels():
    """The add-on's sub-panels in their order in the sidebar."""
    return [cls for name in (".addon.ui.panels", ".farm.ui") for cls in sys.modules[ADDON + name].classes
            if issubclass(cls, bpy.types.Panel) and getattr(cls, "bl_parent_id", "")]


_SHOWN = []  # the copy of a panel registered for a shot


def show_only(cls) -> None:
    """Only ``cls`` under the main panel, open: a fresh copy of it under a new name (Blender remembers the
    open or closed state of every panel it has drawn, so the original may stay closed); None: as installed."""
    while _SHOWN:
        bpy.utils.unregister_class(_SHOWN.pop())
    originals = sub_panels()
    for panel in originals:
        if panel.is_registered:
            bpy.utils.unregister_class(panel)
    if cls is None:
        for panel in originals:
            bpy.utils.register_class(panel)
        return
    copy = type(f"{cls.__name__}_shot{len(_SHOWN)}{id(cls) % 997}", (cls,), {
        "bl_idname": f"{cls.__name__}_shot_{bpy.context.scene.frame_current}_{len(_SHOWN)}_{id(cls) % 997}",
        "bl_options": set(getattr(cls, "bl_options", set())) - {"DEFAULT_CLOSED"}})
    bpy.utils.register_class(copy)
    _SHOWN.append(copy)


def shot(name: str, whole_window: bool = False):
    """Ask the host for a picture of the screen (Blender's own screenshot reads back black under Xvfb's
    software GL) and wait until it is there."""
    window, area, region = view3d()
    bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1)
    meta = {"image": f"{name}.png", "window": [window.width, window.height]}
    if not whole_window:
        meta["sidebar"] = [region.x, region.y, region.width, region.height]
    (OUT / f"{name}.json").write_text(json.dumps(meta))
    (OUT / f"{name}.request").write_text("")
    while (OUT / f"{name}.request").exists():
        yield
    print(f"shot {name}")


def steps():
    window, area, region = view3d()
    area.spaces.active.show_region_ui = True
    yield
    _, area, region = view3d()
    region.active_panel_category = "Synthfarm"
    yield
    yield from shot("01-empty-scene")
    with bpy.context.temp_override(window=window, area=area):
        bpy.ops.synthfarm.import_recipe(filepath=RECIPE)
    yield
    yield from shot("02-recipe-imported")
    bpy.context.scene.objects["Cube"].hide_render = True
    for obj in bpy.context.scene.objects:
        obj.select_set(obj.name in ("Cube", "Camera"))
    settings = bpy.context.scene.synthfarm
    for cls in sub_panels():
        section = cls.__name__.rsplit("_", 1)[-1]
        records = getattr(settings, section) if section in ("generators", "modifiers", "randomizers", "sensors",
                                                            "parameters") else None
        for index in range(len(records)) if records else [None]:
            if index is not None:
                setattr(settings, f"active_{section[:-1]}", index)
            show_only(cls)
            yield
            suffix = f"-{index}-{records[index].name}" if index is not None else ""
            yield from shot(f"10-{section}{suffix}")
    show_only(None)
    yield
    with bpy.context.temp_override(window=window, area=area):
        bpy.ops.synthfarm.randomize(seed=3)
    yield
    yield from shot("20-randomized", whole_window=True)
    with bpy.context.temp_override(window=window, area=area):
        bpy.ops.synthfarm.preview()
    yield
    yield
    yield from shot("21-preview", whole_window=True)


_STEPS = steps()


def tick():
    try:
        next(_STEPS)
        return 0.7
    except StopIteration:
        (OUT / "done.txt").write_text("ok")
    except Exception:
        (OUT / "error.txt").write_text(traceback.format_exc())
        traceback.print_exc()
    bpy.ops.wm.quit_blender()
    return None


bpy.app.timers.register(tick, first_interval=2.0)
