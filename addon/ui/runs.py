"""Runs in the user's scene: Randomize (one job's scene in the viewport, undoable), Clear Sample,
Preview (one preview frame with its masks and boxes, shown in an Image Editor) and Render Locally (a
batch, modal: one job per timer tick, progress in the panel and the status bar, Esc cancels).

The open scene is the base of these runs (a recipe's ``scene.base`` is for headless runs). A run changes
nothing of the user's: objects, world, camera, render settings, the frame, the selection and the active
object come back as they were, Randomize's sample is taken out for a render and put back afterwards,
the render device is the one the user's Cycles settings choose, and the asset cache leaves the file.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

from ..core.jobs import make_jobs
from ..core.recipe import RecipeError, SceneSpec
from ..engine.scene import no_new_orphans
from .. import storage
from .operators import report_error

log = logging.getLogger(__name__)
PREVIEW_IMAGE = "synthfarm_preview"
_RUNNER = []  # one Runner per Blender session, made on first use


class OutputFolderError(Exception):
    """Render Locally's output folder cannot be resolved to an absolute folder."""


def runner():
    from ..engine.runner import Runner

    if not _RUNNER:
        _RUNNER.append(Runner(use_current_scene=True, device="current"))
    return _RUNNER[0]


def ui_recipe(scene):
    """The scene recipe for a run in this scene: its files are checked, and the scene itself is the base."""
    recipe = storage.scene_recipe(scene)
    return recipe.model_copy(update={"scene": SceneSpec()}), storage.scene_base_dir(scene)


def _job(recipe, seed: int, preview: bool):
    """Job 0 of a batch with ``seed``: what Randomize shows, Preview renders and Render Locally renders first."""
    return make_jobs(recipe, 1, seed=seed, preview=preview)[0]


def output_folder(settings) -> Path:
    """Render Locally's dataset folder as an absolute path (a ``//`` folder needs a saved .blend)."""
    if settings.out.startswith("//") and not bpy.data.filepath:
        raise OutputFolderError(
            f"Output {settings.out!r} is relative to the .blend file, which is not saved yet: save the file, or set "
            "Output to an absolute folder")
    if not settings.out.strip():
        raise OutputFolderError("Output is empty: choose the dataset folder")
    return Path(bpy.path.abspath(settings.out)).resolve()


@contextmanager
def kept_user_state(scene):
    """The user's render settings, frame, selection and active object as they were after the block."""
    from ..engine.render import kept_settings

    layer = bpy.context.view_layer
    selected = {obj.name for obj in layer.objects if obj.select_get()}
    active = layer.objects.active.name if layer.objects.active else None
    frame = (scene.frame_current, scene.frame_subframe)
    try:
        with kept_settings(scene):
            yield
    finally:
        if (scene.frame_current, scene.frame_subframe) != frame:
            scene.frame_set(frame[0], subframe=frame[1])
        for obj in layer.objects:
            if obj.select_get() != (obj.name in selected):
                obj.select_set(obj.name in selected)
        layer.objects.active = layer.objects.get(active) if active else None
        layer.update()  # world matrices evaluated from the restored channels, as before the run


@contextmanager
def sample_aside(scene, recipe, base):
    """Randomize's sample out of the scene for a render, and the same sample back afterwards."""
    from ..engine.sample import apply_sample, clear_sample, sample_job

    job = sample_job(scene)
    clear_sample(scene)
    try:
        yield
    finally:
        if job is not None:
            apply_sample(scene, runner(), recipe, base, job)


class SYNTHFARM_OT_randomize(bpy.types.Operator):
    """Apply one job of the recipe to this scene (Ctrl-Z takes it back); the same seed gives the same scene"""

    bl_idname = "synthfarm.randomize"
    bl_label = "Randomize"
    bl_options = {"REGISTER", "UNDO"}

    seed: IntProperty(name="Seed", min=0, description="Batch seed of the sample (shown in the panel)")
    next_seed: BoolProperty(name="New seed", description="Take the next seed before randomizing")

    def invoke(self, context, event):
        self.seed = context.scene.synthfarm.seed + (1 if self.next_seed else 0)
        return self.execute(context)

    def execute(self, context):
        from ..engine.sample import apply_sample

        scene = context.scene
        try:
            recipe, base = ui_recipe(scene)
        except RecipeError as err:
            return report_error(self, err)
        try:
            with kept_user_state(scene), no_new_orphans():
                drawn = apply_sample(scene, runner(), recipe, base, _job(recipe, self.seed, False))
        except Exception as err:  # an asset that does not load, a material missing from a library...
            log.exception("randomize failed")
            return report_error(self, err, "randomize failed: ")
        scene.synthfarm.seed = self.seed
        self.report({"INFO"}, f"seed {self.seed}: {len(drawn)} values drawn")
        return {"FINISHED"}


