"""Every asset format loads once into one template mesh outside the scene; errors are clear."""
from pathlib import Path

import bpy
import pytest

from synthfarm.addon.engine.assets import AssetCache, AssetError, instantiate, list_assets

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture()
def cache():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return AssetCache()


@pytest.mark.parametrize("name,size", [("duck.blend", 0.124), ("block.obj", 0.05), ("ring.obj", 0.094),
                                       ("ball.glb", 0.07), ("rocket.ply", 0.1), ("car.stl", 0.1)])
def test_each_format_loads(cache, name, size):
    template = cache.get(ASSETS / "toys" / name)
    assert template.type == "MESH" and len(template.data.vertices) > 0
    assert max(template.dimensions) == pytest.approx(size, abs=2e-3)
    assert template.data.materials and template.name not in bpy.context.scene.objects
    assert min(v.co.z for v in template.data.vertices) == pytest.approx(0, abs=1e-6)  # origin at the base
    assert len(bpy.context.scene.objects) == 0 and all(o.type == "MESH" for o in bpy.data.objects)


def test_cache_hit_and_instances_share_the_mesh(cache):
    first = cache.get(ASSETS / "toys" / "ball.glb")
    meshes = len(bpy.data.meshes)
    assert cache.get(ASSETS / "toys" / "ball.glb") is first and len(bpy.data.meshes) == meshes
    coll = bpy.data.collections.new("job")
    bpy.context.scene.collection.children.link(coll)
    before = (len(bpy.data.meshes), len(bpy.data.materials))
    for i in range(20):
        obj = instantiate(first, coll, f"ball.{i}")
        assert obj.data == first.data
        bpy.data.objects.remove(obj)
    assert (len(bpy.data.meshes), len(bpy.data.materials)) == before
    assert first.data.name in bpy.data.meshes


def test_errors_name_the_file_and_the_fix(cache, tmp_path):
    with pytest.raises(AssetError, match="does not exist"):
        cache.get(tmp_path / "missing.obj")
    (tmp_path / "model.fbx").write_text("x")
    with pytest.raises(AssetError, match="unsupported asset type '.fbx'"):
        cache.get(tmp_path / "model.fbx")
    with pytest.raises(AssetError, match="no object or collection named 'goose'"):
        cache.get(ASSETS / "toys" / "duck.blend", "goose")
    with pytest.raises(AssetError, match="holds no"):
        list_assets(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)


def test_listing_and_material_library(cache):
    names = [p.name for p in list_assets(ASSETS / "toys")]
    assert names == sorted(names) and "block.mtl" not in names and len(names) == 6
    library = cache.load_material_library(ASSETS / "toybox" / "materials.blend")
    assert set(library) == {"wood", "plastic_red", "metal", "rubber"}
    assert cache.load_material_library(ASSETS / "toybox" / "materials.blend") is library


def test_duck_keypoints_travel_with_the_template(cache):
    template = cache.get(ASSETS / "toys" / "duck.blend", "duck")
    points = {k: list(v) for k, v in template["synthfarm_keypoints"].items()}
    assert sorted(points) == ["beak", "crown", "tail"]
    assert points["beak"][0] > points["crown"][0] > points["tail"][0]  # beak in front, tail behind
    assert points["crown"][2] == pytest.approx(max(v.co.z for v in template.data.vertices), abs=0.005)
    assert not [o for o in bpy.data.objects if o.name.startswith("kp:")]  # the empties are not kept
