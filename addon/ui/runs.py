"""Runs in the user's scene: Randomize (one job's scene in the viewport, undoable), Clear Sample,
Preview (one preview frame with its masks and boxes, in an image editor) and Render Locally (a batch,
modal: one job per timer tick, progress in the status bar, Esc cancels).

The open scene is the base of these runs (a recipe's ``scene.base`` is for headless runs); every run
gives the user's objects, world, camera and render settings back, and removes the asset cache from
the file when it ends.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import bpy
import numpy as np
from bpy.props import IntProperty

from ..core.jobs import make_jobs
from ..core.recipe import RecipeError, SceneSpec
from ..engine.scene import no_new_orphans
from .. import storage
from .operators import report_error

log = logging.getLogger(__name__)
PREVIEW_IMAGE = "synthfarm_preview"
_RUNNER = []  # one Runner per Blender session, made on first use


def runner():
    from ..engine.runner import Runner

    if not _RUNNER:
        _RUNNER.append(Runner(use_current_scene=True))
    return _RUNNER[0]


def ui_recipe(scene):
    """The scene recipe for a run in this scene: its files are checked, and the scene itself is the base."""
    recipe = storage.scene_recipe(scene)
    return recipe.model_copy(update={"scene": SceneSpec()}), storage.scene_base_dir(scene)


def _job(scene, recipe, seed: int, preview: bool):
    return make_jobs(recipe, 1, seed=seed, preview=preview)[0]


class SYNTHFARM_OT_randomize(bpy.types.Operator):
    """Apply one job of the recipe to this scene (Ctrl-Z takes it back); the same seed gives the same scene"""

    bl_idname = "synthfarm.randomize"
    bl_label = "Randomize"
    bl_options = {"REGISTER", "UNDO"}

    seed: IntProperty(name="Seed", min=0, description="Batch seed of the sample (shown in the panel)")
    next_seed: bpy.props.BoolProperty(name="New seed", description="Take the next seed before randomizing")

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
            with no_new_orphans():
                drawn = apply_sample(scene, runner(), recipe, base, _job(scene, recipe, self.seed, False))
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

        with no_new_orphans():
            cleared = clear_sample(context.scene)
        self.report({"INFO"}, "sample cleared" if cleared else "no sample in this scene")
        return {"FINISHED"}


def show_image(context, image) -> bool:
    """Show ``image`` in an image editor of the current window (True if one was found)."""
    screen = context.window.screen if context.window else None
    for area in screen.areas if screen else ():
        if area.type == "IMAGE_EDITOR":
            area.spaces.active.image = image
            return True
    return False


def image_from_pil(picture, name: str = PREVIEW_IMAGE):
    image = bpy.data.images.get(name)
    if image is None or tuple(image.size) != picture.size:
        if image is not None:
            bpy.data.images.remove(image)
        image = bpy.data.images.new(name, picture.width, picture.height, alpha=True)
    rgba = np.asarray(picture.convert("RGBA"), dtype=np.float32)[::-1] / 255.0
    image.colorspace_settings.name = "sRGB"
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    return image


class SYNTHFARM_OT_preview(bpy.types.Operator):
    """Render one preview frame of the recipe at the panel's seed and show it with its masks and boxes"""

    bl_idname = "synthfarm.preview"
    bl_label = "Preview"

    def execute(self, context):
        from ..core.analytics import annotated_frame
        from ..core.dataset.native import DatasetWriter
        from ..engine.render import kept_settings
        from ..engine.sample import apply_sample, clear_sample

        scene = context.scene
        try:
            recipe, base = ui_recipe(scene)
        except RecipeError as err:
            return report_error(self, err)
        job = _job(scene, recipe, scene.synthfarm.seed, True)
        folder = Path(tempfile.mkdtemp(prefix="synthfarm-preview-"))
        orphans = no_new_orphans()
        orphans.__enter__()
        had_sample = clear_sample(scene)
        try:
            writer = DatasetWriter(folder / "dataset")
            writer.open(recipe.to_yaml(), recipe.hash(), {"name": recipe.name})
            with kept_settings(scene):
                report = runner().run_job(recipe, base, job, writer, folder / "scratch")
            picture = annotated_frame(folder / "dataset", report.stems[0])
        except Exception as err:
            log.exception("preview failed")
            return report_error(self, err, "preview failed: ")
        finally:
            if had_sample:
                apply_sample(scene, runner(), recipe, base, _job(scene, recipe, scene.synthfarm.seed, False))
            runner().release()
            orphans.__exit__(None, None, None)
            shutil.rmtree(folder, ignore_errors=True)
        image = image_from_pil(picture)
        shown = show_image(context, image)
        self.report({"INFO"}, f"preview of seed {job.seed}: {report.objects} labelled object(s), "
                              f"{report.render_seconds:.1f} s render" + ("" if shown else
                              f"; open image {image.name!r} in an Image Editor"))
        return {"FINISHED"}


