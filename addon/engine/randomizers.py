"""Randomizers: where objects, cameras and lights go, and what the world looks like.

They run in recipe order (so a camera can look at where physics left the toys). A randomizer that
moves things over a sequence (``frames > 1``) returns a frame update: a function of the frame index
that the runner calls before rendering that frame.
"""
from __future__ import annotations

import logging
import math
from typing import Callable

import bpy
import numpy as np
from mathutils import Matrix, Quaternion, Vector

from ..core.components import FILE_DOMAINS
from ..core.recipe import Recipe
from ..core.sampling import Sampler, Stream
from . import placement
from .assets import member_path
from .scene import simulation_world

log = logging.getLogger(__name__)
FrameUpdate = Callable[[int], None]


class RandomizerError(Exception):
    pass


# -- geometry helpers ---------------------------------------------------------------------------------
def world_bounds(objects) -> tuple[Vector, Vector]:
    bpy.context.view_layer.update()
    corners = [o.matrix_world @ Vector(c) for o in objects for c in o.bound_box]
    if not corners:
        return Vector((0, 0, 0)), Vector((0, 0, 0))
    lo = Vector([min(c[i] for c in corners) for i in range(3)])
    hi = Vector([max(c[i] for c in corners) for i in range(3)])
    return lo, hi


def resolve_point(look_at, made) -> Vector:
    """A generator name -> the centre of its visible objects' bounds; a point -> itself."""
    if isinstance(look_at, str):
        objects = [o for o in made.get(look_at, []) if not o.hide_render] or made.get(look_at, [])
        lo, hi = world_bounds(objects)
        return (lo + hi) / 2
    return Vector(look_at)


def uniform_rotation(rng: np.random.Generator) -> Quaternion:
    """A rotation drawn uniformly over SO(3) (a normalised 4-D Gaussian is uniform on the sphere)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return Quaternion(q.tolist())


def point_at(obj, target: Vector) -> None:
    """Turn a camera or light (which look down their local -Z) towards ``target``, up = +Z."""
    direction = target - obj.matrix_world.translation
    obj.rotation_mode = "QUATERNION"
    obj.rotation_quaternion = direction.to_track_quat("-Z", "Y")


def spherical(centre: Vector, radius: float, elevation_deg: float, azimuth_deg: float) -> Vector:
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    return centre + radius * Vector((math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)))


def _rotate(obj, mode: str, rng, stream: Stream):
    if mode == "none":
        return
    obj.rotation_mode = "QUATERNION"
    obj.rotation_quaternion = q = _draw_rotation(mode, rng)
    stream.record("rotation", list(q), obj.name)


# -- object placement ---------------------------------------------------------------------------------
def _lowest_z(obj) -> float:
    """Lowest point of the object's bounds relative to its origin, in world units (current rotation)."""
    bpy.context.view_layer.update()
    return min((obj.matrix_world @ Vector(c)).z for c in obj.bound_box) - obj.matrix_world.translation.z


def _draw_rotation(mode: str, rng) -> Quaternion:
    if mode == "uniform":
        return uniform_rotation(rng)
    if mode == "yaw":
        return Quaternion((0, 0, 1), float(rng.uniform(0, 2 * math.pi)))
    return Quaternion()


def _obstacles(rnd, made, ctx) -> placement.Obstacles:
    """Every rendered mesh except this randomizer's targets and objects a later randomizer will move."""
    skip = {o.name for o in _targets(rnd, made)} | {o.name for g in ctx["moved_later"] for o in made.get(g, [])}
    return placement.scene_obstacles(ctx["meshes"], skip)


