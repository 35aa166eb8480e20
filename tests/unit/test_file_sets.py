"""File sets: every file field takes a path, a folder, a glob or a weighted choice; validate names an empty
set with its pattern; the farm bundle carries exactly what a set can draw."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthfarm.addon.core.components import FILE_DOMAINS
from synthfarm.addon.core.recipe import RecipeError, map_paths, parse_recipe_text, rebase_paths
from synthfarm.addon.core.values import BLENDER_WORLDS, draw_file, file_members, parse_value
from synthfarm.farm.transfer import make_bundle

HDRI = FILE_DOMAINS["hdri"]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "hdri").mkdir()
    for name in ("sky.exr", "sun.hdr", "notes.txt", "studio.exr"):
        (tmp_path / "hdri" / name).write_bytes(b"x")
    (tmp_path / "plates" / "sub").mkdir(parents=True)
    (tmp_path / "plates" / "a.jpg").write_bytes(b"x")
    (tmp_path / "plates" / "sub" / "b.png").write_bytes(b"x")
    for name in ("wood", "brick"):
        (tmp_path / "textures" / name).mkdir(parents=True)
        (tmp_path / "textures" / name / f"{name}_Color.jpg").write_bytes(b"x")
    return tmp_path


def members(data, domain, base):
    return file_members(parse_value(data, domain), domain, base)


def test_forms_of_a_set(folder):
    assert members("hdri/sky.exr", HDRI, folder) == ["hdri/sky.exr"]
    assert members("hdri", HDRI, folder) == ["hdri/sky.exr", "hdri/studio.exr", "hdri/sun.hdr"]  # not notes.txt
    assert members("hdri/s*.exr", HDRI, folder) == ["hdri/sky.exr", "hdri/studio.exr"]
    assert members({"choice": ["hdri/sun.hdr", "blender:s*"]}, HDRI, folder) == [
        "hdri/sun.hdr", "blender:studio", "blender:sunrise", "blender:sunset"]
    assert members("blender:*", HDRI, None) == [f"blender:{n}" for n in BLENDER_WORLDS]
    assert members("plates/**/*.png", FILE_DOMAINS["images"], folder) == ["plates/sub/b.png"]
    assert members("textures", FILE_DOMAINS["textures"], folder) == ["textures/brick", "textures/wood"]
    assert members("textures/wood", FILE_DOMAINS["textures"], folder) == ["textures/wood"]  # a set folder itself
    absolute = str(folder / "hdri" / "*.hdr")
    assert members(absolute, HDRI, Path("/")) == [str(folder / "hdri" / "sun.hdr")]


def test_draws_follow_the_weights_and_the_seed(folder):
    spec = parse_value({"choice": ["hdri/sky.exr", "hdri"], "weights": [3, 1]}, HDRI)
    draws = [draw_file(spec, HDRI, np.random.default_rng(s), folder) for s in range(400)]
    assert draws.count("hdri/sky.exr") / 400 == pytest.approx(0.75 + 0.25 / 3, abs=0.06)
    assert {"hdri/studio.exr", "hdri/sun.hdr"} <= set(draws)
    again = [draw_file(spec, HDRI, np.random.default_rng(s), folder) for s in range(400)]
    assert draws == again


@pytest.mark.parametrize("data, message", [
    ("${p}", "not a parameter"), ("blender:moon", "none of Blender's HDRIs"), ("", "must be a path"),
    ({"choice": []}, "non-empty")])
def test_bad_file_values_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        parse_value(data, HDRI)


def test_validate_names_an_empty_set_with_its_pattern(folder):
    text = f"""name: t
generators: [{{name: g, kind: primitive, shape: cube}}]
randomizers:
  - {{kind: world, hdri: {{choice: [hdri/sky.exr, "hdri/*.jpg", missing]}}}}
  - {{kind: backplate, images: plates/sub/*.jpg}}
  - {{kind: world, hdri: "blender:*"}}
sensors: [{{name: c, kind: camera}}]
"""
    with pytest.raises(RecipeError) as err:
        parse_recipe_text(text, folder)
    problems = dict(err.value.problems)
    assert "'hdri/*.jpg' matches no files (.exr, .hdr; or blender:NAME)" in problems["randomizers[0].hdri.choice[1]"]
    assert "does not exist" in problems["randomizers[0].hdri.choice[2]"]
    assert "plates/sub/*.jpg" in problems["randomizers[1].images"]
    assert len(problems) == 3  # sky.exr and Blender's own are fine


def test_bundle_carries_every_drawable_file_and_nothing_else(folder):
    (folder / "recipes").mkdir()
    recipe_path = folder / "recipes" / "r.yaml"
    recipe_path.write_text("""name: t
generators: [{name: g, kind: primitive, shape: cube, class: a}]
modifiers: [{kind: texture_set, targets: [g], textures: ../textures}]
randomizers:
  - {kind: world, hdri: {choice: ["../hdri/s*.exr", "blender:forest"]}}
  - {kind: backplate, images: ../plates}
sensors: [{name: c, kind: camera}]
""")
    root, rel, manifest = make_bundle(parse_recipe_text(recipe_path.read_text(), recipe_path.parent), recipe_path)
    assert set(manifest) == {"recipes/r.yaml", "hdri/sky.exr", "hdri/studio.exr", "plates/a.jpg",
                             "textures/brick/brick_Color.jpg", "textures/wood/wood_Color.jpg"}


def test_map_paths_walks_choices_and_leaves_blender_names(tmp_path):
    data = yaml.safe_load("""name: t
generators: [{name: g, kind: asset, source: {choice: [a.obj, "m/*.glb"], weights: [1, 2]}}]
randomizers: [{kind: world, hdri: {choice: ["blender:city", h/sky.exr]}}]
sensors: [{name: c, kind: camera}]
""")
    seen = []
    map_paths(data, lambda p, field: seen.append((p, field)) or p)
    assert seen == [("a.obj", "source"), ("m/*.glb", "source"), ("h/sky.exr", "hdri")]
    moved = rebase_paths(data, tmp_path / "a", tmp_path / "b")
    assert moved["generators"][0]["source"] == {"choice": ["../a/a.obj", "../a/m/*.glb"], "weights": [1, 2]}
    assert moved["randomizers"][0]["hdri"]["choice"] == ["blender:city", "../a/h/sky.exr"]