class SYNTHFARM_OT_render_local(bpy.types.Operator):
    """Render jobs of the recipe into the output folder in this Blender (Esc cancels after the current job;
    complete jobs stay and the same command resumes)"""

    bl_idname = "synthfarm.render_local"
    bl_label = "Render Locally"

    _timer = None

    def _start(self, context):
        from ..engine.api import LocalBatch
        from ..engine.render import kept_settings
        from ..engine.sample import clear_sample

        scene = context.scene
        settings = scene.synthfarm
        recipe, base = ui_recipe(scene)
        out = Path(bpy.path.abspath(settings.out))
        if clear_sample(scene):
            self.report({"INFO"}, "the Randomize sample was cleared before rendering")
        self._stack = ExitStack()
        self._stack.enter_context(no_new_orphans())
        self._stack.enter_context(kept_settings(scene))
        self.batch = LocalBatch(recipe, settings.jobs, out, seed=settings.seed, preview=settings.preview_quality,
                                runner=runner(), base_dir=base)
        self._show(context)

    def _show(self, context):
        settings = context.scene.synthfarm
        done, total = self.batch.done, self.batch.summary.jobs_total
        settings.progress = done / total if total else 1.0
        settings.status = f"{done}/{total} jobs"
        if context.workspace:
            context.workspace.status_text_set(f"Synthfarm: rendering {done}/{total} jobs into "
                                              f"{self.batch.out} (Esc cancels)")

    def _finish(self, context, cancelled: bool):
        if cancelled:
            self.batch.interrupted()
        summary = self.batch.finish()
        runner().release()
        self._stack.close()
        if context.workspace:
            context.workspace.status_text_set(None)
        settings = context.scene.synthfarm
        settings.status = (f"cancelled: {self.batch.done}/{summary.jobs_total} jobs complete" if cancelled else
                           f"done: {summary.jobs_total} jobs in {summary.out}")
        self.report({"WARNING" if cancelled else "INFO"}, "Synthfarm " + settings.status)
        return {"CANCELLED" if cancelled else "FINISHED"}

    def execute(self, context):
        """Blocking (scripts): every job, then the exports."""
        try:
            self._start(context)
        except Exception as err:  # a bad recipe, an output folder of another dataset...
            return report_error(self, err)
        try:
            while self.batch.step():
                self._show(context)
        except Exception as err:
            log.exception("render failed")
            self.report({"ERROR"}, f"render failed: {err}")
            return self._finish(context, True)
        return self._finish(context, False)

    def invoke(self, context, event):
        try:
            self._start(context)
        except Exception as err:  # a bad recipe, an output folder of another dataset...
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
            more = self.batch.step()
        except Exception as err:
            log.exception("render failed")
            self.report({"ERROR"}, f"render failed: {err}")
            return self._end_modal(context, cancelled=True)
        self._show(context)
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        return {"RUNNING_MODAL"} if more else self._end_modal(context, cancelled=False)

    def _end_modal(self, context, cancelled: bool):
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context, cancelled)


classes = (SYNTHFARM_OT_randomize, SYNTHFARM_OT_clear_sample, SYNTHFARM_OT_preview, SYNTHFARM_OT_render_local)
register, unregister = bpy.utils.register_classes_factory(classes)