def _place_all(rnd, made, stream, ctx, propose, ground: float | None = None) -> None:
    """Place each target with poses from ``propose(obj)``, keeping clear of the scene; record the shortfall.
    The gap is not kept from what objects stand on: the surface's objects, or whatever lies below ``ground``."""
    obstacles = _obstacles(rnd, made, ctx) if getattr(rnd, "avoid_collisions", True) else None
    gap = stream.draw("gap", rnd.gap)
    targets = _targets(rnd, made)
    rest_on = {o.name for o in made.get(getattr(rnd, "surface", None) or "", [])}
    if ground is not None and obstacles is not None:
        rest_on |= {s.name for s in obstacles.shapes if s.hi[2] <= ground + 1e-6}
    rest_on = frozenset(rest_on)
    placed, tries_total = 0, 0
    for obj in targets:
        if obstacles is None:
            obj.rotation_mode = "QUATERNION"
            obj.matrix_world = Matrix(propose(obj).tolist())
            tries = 1
        else:
            tries = placement.place(obj, ctx["meshes"], obstacles, lambda: propose(obj), gap=gap,
                                    max_tries=rnd.max_tries, rest_on=rest_on)
        if tries is None:
            tries_total += rnd.max_tries
            if rnd.on_shortfall == "error":
                raise RandomizerError(
                    f"randomizers.{rnd.name}: no free place for {obj.name} in {rnd.max_tries} tries ({placed} of "
                    f"{len(targets)} placed); give more room, fewer objects, a smaller gap or more max_tries, or "
                    f"set on_shortfall: hide")
            obj.hide_render = True
            stream.record("position", None, obj.name)
            continue
        tries_total += tries
        placed += 1
        stream.record("position", list(obj.matrix_world.translation), obj.name)
        stream.record("rotation", list(obj.matrix_world.to_quaternion()), obj.name)
    stream.record("placed", placed)
    stream.record("requested", len(targets))
    stream.record("tries", tries_total)
    if placed < len(targets):
        log.warning("%s: placed %d of %d objects; the others are hidden (shortfall recorded)", rnd.name, placed,
                    len(targets))


def _pose_in_volume(rnd, made, stream, ctx):
    def propose(obj):
        location = stream.draw("position", rnd.position, obj.name)
        keep = obj.matrix_world.to_quaternion()
        rotation = keep if rnd.rotation == "none" else _draw_rotation(rnd.rotation, stream.rng)
        return placement.compose(location, rotation, obj.scale)

    _place_all(rnd, made, stream, ctx, propose)


def _scatter_on_surface(rnd, made, stream, ctx):
    area = stream.draw("area", rnd.area)
    if rnd.surface:
        tris, normals, cumulative = placement.upward_faces(made[rnd.surface], rnd.max_slope)
        if not len(tris):
            raise RandomizerError(f"randomizers.{rnd.name}.surface: {rnd.surface!r} has no face within max_slope "
                                  f"{rnd.max_slope:g} degrees of up; raise max_slope or name another surface")
        support = placement.Support(tris)
    up_z = np.array([0.0, 0.0, 1.0])

    def propose(obj):
        if rnd.surface:
            i, point = placement.sample_on_faces(stream.rng, tris, cumulative)
            up = normals[i] if rnd.align_to_normal else up_z
        else:
            point = np.array([stream.rng.uniform(-area[0] / 2, area[0] / 2),
                              stream.rng.uniform(-area[1] / 2, area[1] / 2), area[2]])
            up = up_z
        rotation = Quaternion((0, 0, 1), float(stream.rng.uniform(0, 2 * math.pi))) if rnd.yaw else Quaternion()
        rotation = Vector(up_z).rotation_difference(Vector(up)) @ rotation
        location = placement.resting_location(ctx["meshes"], obj, point, rotation, up)
        matrix = placement.compose(location, rotation, obj.scale)
        if rnd.surface and not support.holds(ctx["meshes"], obj, matrix, up):
            return None  # hangs over an edge: not a pose
        return matrix

    _place_all(rnd, made, stream, ctx, propose, ground=None if rnd.surface else area[2])


def _with_objects(objects):
    return bpy.context.temp_override(object=objects[0], active_object=objects[0], selected_objects=objects,
                                     scene=bpy.context.scene)


def _add_bodies(objects, kind: str) -> None:
    """Rigid bodies for ``objects``, added to the world in their order, with one operator call (a bpy operator
    costs ~2 ms whatever it does: two depsgraph updates around it)."""
    if objects:
        with _with_objects(objects):
            bpy.ops.rigidbody.objects_add(type=kind)


