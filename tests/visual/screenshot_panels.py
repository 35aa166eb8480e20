"""Screenshots of every Synthfarm panel in a real Blender window, for a person to look at after a change.
Not part of the test suite (pytest does not collect it); run it by hand:

    python tests/visual/screenshot_panels.py --blender /path/to/blender --out shots/ [--zip dist/synthfarm-...zip]

It builds the extension zip (unless --zip is given), installs it into a throw-away Blender user folder with
Blender's own installer (``blender --command extension install-file --enable``), starts Blender on a virtual
screen (Xvfb, when no DISPLAY is set), opens the 3D viewport's sidebar on the Synthfarm tab, imports a recipe
and saves a PNG of the whole window and of the sidebar for each panel, opened one at a time, then runs
Preview and saves the window with the preview shown. ``blender_driver.py`` is what runs inside Blender.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("screenshots")


def blender_python(blender: str, env: dict) -> str:
    """The X.Y of the Python a Blender runs (a distribution's build may run another than blender.org's)."""
    run = subprocess.run([blender, "--background", "--factory-startup", "--python-expr",
                          "import sys; print('PYTHON', '%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, env=env, check=True)
    return next(line.split()[1] for line in run.stdout.splitlines() if line.startswith("PYTHON "))


def build_zip(folder: Path, python: str) -> Path:
    run = subprocess.run([sys.executable, str(ROOT / "scripts/build_extension.py"), "--out", str(folder),
                          "--python", python], capture_output=True, text=True, check=True)
    return Path(run.stdout.strip().splitlines()[-1])


def virtual_screen(size: str):
    """(DISPLAY, the Xvfb process or None): the current display, else a new Xvfb screen."""
    if os.environ.get("DISPLAY"):
        return os.environ["DISPLAY"], None
    if not shutil.which("Xvfb"):
        raise SystemExit("no DISPLAY and no Xvfb: install Xvfb (Debian: apt-get install xvfb) or run under a display")
    for number in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists():
            proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(50):
                if Path(f"/tmp/.X11-unix/X{number}").exists():
                    return f":{number}", proc
                time.sleep(0.1)
            proc.kill()
    raise SystemExit("could not start Xvfb")


def serve_screenshots(blender: subprocess.Popen, out: Path, display: str, deadline: float,
                      stall: float = 180) -> None:
    """Grab the screen for every ``<name>.request`` the driver writes, until Blender exits."""
    from PIL import ImageGrab

    last = time.monotonic()
    while blender.poll() is None:
        if time.monotonic() > min(deadline, last + stall):
            ImageGrab.grab(xdisplay=display).save(out / "stalled.png")
            blender.kill()
            raise SystemExit(f"Blender stopped asking for screenshots; see {out}/blender.log and stalled.png")
        for request in sorted(out.glob("*.request")):
            time.sleep(0.5)  # let the window finish drawing
            ImageGrab.grab(xdisplay=display).save(out / f"{request.stem}.png")
            request.unlink()
            last = time.monotonic()
        time.sleep(0.2)


def crop_sidebars(out: Path) -> None:
    """Next to each window shot, the sidebar alone (its rectangle was written by the driver)."""
    from PIL import Image

    for meta in sorted(out.glob("*.json")):
        info = json.loads(meta.read_text())
        shot = out / info["image"]
        if not shot.is_file() or "sidebar" not in info:
            continue
        x, y, w, h = info["sidebar"]
        with Image.open(shot) as image:
            top = image.height - (y + h)  # Blender counts from the bottom
            image.crop((x, max(top, 0), x + w, top + h)).save(out / f"{shot.stem}-sidebar.png")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blender", required=True, help="a Blender executable (5.0 or later)")
    parser.add_argument("--out", type=Path, default=Path("panel-screenshots"))
    parser.add_argument("--zip", type=Path, help="the extension zip (default: build it now)")
    parser.add_argument("--recipe", type=Path, default=ROOT / "assets/recipes/toybox.yaml")
    parser.add_argument("--size", default="1600x1000", help="screen size, WxH")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="synthfarm-shots-", dir="/tmp") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, **{var: str(tmp / var.lower()) for var in (
            "BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS", "BLENDER_USER_DATAFILES",
            "BLENDER_USER_EXTENSIONS")}}
        zip_path = (args.zip or build_zip(tmp, blender_python(args.blender, env))).resolve()
        install = subprocess.run([args.blender, "--background", "--command", "extension", "install-file", "--repo",
                                  "user_default", "--enable", str(zip_path)], env=env, capture_output=True, text=True)
        log.info("install: %s", (install.stdout + install.stderr).strip().splitlines()[-1:])
        if install.returncode:
            raise SystemExit(f"Blender's installer failed:\n{install.stdout}\n{install.stderr}")
        subprocess.run([args.blender, "--background", "--python-expr", "import bpy; "
                        "bpy.context.preferences.view.show_splash = False; bpy.ops.wm.save_userpref()"],
                       env=env, capture_output=True, check=True)  # no splash screen over the panels
        display, xvfb = virtual_screen(args.size)
        try:
            width, height = args.size.split("x")
            with open(out / "blender.log", "w") as blender_log:
                blender = subprocess.Popen([args.blender, "--window-geometry", "0", "0", width, height,
                                            "--no-window-focus", "--python",
                                            str(Path(__file__).with_name("blender_driver.py")), "--", "--out",
                                            str(out), "--recipe", str(args.recipe.resolve())],
                                           env={**env, "DISPLAY": display, "PYTHONUNBUFFERED": "1"},
                                           stdout=blender_log,
                                           stderr=subprocess.STDOUT)
                serve_screenshots(blender, out, display, time.monotonic() + args.timeout)
        finally:
            if xvfb is not None:
                xvfb.terminate()
        if blender.returncode or not (out / "done.txt").is_file():
            raise SystemExit(f"Blender did not finish the screenshots (exit {blender.returncode}); see "
                             f"{out}/blender.log and {out}/error.txt")
    crop_sidebars(out)
    log.info("screenshots in %s:\n  %s", out, "\n  ".join(sorted(p.name for p in out.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