class SYNTHFARM_OT_clear_sample(bpy.types.Operator):
    """Take Randomize's sample out of the scene: your objects, world and camera as they were"""

    bl_idname = "synthfarm.clear_sample"
    bl_label = "Clear Sample"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        from ..engine.sample import clear_sample

        with kept_user_state(context.scene), no_new_orphans():
            cleared = clear_sample(context.scene)
        self.report({"INFO"}, "sample cleared" if cleared else "no sample in this scene")
        return {"FINISHED"}


def preview_image(picture, folder: Path):
    """The preview as a packed image (it keeps its pixels through undo and saving, unlike a generated one)."""
    path = folder / "preview.png"
    picture.convert("RGB").save(path)
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is None:
        image = bpy.data.images.load(str(path), check_existing=False)
        image.name = PREVIEW_IMAGE
    else:
        if image.packed_file is not None:
            image.unpack(method="REMOVE")
        image.source, image.filepath = "FILE", str(path)
        image.reload()
    image.pack()
    image.filepath_raw = f"//{PREVIEW_IMAGE}.png"  # where Image > Unpack would write it
    return image


def show_image(context, image) -> str:
    """Show ``image`` where the user can see it: an Image Editor that is open, else a new window (Blender's
    render view). Returns where, or "" when there is no window (background mode)."""
    wm = context.window_manager
    for window in wm.windows if wm else ():
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
                area.tag_redraw()
                return "in the Image Editor"
    if context.window is None:
        return ""
    before = set(wm.windows[:])
    bpy.ops.render.view_show("INVOKE_DEFAULT")  # a new window, or an editor, as the user's preferences say
    for window in [w for w in wm.windows if w not in before] + list(wm.windows):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
                return "in a new window" if window not in before else "in an Image Editor"
    return ""


class SYNTHFARM_OT_preview(bpy.types.Operator):
    """Render job 0 of the panel's seed at preview quality and show it with its masks and boxes"""

    bl_idname = "synthfarm.preview"
    bl_label = "Preview"

    def execute(self, context):
        from ..core.analytics import annotated_frame
        from ..core.dataset.identity import batch_identity
        from ..core.dataset.native import DatasetWriter

        scene = context.scene
        seed = scene.synthfarm.seed
        try:
            recipe, base = ui_recipe(scene)
        except RecipeError as err:
            return report_error(self, err)
        folder = Path(tempfile.mkdtemp(prefix="synthfarm-preview-"))
        try:
            with kept_user_state(scene), no_new_orphans(), sample_aside(scene, recipe, base):
                try:
                    writer = DatasetWriter(folder / "dataset")
                    job = _job(recipe, seed, True)
                    writer.open(recipe.to_yaml(), batch_identity(recipe, preview=True, jobs=[(job.params, job.seed)]),
                                {"name": recipe.name})
                    report = runner().run_job(recipe, base, job, writer, folder / "scratch")
                finally:
                    runner().release()
            image = preview_image(annotated_frame(folder / "dataset", report.stems[0]), folder)
        except Exception as err:
            log.exception("preview failed")
            return report_error(self, err, "preview failed: ")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        where = show_image(context, image) or f"open image {image.name!r} in an Image Editor"
        self.report({"INFO"}, f"preview of seed {seed}: {report.objects} labelled object(s), "
                              f"{report.render_seconds:.1f} s render; {where}")
        return {"FINISHED"}


