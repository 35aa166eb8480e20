"""The Farm sub-panel: submit the scene's recipe to a coordinator, follow the batch, cancel it, open or
download its output.

Blender's online access setting is asked before any socket opens. The batch status is polled by a
``bpy.app.timers`` function (no Python threads inside Blender); each poll is one request with a short
timeout, so a coordinator that went away costs a second, not a frozen UI.
"""
from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path

import bpy
import yaml
from bpy.props import BoolProperty, IntProperty, PointerProperty, StringProperty

from ..addon.core.recipe import RecipeError, rebase_paths
from ..addon import storage
from ..addon.storage import BLEND_RELATIVE
from ..addon.ui.panels import SynthfarmPanel

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
OFFLINE = ("Online access is off: Blender's Preferences > System > Network > Allow Online Access "
           "(or start Blender with --online-mode) lets the farm panel reach the coordinator")


class SYNTHFARM_PG_farm(bpy.types.PropertyGroup):
    address: StringProperty(name="Coordinator", default="tcp://127.0.0.1:5556",
                            description="The coordinator's client address (synthfarm coordinator prints it)")
    keys: StringProperty(name="Keys", subtype="DIR_PATH", options=BLEND_RELATIVE,
                         description="Folder of this client's CURVE keys (synthfarm keys init); empty: none")
    jobs: IntProperty(name="Jobs", default=100, min=1, description="How many jobs to submit")
    preview: BoolProperty(name="Preview quality", description="Submit at the recipe's preview tier")
    priority: IntProperty(name="Priority", default=50, min=0, max=100, description="Higher runs first")
    out: StringProperty(name="Dataset", default="",
                        description="Dataset folder on the coordinator, relative to its dataset root (synthfarm "
                                    "coordinator --out-root; an absolute path only where it allows any); empty: "
                                    "the recipe's name")
    dataset: StringProperty(name="Dataset folder", description="Where the coordinator writes the batch's dataset "
                                                                "(as it said)")
    download_to: StringProperty(name="Download to", default="//synthfarm_download", subtype="DIR_PATH",
                                options=BLEND_RELATIVE,
                                description="Local folder Download copies the batch's dataset into")
    batch_id: StringProperty(name="Batch", description="The batch this scene submitted last")
    state: StringProperty(name="State", description="The batch's state as the coordinator last said")
    counts: StringProperty(name="Jobs", description="queued / running / done / failed")
    progress: bpy.props.FloatProperty(name="Progress", min=0, max=1, subtype="FACTOR")
    message: StringProperty(name="Message", description="The last error or note from the farm")


def offline() -> bool:
    return not bpy.app.online_access


def client_for(farm):
    """A client for the scene's coordinator (close it: a ``with`` block). Call only after checking :func:`offline`."""
    from .client import FarmClient

    keys = Path(bpy.path.abspath(farm.keys)) if farm.keys else None
    return FarmClient(farm.address, timeout=2.0, keys=keys)


def poll_status(scene=None) -> float | None:
    """One status request for the scene's batch; the timer calls this (None stops the timer)."""
    from .client import FarmError

    scene = scene or bpy.context.scene
    farm = scene.synthfarm_farm
    if not farm.batch_id or offline():
        return None
    try:
        with client_for(farm) as client:
            data = client.status(farm.batch_id)
    except FarmError as err:
        farm.message = str(err)
        return POLL_SECONDS * 5  # keep trying, slowly: the coordinator may come back
    jobs = data["jobs"]
    farm.state, farm.message, farm.dataset = data["status"], "", data.get("out", farm.dataset)
    farm.counts = f"{jobs['queued']} queued, {jobs['running']} running, {jobs['done']} done, {jobs['failed']} failed"
    farm.progress = (jobs["done"] + jobs["failed"]) / max(1, data["count"])
    if data.get("errors"):
        farm.message = f"job {data['errors'][0]['job_id']}: {(data['errors'][0]['error'] or '').splitlines()[0]}"
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            area.tag_redraw()
    finished = data["status"] == "cancelled" or (jobs["queued"] == 0 and jobs["running"] == 0)
    return None if finished else POLL_SECONDS


