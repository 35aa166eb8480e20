"""Render a recipe from a Blender background script, or with the bpy module.

Inside a Blender installation (arguments after ``--``)::

    blender -b [scene.blend] --python scripts/render.py -- --recipe R --jobs N --out DIR

With the bpy module (pip install bpy)::

    python scripts/render.py [--blend scene.blend] --recipe R --jobs N --out DIR

R is a recipe YAML file, or a .blend whose scene holds a recipe (saved by the add-on); it may also be
given first without ``--recipe`` (``python scripts/render.py scene.blend --jobs N --out DIR``). When a
.blend is given (either way), rendering starts from that scene and its objects labelled with the custom
property ``synthfarm_class`` are labelled. Works whether or not synthfarm is pip-installed:
the package is loaded from this repository when it is not.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import load_synthfarm  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/render.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", metavar="RECIPE", help="the recipe (instead of --recipe)")
    parser.add_argument("--recipe", help="recipe YAML file, or a .blend with a recipe on its scene")
    parser.add_argument("--jobs", type=int, default=1, help="number of jobs (default 1)")
    parser.add_argument("--out", required=True, help="dataset folder (resumed if it exists)")
    parser.add_argument("--seed", type=int, default=0, help="batch seed (default 0)")
    parser.add_argument("--preview", action="store_true", help="preview tier")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                        help="set a recipe parameter (repeatable)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--blend", help="start from this .blend (bpy module only; with blender, pass it before -b)")
    args = parser.parse_args(argv)
    if args.source and args.recipe and args.source != args.recipe:
        parser.error("give the recipe once: RECIPE or --recipe")
    args.recipe = args.recipe or args.source
    if not args.recipe:
        parser.error("a recipe is required: RECIPE or --recipe (a YAML file, or a .blend with a recipe on its scene)")
    if args.blend and args.recipe.lower().endswith(".blend"):
        parser.error("--blend is not used with a .blend recipe: that file is the scene rendering starts from")
    return args


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import bpy

    synthfarm = load_synthfarm()
    from synthfarm.addon.core.jobs import coerce_param
    from synthfarm.addon.core.recipe import RecipeError
    from synthfarm.addon.engine.api import load_source

    try:
        recipe = load_source(args.recipe)[0]  # a .blend is opened here and becomes the base scene
    except (RecipeError, FileNotFoundError) as err:
        print(f"synthfarm: {err}", file=sys.stderr)
        return 2
    params = {}
    for pair in args.sets:
        name, _, text = pair.partition("=")
        params[name] = coerce_param(recipe, name, text)
    if args.blend:
        bpy.ops.wm.open_mainfile(filepath=str(Path(args.blend).resolve()), load_ui=False, use_scripts=False)
    use_current = bool(args.blend or bpy.data.filepath)
    summary = synthfarm.render(args.recipe, jobs=args.jobs, out=args.out, seed=args.seed, preview=args.preview,
                               params=params, device=args.device, use_current_scene=use_current,
                               progress=sys.stderr.isatty())
    print(f"synthfarm: {summary.jobs_rendered + summary.jobs_skipped}/{summary.jobs_total} jobs in {summary.out} "
          f"({summary.frames} frames rendered, {summary.seconds:.1f} s, device {summary.device})")
    return 130 if summary.interrupted else 0


if __name__ == "__main__":
    code = main()
    if code:
        sys.exit(code)