class LocalRender:
    """Render Locally as steps: the modal operator runs one per timer tick, a script runs them all. The
    user's scene is put back (and Randomize's sample with it) by :meth:`finish`."""

    def __init__(self, context):
        from ..engine.api import LocalBatch

        scene = context.scene
        settings = scene.synthfarm
        recipe, base = ui_recipe(scene)
        out = output_folder(settings)
        self._stack = ExitStack()
        try:
            self._stack.enter_context(kept_user_state(scene))
            self._stack.enter_context(no_new_orphans())
            self._stack.enter_context(sample_aside(scene, recipe, base))
            self.batch = LocalBatch(recipe, settings.jobs, out, seed=settings.seed,
                                    preview=settings.preview_quality, runner=runner(), base_dir=base)
        except BaseException:
            self._stack.close()
            raise
        settings.last_out = ""
        self.show(context)

    def step(self) -> bool:
        return self.batch.step()

    def show(self, context) -> None:
        settings = context.scene.synthfarm
        done, total = self.batch.done, self.batch.summary.jobs_total
        settings.progress = done / total if total else 1.0
        settings.status = f"{done}/{total} jobs"
        if context.workspace:
            context.workspace.status_text_set(f"Synthfarm: rendering {done}/{total} jobs into "
                                              f"{self.batch.out} (Esc cancels)")

    def finish(self, context, cancelled: bool):
        if cancelled:
            self.batch.interrupted()
        try:
            summary = self.batch.finish()
        finally:
            runner().release()
            self._stack.close()
            if context.workspace:
                context.workspace.status_text_set(None)
        settings = context.scene.synthfarm
        settings.status = (f"cancelled: {self.batch.done}/{summary.jobs_total} jobs complete" if cancelled else
                           f"done: {summary.jobs_total} jobs")
        settings.last_out = str(summary.out)
        return summary


class SYNTHFARM_OT_render_local(bpy.types.Operator):
    """Render jobs of the recipe into the output folder in this Blender (Esc cancels after the current job;
    complete jobs stay and the same command resumes)"""

    bl_idname = "synthfarm.render_local"
    bl_label = "Render Locally"

    directory: StringProperty(name="Output", subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"},
                              description="The dataset folder chosen in the file browser")
    modal_after_browse: BoolProperty(options={"HIDDEN", "SKIP_SAVE"})

    _timer = None
    _run = None

    def _report_end(self, context, summary, cancelled: bool) -> set:
        message = context.scene.synthfarm.status + f" in {summary.out}"
        self.report({"WARNING" if cancelled else "INFO"}, "Synthfarm " + message +
                    ("" if cancelled else " (Open Folder in the panel shows it)"))
        return {"CANCELLED" if cancelled else "FINISHED"}

    def execute(self, context):
        """Blocking (scripts): every job, then the exports. After the file browser: modal."""
        if self.directory:
            context.scene.synthfarm.out = self.directory
        if self.modal_after_browse:
            return self._start_modal(context)
        try:
            run = LocalRender(context)
        except Exception as err:  # a bad recipe, an output folder of another dataset or unresolvable...
            return report_error(self, err)
        try:
            while run.step():
                run.show(context)
        except Exception as err:
            log.exception("render failed")
            self.report({"ERROR"}, f"render failed: {err}")
            return self._report_end(context, run.finish(context, True), True)
        return self._report_end(context, run.finish(context, False), False)

    def invoke(self, context, event):
        try:
            output_folder(context.scene.synthfarm)
        except OutputFolderError as err:  # an unsaved file: ask where the dataset goes
            self.report({"INFO"}, str(err))
            self.modal_after_browse = True
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self._start_modal(context)

    def _start_modal(self, context):
        try:
            self._run = LocalRender(context)
        except Exception as err:
            return report_error(self, err)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.05, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            return self._end_modal(context, cancelled=True)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            more = self._run.step()
        except Exception as err:
            log.exception("render failed")
            self.report({"ERROR"}, f"render failed: {err}")
            return self._end_modal(context, cancelled=True)
        self._run.show(context)
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        return {"RUNNING_MODAL"} if more else self._end_modal(context, cancelled=False)

    def _end_modal(self, context, cancelled: bool):
        context.window_manager.event_timer_remove(self._timer)
        return self._report_end(context, self._run.finish(context, cancelled), cancelled)


classes = (SYNTHFARM_OT_randomize, SYNTHFARM_OT_clear_sample, SYNTHFARM_OT_preview, SYNTHFARM_OT_render_local)
register, unregister = bpy.utils.register_classes_factory(classes)
