"""Recipe validation: good recipes load; each kind of bad input is an error naming its field path."""
import copy
from pathlib import Path

import pytest

from synthfarm.addon.core.recipe import RecipeError, load_recipe, parse_recipe_text, recipe_from_data
from synthfarm.addon.core.values import Uniform

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "name": "unit",
    "parameters": {"height": {"type": "float", "min": 0.3, "max": 4.0, "default": 1.5},
                   "n": {"type": "int", "min": 1, "max": 9, "default": 3},
                   "floor": {"type": "choice", "choices": ["wood", "tiles"]}},
    "generators": [{"name": "toys", "kind": "primitive", "shape": "cube", "count": "${n}", "class": "toy"},
                   {"name": "ground", "kind": "primitive", "shape": "plane", "size": [4, 4, 1]}],
    "modifiers": [{"kind": "color_variation", "targets": ["toys"], "hue": {"uniform": [0, 1]}}],
    "randomizers": [{"kind": "pose_in_volume", "targets": ["toys"]},
                    {"kind": "camera_orbit", "radius": {"normal": [2, 0.3], "clip": [1, 3]},
                     "height": "${height}", "look_at": "toys"},
                    {"kind": "lights", "count": {"randint": [1, 3]}, "type": {"choice": ["POINT", "SUN"],
                                                                                "weights": [3, 1]}},
                    {"kind": "world", "color": {"choice": [[0.05, 0.05, 0.05], [0.8, 0.8, 0.8]]}}],
    "sensors": [{"name": "cam", "kind": "camera", "resolution": [64, 48], "samples": 2}],
}


def problems(data):
    with pytest.raises(RecipeError) as info:
        recipe_from_data(data)
    return info.value.problems


def edit(path, value):
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def test_good_recipe_loads_and_round_trips_through_yaml():
    recipe = recipe_from_data(GOOD)
    assert isinstance(recipe.randomizers[1].radius, type(recipe.randomizers[1].radius))
    assert isinstance(recipe.modifiers[0].hue, Uniform)
    again = parse_recipe_text(recipe.to_yaml())
    assert again == recipe
    assert again.hash() == recipe.hash()
    assert [r.name for r in recipe.randomizers] == ["pose_in_volume", "camera_orbit", "lights", "world"]


def test_example_recipes_are_valid():
    recipes = sorted((ROOT / "assets" / "recipes").glob("*.yaml"))
    assert recipes, "the example recipes are missing"
    for path in recipes:
        load_recipe(path)


def test_parameter_info():
    info = recipe_from_data(GOOD).parameter_info
    assert info["height"] == {"type": "float", "default": 1.5, "options": {"min": 0.3, "max": 4.0},
                              "description": ""}
    assert info["floor"]["default"] == "wood" and info["floor"]["options"] == {"choices": ["wood", "tiles"]}


@pytest.mark.parametrize("path,value,where,says", [
    (("randomizers", 1, "radius"), {"uniform": [1, -2]}, "randomizers[1].radius.uniform[1]", "must be > 0"),
    (("randomizers", 1, "radius"), {"uniform": [3, 1]}, "randomizers[1].radius.uniform", "above upper bound"),
    (("randomizers", 1, "radius"), {"normal": [2, -1]}, "randomizers[1].radius.normal[1]", "must be >= 0"),
    (("randomizers", 1, "radius"), {"gauss": [2, 1]}, "randomizers[1].radius", "unknown key 'gauss'"),
    (("randomizers", 1, "radius"), "${nope}", "randomizers[1].radius", "unknown parameter ${nope}"),
    (("randomizers", 1, "radius"), "${floor}", "randomizers[1].radius", "parameter 'floor' is choice"),
    (("randomizers", 1, "radius"), "wide", "randomizers[1].radius", "must be a number"),
    (("randomizers", 2, "type"), "NEON", "randomizers[2].type", "'NEON' is not allowed"),
    (("randomizers", 2, "count"), {"uniform": [1, 3]}, "randomizers[2].count.uniform", "use randint"),
    (("randomizers", 3, "color"), {"choice": [[0, 0, 2]]}, "randomizers[3].color.choice[0][2]", "must be <= 1"),
    (("randomizers", 0, "targets"), ["toys", "toyz"], "randomizers[0].targets[1]", "no generator named 'toyz'"),
    (("randomizers", 1, "look_at"), "nothing", "randomizers[1].look_at", "no generator named 'nothing'"),
    (("modifiers", 0, "hue"), {"uniform": [0, 1.5]}, "modifiers[0].hue.uniform[1]", "must be <= 1"),
    (("modifiers", 0, "colour"), 1, "modifiers[0].colour", "unknown key"),
    (("generators", 0, "shape"), "blob", "generators[0].shape", "Input should be"),
    (("generators", 0, "kind"), "blob", "generators[0]", "unknown kind 'blob'"),
    (("generators", 1, "name"), "toys", "generators[1].name", "used twice"),
    (("generators", 0, "count"), -1, "generators[0].count", "must be >= 0"),
    (("sensors", 0, "resolution"), [64], "sensors[0].resolution[1]", "Field required"),
    (("parameters", "height", "default"), 9, "parameters.height", "above max"),
    (("frames",), 0, "frames", "greater than or equal to 1"),
])
def test_bad_input_names_the_field(path, value, where, says):
    found = problems(edit(path, value))
    assert any(p == where and says in m for p, m in found), found


def test_parameter_range_must_fit_the_field():
    data = edit(("parameters", "height", "min"), -1.0)
    recipe_from_data(data)  # camera height takes any real number: fine
    data = edit(("randomizers", 1, "radius"), "${height}")
    data["parameters"]["height"]["min"] = -1.0
    found = problems(data)
    assert any(p == "randomizers[1].radius" and "min -1" in m for p, m in found), found


