"""Appearance with real Blender: each feature changes the look and never the labels."""
import json
from pathlib import Path

import bpy  # noqa: F401  (real Blender is required here)
import numpy as np
import pytest
import yaml
from PIL import Image

import synthfarm
from synthfarm.addon.core import effects
from synthfarm.addon.core.dataset.native import read_png
from synthfarm.addon.core.exr import read_depth
from synthfarm.addon.core.recipe import recipe_from_data
from synthfarm.addon.engine.modifiers import ModifierError

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.yaml"
STEM = "0000000000-0000-cam"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny texture set (ambientCG names), one without a colour map, and two backplates."""
    root = tmp_path_factory.mktemp("appearance")
    y, x = np.mgrid[0:32, 0:32]
    (root / "textures" / "Tiles001").mkdir(parents=True)
    checker = np.where(((x // 8 + y // 8) % 2)[..., None], (230, 40, 40), (40, 40, 230)).astype(np.uint8)
    Image.fromarray(checker).save(root / "textures" / "Tiles001" / "Tiles001_1K-JPG_Color.png")
    Image.fromarray(np.full((32, 32), 180, np.uint8)).save(root / "textures" / "Tiles001" / "Tiles001_1K-JPG_Roughness.png")
    (root / "bad").mkdir()
    Image.fromarray(np.full((32, 32), 180, np.uint8)).save(root / "bad" / "Rock_Roughness.png")
    (root / "plates").mkdir()
    Image.fromarray(np.full((30, 40, 3), (20, 200, 60), np.uint8)).save(root / "plates" / "green.png")
    Image.fromarray(np.full((30, 40, 3), (200, 20, 160), np.uint8)).save(root / "plates" / "pink.jpg")
    return root


def render(tmp_path, name, change=None, seed=3, **kw):
    data = yaml.safe_load(TINY.read_text())
    data["modifiers"] = [{"kind": "color_variation", "targets": ["cube", "ball"], "hue": 0.6}]
    if change:
        change(data)
    out = tmp_path / name
    synthfarm.render(recipe_from_data(data, base_dir=kw.get("base")), jobs=1, out=out, seed=seed, progress=False)
    return {"rgb": read_png(out / "images" / f"{STEM}.png"), "mask": read_png(out / "masks" / f"{STEM}.png"),
            "depth": read_depth(out / "depth" / f"{STEM}.exr"),
            "objects": json.loads((out / "annotations" / f"{STEM}-ann.json").read_text())["objects"],
            "meta": json.loads((out / "metadata" / f"{STEM}-meta.json").read_text())}


def add(section, item):
    return lambda data: data[section].append(item)


FEATURES = {
    "procedural": lambda f: add("modifiers", {"kind": "procedural_material", "targets": ["cube", "floor"],
                                              "family": "random"}),
    "texture_set": lambda f: add("modifiers", {"kind": "texture_set", "targets": ["cube"],
                                               "textures": str(f / "textures"), "scale": 0.2}),
    "colour_stage": lambda f: add("modifiers", {"kind": "color_variation", "targets": ["cube", "ball"],
                                                "hue_shift": 0.3, "value_scale": 0.7, "roughness_scale": 0.5}),
    "hdri": lambda f: lambda d: d["randomizers"].__setitem__(2, {"kind": "world", "hdri": "blender:*",
                                                                  "temperature": 4000}),
    "background": lambda f: lambda d: d["randomizers"][2].update(background=[0.9, 0.1, 0.1]),
    "backplate": lambda f: add("randomizers", {"kind": "backplate", "images": str(f / "plates")}),
    "effects": lambda f: add("randomizers", {"kind": "image_effects", "noise": 0.05, "blur": 1.0,
                                             "chromatic_shift": 1.0, "jpeg_quality": 50, "vignetting": 0.4}),
    "view": lambda f: lambda d: d["sensors"][0].update(view_transform="Filmic", look="High Contrast",
                                                        exposure=1.0, gamma=1.2),
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return render(tmp_path_factory.mktemp("plain"), "plain")


@pytest.mark.parametrize("feature", FEATURES)
def test_labels_are_identical_with_and_without(plain, files, tmp_path, feature):
    styled = render(tmp_path, feature, FEATURES[feature](files))
    assert np.array_equal(styled["mask"], plain["mask"])
    assert np.array_equal(styled["depth"], plain["depth"])
    assert styled["objects"] == plain["objects"]
    changed = np.abs(styled["rgb"].astype(int) - plain["rgb"]).max(axis=-1) > 10
    assert changed.mean() > 0.03, f"the look did not change ({changed.mean():.3f} of the pixels)"


def test_hue_shift_turns_a_textured_object(files, tmp_path):
    def textured(shift):
        def change(data):
            data["modifiers"] = [{"kind": "texture_set", "targets": ["cube"], "textures": str(files / "textures"),
                                  "scale": 0.2}]
            if shift:
                data["modifiers"].append({"kind": "color_variation", "targets": ["cube"], "hue_shift": shift})
        return change
    before, after = (render(tmp_path, f"shift{s}", textured(s)) for s in (0.0, 0.33))
    cube = before["mask"] == next(o["instance_id"] for o in before["objects"] if o["class"] == "box")
    red_blue = before["rgb"][cube].mean(axis=0)
    turned = after["rgb"][cube].mean(axis=0)
    assert red_blue[1] < min(red_blue[0], red_blue[2])  # red and blue tiles: little green
    assert turned[1] > red_blue[1] + 20  # a third of the circle turns red to green


def test_plain_hue_on_a_textured_colour_is_refused(files, tmp_path):
    def change(data):
        data["modifiers"] = [{"kind": "texture_set", "targets": ["cube"], "textures": str(files / "textures")},
                             {"name": "hsv", "kind": "color_variation", "targets": ["cube"], "hue": 0.3}]
    with pytest.raises(ModifierError, match="modifiers.hsv.hue: .*texture.*hue_shift"):
        render(tmp_path, "refused", change)


def test_a_texture_set_without_colour_map_names_its_folder(files, tmp_path):
    with pytest.raises(ModifierError, match="textures: texture set .*bad.* no colour map"):
        render(tmp_path, "bad", add("modifiers", {"kind": "texture_set", "targets": ["cube"],
                                                  "textures": str(files / "bad")}))


def test_the_hdri_drawn_differs_across_seeds(tmp_path):
    worlds = {}
    for seed in range(4):
        got = render(tmp_path, f"s{seed}", FEATURES["hdri"](None), seed=seed)
        worlds[got["meta"]["sampled"]["randomizers/world"]["hdri"]] = got["rgb"]
    assert len(worlds) >= 2 and all(name.startswith("blender:") for name in worlds)
    a, b = list(worlds.values())[:2]
    assert np.abs(a.astype(int) - b).mean() > 3


def test_backplate_fills_the_background_only(plain, files, tmp_path):
    got = render(tmp_path, "plate", FEATURES["backplate"](files))
    background = np.isinf(got["depth"])
    assert background.any()
    drawn = got["meta"]["sampled"]["randomizers/backplate"]["images"]["cam/0000"]
    colour = {"green.png": (20, 200, 60), "pink.jpg": (200, 20, 160)}[Path(drawn).name]
    assert np.abs(got["rgb"][background].astype(int) - colour).mean() < 8
    objects = got["mask"] > 0
    assert np.abs(got["rgb"][objects].astype(int) - plain["rgb"][objects]).mean() < 12  # lit as before


def test_agx_keeps_a_bright_scene_unclipped(tmp_path):
    def bright(view):
        return lambda d: (d["randomizers"][1].update(energy=20.0), d["sensors"][0].update(view_transform=view))
    standard, agx = (render(tmp_path, v, bright(v))["rgb"] for v in ("Standard", "AgX"))
    assert effects.clipped_fraction(standard) > 0.2
    assert effects.clipped_fraction(agx) < 0.01