def _drop_bodies(rnd, stream, targets, colliders) -> None:
    """Colliders become passive bodies; targets are stacked above the drop point as active bodies."""
    _add_bodies(colliders, "PASSIVE")
    for obj in colliders:
        obj.rigid_body.collision_shape = "MESH"
    lo, hi = world_bounds([o for o in colliders if o.name != "synthfarm_floor"] or targets)
    centre = (lo + hi) / 2
    top = hi.z if rnd.into else (rnd.floor or 0.0)
    stack = top
    settings = []
    for obj in targets:
        _rotate(obj, "uniform", stream.rng, stream)
        spread = stream.draw("spread", rnd.spread, obj.name)
        height = stream.draw("height", rnd.height, obj.name)
        angle, dist = stream.rng.uniform(0, 2 * math.pi), spread * math.sqrt(stream.rng.uniform())
        obj.location = (centre.x + dist * math.cos(angle), centre.y + dist * math.sin(angle), 0.0)
        size = max(obj.dimensions)
        obj.location.z = max(stack, top + height) - _lowest_z(obj)
        stack = obj.location.z + _lowest_z(obj) + size * 1.05  # no two bodies start inside each other
        settings.append({"collision_shape": "CONVEX_HULL", "mass": stream.draw("mass", rnd.mass, obj.name),
                         "friction": stream.draw("friction", rnd.friction, obj.name),
                         "restitution": stream.draw("restitution", rnd.restitution, obj.name)})
    _add_bodies(targets, "ACTIVE")
    for obj, values in zip(targets, settings):
        for key, value in values.items():
            setattr(obj.rigid_body, key, value)


def _physics_drop(rnd, made, stream, ctx):
    scene = bpy.context.scene
    targets = _targets(rnd, made)
    colliders = [o for o in made.get(rnd.into, [])] if rnd.into else []
    if rnd.floor is not None:
        mesh = bpy.data.meshes.new("synthfarm_floor")
        mesh.from_pydata([(-50, -50, 0), (50, -50, 0), (50, 50, 0), (-50, 50, 0)], [], [(0, 1, 2, 3)])
        floor = bpy.data.objects.new("synthfarm_floor", mesh)
        ctx["collection"].objects.link(floor)
        floor.location.z = rnd.floor
        floor.hide_render = True
        colliders.append(floor)
    steps = max(1, math.ceil(rnd.seconds * scene.render.fps))
    frames = ctx["frames"]
    wanted = sorted({1 + round(k * steps / max(1, frames - 1)) if frames > 1 else steps + 1 for k in range(frames)})
    poses: dict[int, list[Matrix]] = {}
    with simulation_world(scene) as world:
        world.point_cache.frame_start, world.point_cache.frame_end = 1, steps + 1
        _drop_bodies(rnd, stream, targets, colliders)
        for f in range(1, steps + 2):
            scene.frame_set(f)
            if f in wanted:
                poses[f] = [o.matrix_world.copy() for o in targets]
        bodies = [obj for obj in targets + colliders if obj.rigid_body is not None]
        if bodies:
            with _with_objects(bodies):
                bpy.ops.rigidbody.objects_remove()
    scene.frame_set(1)
    order = sorted(poses)

    def at_frame(k: int):
        matrices = poses[order[min(k, len(order) - 1)]] if frames > 1 else poses[order[-1]]
        for obj, m in zip(targets, matrices):
            obj.matrix_world = m

    at_frame(frames - 1)
    stream.record("final_positions", {o.name: list(o.matrix_world.translation) for o in targets})
    return at_frame if frames > 1 else None


# -- cameras, lights, world -----------------------------------------------------------------------------
def _cameras(rnd, ctx):
    """The cameras a camera randomizer moves: rig roots only (mounted cameras and stereo right views follow)."""
    cams = ctx["cameras"]
    if rnd.sensor is None:
        return [cam for cam in cams.values() if cam.parent is None]
    if rnd.sensor not in cams:
        raise RandomizerError(f"randomizers.{rnd.name}.sensor: no sensor {rnd.sensor!r}; sensors are {list(cams)}")
    return [cams[rnd.sensor]]