def _timer():
    return poll_status()


def start_polling() -> None:
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=POLL_SECONDS)


def bundle_scene(scene, folder: Path):
    """The scene as farm inputs in ``folder``: a copy of the .blend (the base the workers start from)
    and the recipe, with its paths rebased to ``folder``. Returns (recipe, recipe path). The user's scene
    is not touched: a Randomize sample in it goes into the copy, and the workers take it back on loading."""
    recipe = storage.scene_recipe(scene)
    blend = folder / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True, relative_remap=True, compress=True)
    data = rebase_paths(recipe.to_data(), storage.scene_base_dir(scene), folder)
    data["scene"] = {"base": blend.name}
    path = folder / f"{recipe.name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return recipe.model_validate(data), path


class FarmOperator:
    @classmethod
    def poll(cls, context):
        if offline():
            cls.poll_message_set(OFFLINE)
            return False
        return True

    def fail(self, farm, err) -> set:
        farm.message = str(err)
        self.report({"ERROR"}, str(err))
        return {"CANCELLED"}


class SYNTHFARM_OT_farm_submit(FarmOperator, bpy.types.Operator):
    """Send the scene (a copy of the .blend and its recipe, with every file it uses) to the farm as a batch"""

    bl_idname = "synthfarm.farm_submit"
    bl_label = "Submit to Farm"

    def execute(self, context):
        from .client import FarmError
        from .transfer import make_bundle

        farm = context.scene.synthfarm_farm
        if offline():
            return self.fail(farm, OFFLINE)
        try:
            with client_for(farm) as client, tempfile.TemporaryDirectory(prefix="synthfarm-submit-") as tmp:
                recipe, path = bundle_scene(context.scene, Path(tmp))
                root, recipe_path, inputs = make_bundle(recipe, path)
                sent = client.upload_inputs(root, inputs)
                data = client.submit(batch_id=uuid.uuid4().hex[:16], name=recipe.name, recipe=path.read_text(),
                                     recipe_dir=str(path.parent), out=farm.out.strip() or recipe.name,
                                     count=farm.jobs, seed=context.scene.synthfarm.seed, preview=farm.preview,
                                     priority=farm.priority, inputs=inputs, recipe_path=recipe_path)
        except (RecipeError, FarmError, OSError) as err:
            return self.fail(farm, err)
        farm.batch_id, farm.state, farm.message = data["id"], data.get("status", "queued"), ""
        farm.dataset = data.get("out", "")
        poll_status(context.scene)
        start_polling()
        self.report({"INFO"}, f"batch {data['id']}: {farm.jobs} jobs submitted ({len(inputs)} files, {sent} uploaded)")
        return {"FINISHED"}


class SYNTHFARM_OT_farm_cancel(FarmOperator, bpy.types.Operator):
    """Cancel the batch: queued jobs are dropped, running ones stopped; complete jobs stay"""

    bl_idname = "synthfarm.farm_cancel"
    bl_label = "Cancel Batch"

    def execute(self, context):
        from .client import FarmError

        farm = context.scene.synthfarm_farm
        if not farm.batch_id:
            return self.fail(farm, "no batch submitted from this scene")
        try:
            with client_for(farm) as client:
                client.cancel(farm.batch_id)
        except FarmError as err:
            return self.fail(farm, err)
        poll_status(context.scene)
        self.report({"INFO"}, f"batch {farm.batch_id} cancelled")
        return {"FINISHED"}


class SYNTHFARM_OT_farm_refresh(FarmOperator, bpy.types.Operator):
    """Ask the coordinator for the batch's state now (and follow it)"""

    bl_idname = "synthfarm.farm_refresh"
    bl_label = "Refresh"

    def execute(self, context):
        if poll_status(context.scene) is not None:
            start_polling()
        return {"FINISHED"}