def test_missing_asset_file_is_named(tmp_path):
    data = edit(("generators", 0), {"name": "toys", "kind": "asset", "source": "nowhere/duck.obj"})
    path = tmp_path / "r.yaml"
    import yaml
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert any(p == "generators[0].source" and "does not exist" in m and str(tmp_path) in m
               for p, m in info.value.problems)


def test_yaml_syntax_error_has_line_number():
    with pytest.raises(RecipeError, match="line 3, column 1"):
        parse_recipe_text("name: x\ngenerators: [\n")


def test_error_message_lists_every_problem():
    data = edit(("randomizers", 1, "radius"), {"uniform": [1, -2]})
    data["randomizers"][2]["type"] = "NEON"
    with pytest.raises(RecipeError) as info:
        recipe_from_data(data)
    text = str(info.value)
    assert "randomizers[1].radius.uniform[1]: must be > 0" in text and "randomizers[2].type" in text


def test_every_field_has_a_tooltip():
    from synthfarm.addon.core import schema

    for section in schema.SECTIONS:
        for kind, model in schema.KINDS[section].items():
            for spec in schema.fields_of(model):
                if spec.key == "name":
                    continue
                text = schema.field_help(kind, spec)
                assert spec.key in schema.FIELD_HELP or f"{kind}.{spec.key}" in schema.FIELD_HELP, (kind, spec.key)
                if spec.domain is not None:
                    assert spec.domain.describe() in text
    for spec in schema.top_fields():
        assert spec.key == "name" or spec.key in schema.FIELD_HELP, spec.key


def test_explicit_null_survives_to_data():
    from synthfarm.addon.core.recipe import recipe_from_data

    data = {"name": "n", "generators": [{"name": "g", "kind": "primitive", "shape": "cube"}],
            "randomizers": [{"kind": "physics_drop", "targets": ["g"], "floor": None}],
            "sensors": [{"name": "c", "kind": "camera"}]}
    recipe = recipe_from_data(data, None)
    assert recipe.to_data()["randomizers"][0]["floor"] is None
    assert recipe_from_data(recipe.to_data(), None).randomizers[0].floor is None
    assert "class" not in recipe.to_data()["generators"][0]  # nulls by default stay out


def test_every_problem_at_once_a_wrong_value_and_dangling_names():
    """A field problem no longer hides the problems between fields (they used to come one stage later)."""
    text = ("name: t\ngenerators: [{name: g, kind: primitive, shape: cube, count: {uniform: [1, 2]}}]\n"
            "modifiers: [{kind: scale_jitter, targets: [nope]}]\nrandomizers: [{kind: camera_orbit, sensor: zz}]\n"
            "sensors: [{name: c, kind: camera, resolution: [64]}, {name: d, kind: camera}]\n")
    with pytest.raises(RecipeError) as err:
        parse_recipe_text(text, None)
    found = dict(err.value.problems)
    assert "use randint" in found["generators[0].count.uniform"]
    assert "Field required" in found["sensors[0].resolution[1]"]
    assert "no generator named 'nope'" in found["modifiers[0].targets[0]"]
    assert "no sensor named 'zz'" in found["randomizers[0].sensor"]
    assert len(err.value.problems) == 4


def test_a_recipe_remembers_the_folder_its_paths_were_checked_against():
    """A Recipe handed to the engine (synthfarm.render(recipe)) resolves its files where they were found,
    not in the current folder; the folder is not part of the recipe or its hash."""
    toybox = ROOT / "assets" / "recipes" / "toybox.yaml"
    loaded = load_recipe(toybox)
    assert loaded.base_dir == toybox.parent.resolve()
    again = recipe_from_data(loaded.to_data(), base_dir=toybox.parent)
    assert again.base_dir == toybox.parent.resolve() and again.hash() == loaded.hash()
    assert recipe_from_data(load_recipe(ROOT / "tests/data/tiny.yaml").to_data()).base_dir is None


def test_cycles_speed_settings_are_checked_with_their_field_and_left_out_change_no_hash():
    plain = recipe_from_data(GOOD)
    assert plain.sensors[0].cycles is None and "cycles" not in plain.to_data()["sensors"][0]
    cycles = {"adaptive_threshold": 0.05, "max_bounces": 4, "preview": {"max_bounces": 1, "adaptive_sampling": False}}
    chosen = recipe_from_data(edit(["sensors", 0, "cycles"], cycles))
    assert chosen.hash() != plain.hash()
    assert chosen.sensors[0].cycles.tier(False) == {"adaptive_threshold": 0.05, "max_bounces": 4}
    assert chosen.sensors[0].cycles.tier(True) == {"max_bounces": 1, "adaptive_sampling": False}
    assert recipe_from_data(chosen.to_data()).hash() == chosen.hash()
    cases = {("max_bounces", -1): "sensors[0].cycles.max_bounces",
             ("adaptive_threshold", 0): "sensors[0].cycles.adaptive_threshold",
             ("denoiser", "nvidia"): "sensors[0].cycles.denoiser",
             ("bounces", 4): "sensors[0].cycles.bounces"}
    for (key, value), where in cases.items():
        assert [path for path, _ in problems(edit(["sensors", 0, "cycles"], {key: value}))] == [where]
    [(path, msg)] = problems(edit(["sensors", 0, "cycles"], {"adaptive_sampling": False, "adaptive_threshold": 0.1}))
    assert path == "sensors[0].cycles" and "adaptive_sampling: false" in msg
    undenoised = edit(["sensors", 0, "cycles"], {"denoiser": "optix"})
    undenoised["sensors"][0]["denoise"] = False
    [(path, msg)] = problems(undenoised)
    assert path == "sensors[0]" and "denoise is false" in msg and "set denoise: true" in msg
