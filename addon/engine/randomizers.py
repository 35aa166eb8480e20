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
from .assets import member_path

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
    if mode == "uniform":
        q = uniform_rotation(rng)
    else:
        q = Quaternion((0, 0, 1), float(rng.uniform(0, 2 * math.pi)))
    obj.rotation_mode = "QUATERNION"
    obj.rotation_quaternion = q
    stream.record("rotation", list(q), obj.name)


# -- object placement ---------------------------------------------------------------------------------
def _pose_in_volume(rnd, made, stream, ctx):
    for obj in _targets(rnd, made):
        obj.location = stream.draw("position", rnd.position, obj.name)
        _rotate(obj, rnd.rotation, stream.rng, stream)


def _lowest_z(obj) -> float:
    """Lowest point of the object's bounds relative to its origin, in world units (current rotation)."""
    bpy.context.view_layer.update()
    return min((obj.matrix_world @ Vector(c)).z for c in obj.bound_box) - obj.matrix_world.translation.z


def _scatter_on_surface(rnd, made, stream, ctx):
    area = stream.draw("area", rnd.area)
    if rnd.surface:
        lo, hi = world_bounds(made[rnd.surface])
        x0, x1, y0, y1, top = lo.x, hi.x, lo.y, hi.y, hi.z
    else:
        x0, x1, y0, y1, top = -area[0] / 2, area[0] / 2, -area[1] / 2, area[1] / 2, area[2]
    gap = stream.draw("gap", rnd.gap)
    placed: list[tuple[float, float, float]] = []
    for obj in _targets(rnd, made):
        if rnd.yaw:
            _rotate(obj, "yaw", stream.rng, stream)
        r = 0.5 * math.hypot(obj.dimensions.x, obj.dimensions.y)
        for _ in range(rnd.max_tries):
            x = stream.rng.uniform(x0 + r, max(x0 + r, x1 - r))
            y = stream.rng.uniform(y0 + r, max(y0 + r, y1 - r))
            if all(math.hypot(x - px, y - py) >= r + pr + gap for px, py, pr in placed):
                break
        else:
            log.warning("scatter %s: no free place for %s after %d tries; hiding it", rnd.name, obj.name,
                        rnd.max_tries)
            obj.hide_render = True
            stream.record("position", None, obj.name)
            continue
        placed.append((x, y, r))
        obj.location = (x, y, 0.0)
        obj.location.z = top - _lowest_z(obj)
        stream.record("position", list(obj.location), obj.name)


def _with_object(obj):
    return bpy.context.temp_override(object=obj, active_object=obj, selected_objects=[obj],
                                     scene=bpy.context.scene)


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
    if scene.rigidbody_world is None:
        with bpy.context.temp_override(scene=scene):
            bpy.ops.rigidbody.world_add()
    steps = max(1, math.ceil(rnd.seconds * scene.render.fps))
    world = scene.rigidbody_world
    world.point_cache.frame_start, world.point_cache.frame_end = 1, steps + 1
    for obj in colliders:
        with _with_object(obj):
            bpy.ops.rigidbody.object_add(type="PASSIVE")
        obj.rigid_body.collision_shape = "MESH"
    lo, hi = world_bounds([o for o in colliders if o.name != "synthfarm_floor"] or targets)
    centre = (lo + hi) / 2
    top = hi.z if rnd.into else (rnd.floor or 0.0)
    stack = top
    for obj in targets:
        _rotate(obj, "uniform", stream.rng, stream)
        spread = stream.draw("spread", rnd.spread, obj.name)
        height = stream.draw("height", rnd.height, obj.name)
        angle, dist = stream.rng.uniform(0, 2 * math.pi), spread * math.sqrt(stream.rng.uniform())
        obj.location = (centre.x + dist * math.cos(angle), centre.y + dist * math.sin(angle), 0.0)
        size = max(obj.dimensions)
        obj.location.z = max(stack, top + height) - _lowest_z(obj)
        stack = obj.location.z + _lowest_z(obj) + size * 1.05  # no two bodies start inside each other
        with _with_object(obj):
            bpy.ops.rigidbody.object_add(type="ACTIVE")
        obj.rigid_body.collision_shape = "CONVEX_HULL"
    frames = ctx["frames"]
    wanted = sorted({1 + round(k * steps / max(1, frames - 1)) if frames > 1 else steps + 1 for k in range(frames)})
    poses: dict[int, list[Matrix]] = {}
    for f in range(1, steps + 2):
        scene.frame_set(f)
        if f in wanted:
            poses[f] = [o.matrix_world.copy() for o in targets]
    with bpy.context.temp_override(scene=scene):
        bpy.ops.rigidbody.world_remove()
    for obj in targets + colliders:
        if obj.rigid_body is not None:
            with _with_object(obj):
                bpy.ops.rigidbody.object_remove()
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
    cams = ctx["cameras"]
    if rnd.sensor is None:
        return list(cams.values())
    if rnd.sensor not in cams:
        raise RandomizerError(f"randomizers.{rnd.name}.sensor: no sensor {rnd.sensor!r}; sensors are {list(cams)}")
    return [cams[rnd.sensor]]


def _camera_orbit(rnd, made, stream, ctx):
    target = resolve_point(rnd.look_at, made)
    radius, height = stream.draw("radius", rnd.radius), stream.draw("height", rnd.height)
    azimuth, speed = stream.draw("azimuth", rnd.azimuth), stream.draw("speed", rnd.speed)
    cams = _cameras(rnd, ctx)

    def at_frame(k: int):
        az = math.radians(azimuth + speed * k)
        for cam in cams:
            cam.location = target + Vector((radius * math.cos(az), radius * math.sin(az), height))
            bpy.context.view_layer.update()
            point_at(cam, target)

    at_frame(0)
    return at_frame if speed else None


def _camera_shell(rnd, made, stream, ctx):
    target = resolve_point(rnd.look_at, made)
    for cam in _cameras(rnd, ctx):
        cam.location = spherical(target, stream.draw("radius", rnd.radius, cam.name),
                                 stream.draw("elevation", rnd.elevation, cam.name),
                                 stream.draw("azimuth", rnd.azimuth, cam.name))
        bpy.context.view_layer.update()
        point_at(cam, target)


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


APPLY = {"pose_in_volume": _pose_in_volume, "scatter_on_surface": _scatter_on_surface,
         "physics_drop": _physics_drop, "camera_orbit": _camera_orbit, "camera_shell": _camera_shell,
         "lights": _lights, "world": _world, "pose_in_view": _pose_in_view, "backplate": _image_stage,
         "image_effects": _image_stage}


def apply_randomizers(recipe: Recipe, made: dict, sampler: Sampler, *, cameras: dict, collection, base_dir,
                      frames: int) -> list[FrameUpdate]:
    ctx = {"cameras": cameras, "collection": collection, "base_dir": base_dir, "frames": frames}
    updates = []
    for rnd in recipe.randomizers:
        update = APPLY[rnd.kind](rnd, made, sampler.stream(f"randomizers/{rnd.name}"), ctx)
        if update is not None:
            updates.append(update)
    bpy.context.view_layer.update()
    return updates