class SYNTHFARM_OT_farm_open_output(bpy.types.Operator):
    """Open the batch's dataset folder (on this machine: the farm's output folder, else the download folder)"""

    bl_idname = "synthfarm.farm_open_output"
    bl_label = "Open Output"

    def execute(self, context):
        farm = context.scene.synthfarm_farm
        for folder in (farm.dataset, bpy.path.abspath(farm.download_to) if farm.download_to else ""):
            if folder and Path(folder).is_dir():
                bpy.ops.wm.path_open(filepath=folder)
                self.report({"INFO"}, folder)
                return {"FINISHED"}
        self.report({"ERROR"}, f"{farm.dataset or farm.out} is not on this machine (the coordinator's); Download "
                               f"copies it here")
        return {"CANCELLED"}


class SYNTHFARM_OT_farm_download(FarmOperator, bpy.types.Operator):
    """Copy the batch's dataset from the coordinator into the download folder (resumes; same-size files are kept)"""

    bl_idname = "synthfarm.farm_download"
    bl_label = "Download"

    def execute(self, context):
        from .client import FarmError

        farm = context.scene.synthfarm_farm
        if not farm.batch_id:
            return self.fail(farm, "no batch submitted from this scene")
        wm = context.window_manager
        wm.progress_begin(0, 1)
        try:
            with client_for(farm) as client:
                fetched, skipped = client.download(
                    farm.batch_id, Path(bpy.path.abspath(farm.download_to)),
                    progress=lambda done, total: wm.progress_update(done / max(1, total)))
        except (FarmError, OSError) as err:
            return self.fail(farm, err)
        finally:
            wm.progress_end()
        self.report({"INFO"}, f"{fetched} file(s) downloaded, {skipped} already there")
        return {"FINISHED"}


class VIEW3D_PT_synthfarm_farm(SynthfarmPanel, bpy.types.Panel):
    bl_label = "Farm"
    bl_parent_id = "VIEW3D_PT_synthfarm"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        farm = context.scene.synthfarm_farm
        if offline():
            box = layout.box()
            box.alert = True
            box.label(text="Online access is off", icon="INTERNET_OFFLINE")
            box.label(text="Allow it in Preferences > System")
            box.operator("screen.userpref_show", text="Open Preferences", icon="PREFERENCES").section = "SYSTEM"
        col = layout.column()
        col.enabled = not offline()
        col.prop(farm, "address")
        col.prop(farm, "keys")
        col.prop(farm, "out")
        row = col.row(align=True)
        row.prop(farm, "jobs")
        row.prop(farm, "priority")
        col.prop(farm, "preview")
        col.operator("synthfarm.farm_submit", icon="EXPORT")
        if farm.batch_id:
            box = layout.box()
            box.label(text=f"Batch {farm.batch_id}: {farm.state or 'unknown'}", icon="SEQ_STRIP_DUPLICATE")
            if farm.counts:
                box.progress(factor=farm.progress, type="BAR", text=farm.counts)
            row = box.row(align=True)
            row.enabled = not offline()
            row.operator("synthfarm.farm_refresh", icon="FILE_REFRESH")
            row.operator("synthfarm.farm_cancel", icon="CANCEL")
            row = box.row(align=True)
            row.operator("synthfarm.farm_open_output", icon="FILE_FOLDER")
            sub = row.row(align=True)
            sub.enabled = not offline()
            sub.operator("synthfarm.farm_download", icon="IMPORT")
            box.prop(farm, "download_to")
        if farm.message:
            row = layout.row()
            row.alert = True
            row.label(text=farm.message, icon="ERROR")


classes = (SYNTHFARM_PG_farm, SYNTHFARM_OT_farm_submit, SYNTHFARM_OT_farm_cancel, SYNTHFARM_OT_farm_refresh,
           SYNTHFARM_OT_farm_open_output, SYNTHFARM_OT_farm_download, VIEW3D_PT_synthfarm_farm)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register():
    _register()
    bpy.types.Scene.synthfarm_farm = PointerProperty(type=SYNTHFARM_PG_farm, name="Synthfarm farm",
                                                     description="Where this scene's batches go")


def unregister():
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    del bpy.types.Scene.synthfarm_farm
    _unregister()
