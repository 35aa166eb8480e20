"""One job's scene applied to the viewport and taken back: the add-on's Randomize and Clear Sample.

A sample lives in the collection ``synthfarm_sample``. What it needs to be undone (the states of the
user's objects it moved, the world and camera it replaced, the names of the datablocks it made) is kept
as custom properties of that collection, not in Python, so it survives saving and Blender's undo.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import bpy

from ..core.jobs import JobSpec
from ..core.recipe import Recipe
from .scene import (new_datablocks, object_state, session_id_sets, remove_rigid_body_world,
                    restore_object)

log = logging.getLogger(__name__)

SAMPLE_COLLECTION = "synthfarm_sample"
_STATE = "synthfarm_sample_state"


def current_sample(scene):
    coll = bpy.data.collections.get(SAMPLE_COLLECTION)
    return coll if coll is not None and _STATE in coll and coll.name in scene.collection.children else None


def apply_sample(scene, runner, recipe: Recipe, base_dir: Path | None, job: JobSpec) -> dict:
    """Build ``job``'s scene into the viewport (after taking back any previous sample). Returns what
    was drawn: {component path: value} as logged by the sampler."""
    clear_sample(scene)
    runner.release()  # so that everything the sample uses is made below and recorded as its own
    runner.prepare(recipe, base_dir)
    before = session_id_sets()
    states = {obj.name: object_state(obj) for obj in scene.objects}
    world, camera = scene.world, scene.camera
    collection = bpy.data.collections.new(SAMPLE_COLLECTION)
    scene.collection.children.link(collection)
    had_rigid_body_world = scene.rigidbody_world is not None
    try:
        sampler, cameras, updates = runner.build(recipe, base_dir, job, collection)
        for update in updates:
            update(0)
    except BaseException:  # a sample that failed half way leaves nothing behind
        runner.release()
        _take_back(scene, states, world, camera, before, had_rigid_body_world)
        raise
    if not had_rigid_body_world:  # placements are final; a simulation's world is not part of the sample
        remove_rigid_body_world(scene)
    if cameras:
        scene.camera = cameras[recipe.sensors[0].name]
    bpy.context.view_layer.update()
    runner.release()  # the sample owns what it uses; nothing else of the cache stays in the user's file
    made = {kind: [id_.name for id_ in ids] for kind, ids in new_datablocks(before).items()}
    moved = {name: state for name, state in states.items()
             if name in scene.objects and object_state(scene.objects[name]) != state}
    collection[_STATE] = json.dumps({"made": made, "moved": moved, "world": world.name if world else None,
                                     "camera": camera.name if camera else None, "job": job.model_dump()})
    return dict(sampler.log)


def _take_back(scene, states: dict, world, camera, before: dict, had_rigid_body_world: bool) -> None:
    """Undo a sample that failed half way: the user's objects, world and camera as they were, what it made gone."""
    if not had_rigid_body_world:
        remove_rigid_body_world(scene)
    for name, state in states.items():
        obj = scene.objects.get(name)
        if obj is not None:
            restore_object(obj, state)
    scene.world, scene.camera = world, camera
    doomed = [id_ for ids in new_datablocks(before).values() for id_ in ids]
    if doomed:
        bpy.data.batch_remove(doomed)


def sample_job(scene) -> JobSpec | None:
    """The job whose sample is in the viewport (None when there is none)."""
    coll = current_sample(scene)
    if coll is None:
        return None
    job = json.loads(coll[_STATE]).get("job")
    return JobSpec.model_validate(job) if job else None


def clear_sample(scene) -> bool:
    """Take the viewport sample back: the user's objects, world and camera as they were. True if there
    was one."""
    coll = current_sample(scene)
    if coll is None:
        return False
    state = json.loads(coll[_STATE])
    for name, obj_state in state["moved"].items():
        obj = scene.objects.get(name)
        if obj is not None:
            restore_object(obj, obj_state)
    scene.world = bpy.data.worlds.get(state["world"]) if state["world"] else None
    scene.camera = bpy.data.objects.get(state["camera"]) if state["camera"] else None
    doomed = {coll}
    for kind, names in state["made"].items():
        data = getattr(bpy.data, kind)
        doomed |= {data[n] for n in names if n in data}
    bpy.data.batch_remove(doomed)
    return True
