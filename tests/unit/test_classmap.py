"""Class maps: rules are data (exact names and globs), errors name the field."""
import pytest

from synthfarm.addon.core.dataset.classmap import ClassMap, ClassMapError, load_class_map
from synthfarm.addon.core.recipe import RecipeError, recipe_from_data

MAP = {"classes": [{"id": 1, "name": "fruit"}, {"id": 5, "name": "tool", "supercategory": "object"}],
       "rules": [{"match": {"name": "Hammer*"}, "class": "tool"},
                 {"match": {"label": ["apple", "pear"], "generator": "bowl"}, "class": "fruit"},
                 {"match": {"label_glob": "*_fruit"}, "class": "fruit"}]}


def obj(label, name="x", generator="g"):
    return {"class": label, "name": name, "generator": generator}


def test_rules_first_match_wins_and_unmatched_is_dropped():
    cmap = ClassMap.model_validate(MAP)
    assert cmap.resolve(obj("apple", "Hammer.001")).name == "tool"
    assert cmap.resolve(obj("apple", generator="bowl")).id == 1
    assert cmap.resolve(obj("apple", generator="table")) is None  # every key of a rule must match
    assert cmap.resolve(obj("star_fruit")).name == "fruit"
    assert cmap.resolve(obj("tool")).id == 5  # a label that is a class name maps to itself
    assert cmap.resolve(obj("__import__('os').system('x')")) is None  # text is never evaluated


def test_keep_adds_classes_after_the_highest_id():
    cmap = ClassMap.model_validate({**MAP, "unmatched": "keep"})
    assert (cmap.resolve(obj("banana")).id, cmap.resolve(obj("cherry")).id) == (6, 7)
    assert cmap.resolve(obj("banana")).id == 6


@pytest.mark.parametrize("change,message", [
    ({"classes": [{"id": 0, "name": "bg"}]}, "classes.0.id"),
    ({"classes": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}, "id 1 is used twice"),
    ({"rules": [{"match": {"label": "a"}, "class": "nothing"}]}, "rules[0].class: 'nothing' is not in classes"),
    ({"rules": [{"match": {"colour": "red"}, "class": "fruit"}]}, "rules.0.match.colour"),
    ({"unmatched": "maybe"}, "unmatched"),
])
def test_bad_class_maps_name_the_field(tmp_path, change, message):
    import yaml
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({**MAP, **change}))
    with pytest.raises(ClassMapError, match="invalid class map") as info:
        load_class_map(path)
    assert message in str(info.value)


def test_recipe_checks_its_output_section(tmp_path):
    base = {"name": "r", "generators": [{"name": "a", "kind": "primitive", "shape": "cube"}],
            "sensors": [{"name": "cam", "kind": "camera"}]}
    with pytest.raises(RecipeError, match=r"output.formats: formats\[1\]: unknown format 'tfrecord'"):
        recipe_from_data({**base, "output": {"formats": ["coco", "tfrecord"]}})
    with pytest.raises(RecipeError, match="output.class_map: class map .* not found"):
        recipe_from_data({**base, "output": {"class_map": "nope.yaml"}}, base_dir=tmp_path)
    with pytest.raises(RecipeError, match=r"output.filters.min_visibility"):
        recipe_from_data({**base, "output": {"filters": {"min_visibility": 2}}})
