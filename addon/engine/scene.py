"""The scene a job starts from, and putting it back afterwards.

One Blender process renders many jobs. The base scene (empty, a recipe's base .blend, or the file the
user opened) is set up once; each job runs inside a :class:`JobScope` that remembers every datablock
and every base object's state, and on exit removes what the job added (except the asset cache) and
restores what it changed. So ``bpy.data`` does not grow across jobs and job N+1 never sees job N.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import bpy
from mathutils import Matrix

log = logging.getLogger(__name__)

JOB_COLLECTION = "synthfarm_job"
CLASS_PROP = "synthfarm_class"  # custom property that labels an object (or a collection) with a class
# bpy.data collections a job may add to; they are compared before and after each job.
TRACKED = ("objects", "meshes", "materials", "lights", "cameras", "worlds", "images", "node_groups",
           "collections", "textures", "actions", "curves")


class SceneError(Exception):
    pass


class BaseScene:
    """Keeps track of which base scene is loaded so it is loaded once, not once per job."""

    def __init__(self):
        self.loaded: str | None = None  # "empty", "current", or a resolved .blend path

    def prepare(self, base: Path | None, use_current: bool = False) -> bool:
        """Make the base scene current. Returns True when it was (re)loaded, which invalidates caches."""
        key = "current" if use_current and base is None else (str(base.resolve()) if base else "empty")
        if key == self.loaded:
            return False
        if key == "empty":
            bpy.ops.wm.read_factory_settings(use_empty=True)
        elif key != "current":
            if not base.is_file():
                raise SceneError(f"scene.base: {str(base)!r} does not exist")
            # Python auto-execution stays off: scripts inside a .blend from a job never run.
            bpy.ops.wm.open_mainfile(filepath=str(base), load_ui=False, use_scripts=False)
            from .sample import clear_sample  # sample.py builds on this module

            if clear_sample(bpy.context.scene):  # saved (or submitted) with Randomize's sample in the viewport
                log.info("%s was saved with a Randomize sample; it is taken back before rendering", base.name)
        self.loaded = key
        log.info("base scene: %s", key)
        return True


def labelled_class(obj) -> str | None:
    """The class of an object: its own label, else the label of a collection holding it."""
    if obj.get(CLASS_PROP):
        return str(obj[CLASS_PROP])
    for coll in obj.users_collection:
        if coll.get(CLASS_PROP):
            return str(coll[CLASS_PROP])
    return None


def alive(id_, collection) -> bool:
    """Whether a datablock Python still holds is in ``collection`` (e.g. bpy.data.meshes): File > New, Open and
    undo free datablocks under a kept reference, which then raises ReferenceError."""
    try:
        return id_ is not None and collection.get(id_.name) == id_
    except ReferenceError:
        return False


def session_ids(ids) -> set[int]:
    """The session ids of datablocks that still exist (freed ones are skipped). A datablock's ``session_uid`` is
    never given to another in the same session, whereas its memory address is: Blender's allocator hands a freed
    datablock's address to the next one made (3 times in 4 for materials), so a snapshot of addresses would take
    a datablock made where one was freed for the old one and leave it behind."""
    out = set()
    for id_ in ids:
        try:
            out.add(id_.session_uid)
        except ReferenceError:
            pass
    return out


def session_id_sets(kinds=TRACKED) -> dict[str, set[int]]:
    """A snapshot of which datablocks exist, by bpy.data kind (see :func:`session_ids`)."""
    return {name: {id_.session_uid for id_ in getattr(bpy.data, name)} for name in kinds}


LABEL_PROPS = (CLASS_PROP, "synthfarm_generator")


TRANSFORM = ("location", "rotation_euler", "rotation_quaternion", "rotation_axis_angle", "scale", "delta_location",
             "delta_rotation_euler", "delta_rotation_quaternion", "delta_scale")


def object_state(obj) -> dict:
    """What a job may change on a base object, as plain data (it can be kept in a custom property).

    The transform is kept as the object's own channels (location, every rotation form, scale, deltas, the
    parent inverse), not as a world matrix: setting them back is exact to the bit and independent of the
    order in which parents and children are restored."""
    return {"transform": {key: list(getattr(obj, key)) for key in TRANSFORM}, "rotation_mode": obj.rotation_mode,
            "parent_inverse": [x for col in obj.matrix_parent_inverse.col for x in col],
            "parent_type": obj.parent_type, "parent_bone": obj.parent_bone, "hide_render": obj.hide_render,
            "hide_viewport": obj.hide_viewport, "pass_index": obj.pass_index,
            "slots": [[slot.link, slot.material.name if slot.material else None] for slot in obj.material_slots],
            "parent": obj.parent.name if obj.parent else None, "props": {key: obj.get(key) for key in LABEL_PROPS}}


def restore_object(obj, state: dict) -> None:
    for key, value in state["props"].items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    parent = bpy.data.objects.get(state["parent"]) if state["parent"] else None
    if obj.parent != parent:
        obj.parent = parent
    obj.parent_type, obj.parent_bone = state["parent_type"], state["parent_bone"]
    obj.rotation_mode = state["rotation_mode"]
    for key, value in state["transform"].items():
        setattr(obj, key, value)
    m = state["parent_inverse"]
    obj.matrix_parent_inverse = Matrix([m[0:4], m[4:8], m[8:12], m[12:16]]).transposed()  # stored by column
    obj.hide_render, obj.hide_viewport, obj.pass_index = state["hide_render"], state["hide_viewport"], state["pass_index"]
    for slot, (link, material) in zip(obj.material_slots, state["slots"]):
        slot.link = link
        slot.material = bpy.data.materials.get(material) if material else None


def new_datablocks(before: dict[str, set[int]], keep: set[int] = frozenset()) -> dict[str, list]:
    """Datablocks that did not exist in the ``before`` snapshot (of :func:`session_id_sets`), by bpy.data kind."""
    found = {name: [id_ for id_ in getattr(bpy.data, name)
                    if id_.session_uid not in before[name] and id_.session_uid not in keep] for name in before}
    return {name: ids for name, ids in found.items() if ids}


@contextmanager
def no_new_orphans():
    """Datablocks made inside the block that nothing uses at its end are removed (the add-on's runs in
    the user's file must not leave unused data behind)."""
    from .assets import remove_unused

    before = session_id_sets()
    try:
        yield
    finally:
        remove_unused([id_ for ids in new_datablocks(before).values() for id_ in ids])


def remove_rigid_body_world(scene) -> None:
    if scene.rigidbody_world is not None:
        with bpy.context.temp_override(scene=scene):
            bpy.ops.rigidbody.world_remove()


# A fresh world's simulation settings: every job simulates with these, whatever the user's world says.
SIMULATION_DEFAULTS = {"enabled": True, "time_scale": 1.0, "substeps_per_frame": 10, "solver_iterations": 10,
                       "use_split_impulse": False}


@contextmanager
def simulation_world(scene):
    """A rigid body world for one simulation of a job. A scene without one gets a new world, removed at
    the end. A scene with its own (the user's) lends it: its collections are swapped for an empty one of
    the job's (the user's bodies take no part), the default settings apply, and everything is given back."""
    own = scene.rigidbody_world
    if own is None:
        with bpy.context.temp_override(scene=scene):
            bpy.ops.rigidbody.world_add()
        try:
            yield scene.rigidbody_world
        finally:
            remove_rigid_body_world(scene)
        return
    cache = own.point_cache
    if cache.is_baked:
        raise SceneError("physics_drop: the scene's rigid body world holds a baked simulation, which a drop would "
                         "free; free the bake (Scene properties > Rigid Body World > Cache > Delete All Bakes) or "
                         "simulate in another scene")
    saved = {key: getattr(own, key) for key in (*SIMULATION_DEFAULTS, "collection", "constraints")}
    frames = (cache.frame_start, cache.frame_end)
    bodies = bpy.data.collections.new("synthfarm_rigid_bodies")
    own.collection, own.constraints = bodies, None
    for key, value in SIMULATION_DEFAULTS.items():
        setattr(own, key, value)
    try:
        yield own
    finally:
        for key, value in saved.items():
            setattr(own, key, value)
        cache.frame_start, cache.frame_end = frames
        bpy.data.collections.remove(bodies)


class JobScope:
    """Everything a job adds is removed on exit; base objects get their state back.

    ``keep`` returns the session ids of datablocks that must survive (the asset cache)."""

    def __init__(self, keep=lambda: set()):
        self._keep = keep

    def __enter__(self):
        scene = bpy.context.scene
        self.before = session_id_sets()
        self.states = {obj.name: object_state(obj) for obj in scene.objects}
        self.world, self.camera = scene.world, scene.camera
        self.frame = scene.frame_current
        self.had_rigid_body_world = scene.rigidbody_world is not None
        self.rate = (scene.render.fps, scene.render.fps_base)
        self.collection = bpy.data.collections.new(JOB_COLLECTION)
        scene.collection.children.link(self.collection)
        return self

    def __exit__(self, *exc):
        scene = bpy.context.scene
        if not self.had_rigid_body_world:  # a job's own world (a failed simulation may leave one); the user's stays
            remove_rigid_body_world(scene)
        scene.world, scene.camera = self.world, self.camera
        scene.render.fps, scene.render.fps_base = self.rate
        scene.frame_set(self.frame)
        for obj in scene.objects:
            if obj.name in self.states:
                restore_object(obj, self.states[obj.name])
        doomed = [id_ for ids in new_datablocks(self.before, self._keep()).values() for id_ in ids]
        if doomed:
            bpy.data.batch_remove(doomed)
        return False


def bpy_data_counts() -> dict[str, int]:
    """How many datablocks of each tracked kind exist (used by tests and the memory benchmark)."""
    return {name: len(getattr(bpy.data, name)) for name in TRACKED}