def _camera_orbit(rnd, made, stream, ctx):
    from .looking import looked_pose

    target = resolve_point(rnd.look_at, made)
    cams = _cameras(rnd, ctx)

    def draw():
        return (stream.draw("radius", rnd.radius), stream.draw("height", rnd.height),
                stream.draw("azimuth", rnd.azimuth), stream.draw("speed", rnd.speed))

    def place(pose, k: int):
        radius, height, azimuth, speed = pose
        az = math.radians(azimuth + speed * k)
        for cam in cams:
            cam.location = target + Vector((radius * math.cos(az), radius * math.sin(az), height))
            bpy.context.view_layer.update()
            point_at(cam, target)

    pose = looked_pose(rnd, made, stream, ctx, cams, draw, lambda p: place(p, 0))
    return (lambda k: place(pose, k)) if pose[3] else None


def _camera_shell(rnd, made, stream, ctx):
    from .looking import looked_pose

    target = resolve_point(rnd.look_at, made)
    for cam in _cameras(rnd, ctx):
        def draw(cam=cam):
            return spherical(target, stream.draw("radius", rnd.radius, cam.name),
                             stream.draw("elevation", rnd.elevation, cam.name),
                             stream.draw("azimuth", rnd.azimuth, cam.name))

        def place(location, cam=cam):
            cam.location = location
            bpy.context.view_layer.update()
            point_at(cam, target)

        looked_pose(rnd, made, stream, ctx, [cam], draw, place)


def _lights(rnd, made, stream, ctx):
    target = resolve_point(rnd.look_at, made)
    for i in range(stream.draw("count", rnd.count)):
        item = f"light.{i:02d}"
        light = bpy.data.lights.new(f"{rnd.name}.{i:02d}", stream.draw("type", rnd.type, item))
        light.energy = stream.draw("energy", rnd.energy, item)
        light.use_temperature = True
        light.temperature = stream.draw("temperature", rnd.temperature, item)
        obj = bpy.data.objects.new(light.name, light)
        ctx["collection"].objects.link(obj)
        obj.location = spherical(target, stream.draw("radius", rnd.radius, item),
                                 stream.draw("elevation", rnd.elevation, item), stream.draw("azimuth", rnd.azimuth, item))
        bpy.context.view_layer.update()
        point_at(obj, target)


def _world(rnd, made, stream, ctx):
    world = bpy.data.worlds.new(f"synthfarm_{rnd.name}")
    bpy.context.scene.world = world
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = next(n for n in nodes if n.type == "BACKGROUND")
    background.inputs["Strength"].default_value = stream.draw("strength", rnd.strength)
    if rnd.color is not None:
        background.inputs["Color"].default_value = (*stream.draw("color", rnd.color), 1.0)
    elif rnd.gradient is not None:
        bottom, top = (stream.draw(f"gradient[{i}]", v) for i, v in enumerate(rnd.gradient))
        coords, split = nodes.new("ShaderNodeTexCoord"), nodes.new("ShaderNodeSeparateXYZ")
        remap, mix = nodes.new("ShaderNodeMapRange"), nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        remap.inputs["From Min"].default_value = -1.0
        mix.inputs["A"].default_value, mix.inputs["B"].default_value = (*bottom, 1.0), (*top, 1.0)
        links.new(coords.outputs["Generated"], split.inputs[0])
        links.new(split.outputs["Z"], remap.inputs["Value"])
        links.new(remap.outputs["Result"], mix.inputs["Factor"])
        links.new(mix.outputs["Result"], background.inputs["Color"])
    else:
        member = stream.draw_file("hdri", rnd.hdri, FILE_DOMAINS["hdri"], ctx["base_dir"])
        env, mapping, coords = (nodes.new(t) for t in ("ShaderNodeTexEnvironment", "ShaderNodeMapping",
                                                       "ShaderNodeTexCoord"))
        env.image = bpy.data.images.load(str(member_path(member, ctx["base_dir"])), check_existing=True)
        mapping.inputs["Rotation"].default_value[2] = math.radians(stream.draw("rotation", rnd.rotation))
        links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        links.new(env.outputs["Color"], background.inputs["Color"])
    if rnd.temperature is not None:  # white balance: the light tinted by a blackbody colour
        tint, multiply = nodes.new("ShaderNodeBlackbody"), nodes.new("ShaderNodeMix")
        multiply.data_type, multiply.blend_type = "RGBA", "MULTIPLY"
        multiply.inputs[0].default_value = 1.0
        tint.inputs["Temperature"].default_value = stream.draw("temperature", rnd.temperature)
        source = background.inputs["Color"]
        if source.is_linked:
            links.new(source.links[0].from_socket, multiply.inputs[6])
        else:
            multiply.inputs[6].default_value = source.default_value
        links.new(tint.outputs["Color"], multiply.inputs[7])
        links.new(multiply.outputs[2], source)
    if rnd.background is not None:  # the camera sees a plain colour; everything else sees the world
        output = next(n for n in nodes if n.type == "OUTPUT_WORLD")
        path, plain, mix = (nodes.new(t) for t in ("ShaderNodeLightPath", "ShaderNodeBackground",
                                                   "ShaderNodeMixShader"))
        plain.inputs["Color"].default_value = (*stream.draw("background", rnd.background), 1.0)
        links.new(path.outputs["Is Camera Ray"], mix.inputs[0])
        links.new(background.outputs[0], mix.inputs[1])
        links.new(plain.outputs[0], mix.inputs[2])
        links.new(mix.outputs[0], output.inputs["Surface"])


def _pose_in_view(rnd, made, stream, ctx):
    """Each target at a random pixel (inside the margins) and a drawn distance in front of the camera."""
    cams = _cameras(rnd, ctx)[:1]
    if not cams:
        return
    cam = cams[0]
    bpy.context.view_layer.update()
    width, height = cam["synthfarm_resolution"]
    half_x = cam.data.sensor_width / (2.0 * cam.data.lens)  # tan of half the horizontal view (sensor fit: width)
    half_y = half_x * height / width
    margin = stream.draw("margin", rnd.margin)
    for obj in _targets(rnd, made):
        u, v = stream.rng.uniform(margin, 1 - margin, size=2)
        depth = stream.draw("distance", rnd.distance, obj.name)
        local = Vector(((2 * u - 1) * half_x, (2 * v - 1) * half_y, -1.0)) * depth
        obj.location = cam.matrix_world @ local
        _rotate(obj, rnd.rotation, stream.rng, stream)
        stream.record("position", list(obj.location), obj.name)


def _image_stage(rnd, made, stream, ctx):
    """Backplates and image effects act on the rendered image; the runner draws them per frame."""
    _cameras(rnd, ctx)  # an unknown sensor is an error now, not after the render


def _targets(rnd, made) -> list:
    return [o for t in rnd.targets for o in made.get(t, [])]


MOVERS = ("pose_in_volume", "pose_in_view", "scatter_on_surface", "physics_drop")
APPLY = {"pose_in_volume": _pose_in_volume, "scatter_on_surface": _scatter_on_surface,
         "physics_drop": _physics_drop, "camera_orbit": _camera_orbit, "camera_shell": _camera_shell,
         "lights": _lights, "world": _world, "pose_in_view": _pose_in_view, "backplate": _image_stage,
         "image_effects": _image_stage}


def apply_randomizers(recipe: Recipe, made: dict, sampler: Sampler, *, cameras: dict, collection, base_dir,
                      frames: int) -> list[FrameUpdate]:
    from .trajectories import APPLY as MOTION

    ctx = {"cameras": cameras, "collection": collection, "base_dir": base_dir, "frames": frames,
           "frame_rate": recipe.frame_rate, "meshes": placement.Meshes()}
    updates = []
    for i, rnd in enumerate(recipe.randomizers):
        ctx["moved_later"] = {t for later in recipe.randomizers[i + 1:] if later.kind in MOVERS for t in later.targets}
        update = {**APPLY, **MOTION}[rnd.kind](rnd, made, sampler.stream(f"randomizers/{rnd.name}"), ctx)
        if update is not None:
            updates.append(update)
    bpy.context.view_layer.update()
    return updates
