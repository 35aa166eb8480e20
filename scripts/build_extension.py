"""Build the Blender extension zip: the package, with the wheels of its dependencies.

    python scripts/build_extension.py [--platform linux-x64] [--out dist/]

Wheels come from PyPI through pip (``pip download --only-binary``) for every Python that the supported
Blender releases run (3.11 for Blender 5.0, 3.13 for 5.1 and later, 3.14 for distributions' own builds such as
Debian's Blender 5.2) and the chosen platform: linux-x64,
windows-x64, macos-arm64 or macos-x64 (linux-x64 is the one installed by the tests here). numpy is left out:
Blender ships it. The manifest in the zip lists the wheels and the platform, as Blender's extension format
asks; Blender installs the wheels that match its own Python.
"""
from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = {  # Blender's platform name -> the wheel tags pip may take for it
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": ["macosx_11_0_arm64", "macosx_12_0_arm64", "macosx_10_9_universal2"],
    "macos-x64": ["macosx_10_13_x86_64", "macosx_10_9_x86_64", "macosx_10_9_universal2"],
}
# What the add-on imports inside Blender (the CLI-only extras, click/tqdm/opencv/matplotlib, are not needed)
REQUIREMENTS = ["pydantic>=2.6,<3", "pyyaml>=6", "pyzmq>=26", "OpenEXR>=3.3", "pycocotools>=2.0.8", "pillow>=10.1",
                "psutil>=5.9", "filelock>=3.16", "plyfile>=1.0"]
SKIP_WHEELS = ("numpy-",)  # Blender's own
PYTHONS = ("3.11", "3.13", "3.14")  # Blender 5.0 runs 3.11; 5.1 to 5.3 run 3.13; distributions build 5.2+ on 3.14


def download_wheels(platform: str, target: Path, pythons=PYTHONS) -> list[Path]:
    tags = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
    for python in pythons:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest",
                        str(target), *tags, "--python-version", python, "--implementation", "cp", *REQUIREMENTS],
                       check=True)
    wheels = sorted(p for p in target.glob("*.whl") if not p.name.startswith(SKIP_WHEELS))
    if not wheels:
        raise SystemExit("pip downloaded no wheels")
    return wheels


def package_files() -> list[Path]:
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    excluded = manifest.get("build", {}).get("paths_exclude_pattern", [])
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = []
    for rel in tracked.splitlines():
        parts = rel.split("/")
        if any(fnmatch.fnmatch(part + ("/" if i < len(parts) - 1 else ""), pattern.strip("/")) or
               rel.startswith(pattern.strip("/") + "/") or fnmatch.fnmatch(rel, pattern.lstrip("/"))
               for pattern in excluded for i, part in enumerate(parts)):
            continue
        files.append(Path(rel))
    return files


def build(platform: str, out: Path, pythons=PYTHONS) -> Path:
    text = (ROOT / "blender_manifest.toml").read_text()
    version = tomllib.loads(text)["version"]
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = download_wheels(platform, Path(tmp), pythons)
        listing = ", ".join(f'"./wheels/{w.name}"' for w in wheels)
        manifest = re.sub(r"(?m)^\[permissions\]", f'platforms = ["{platform}"]\nwheels = [{listing}]\n\n[permissions]',
                          text, count=1)
        target = out / f"synthfarm-{version}-{platform}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("blender_manifest.toml", manifest)
            for rel in package_files():
                if rel.name != "blender_manifest.toml":
                    zf.write(ROOT / rel, rel.as_posix())
            for wheel in wheels:
                zf.write(wheel, f"wheels/{wheel.name}")
    return target


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=sorted(PLATFORMS), default="linux-x64")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--python", action="append", metavar="X.Y",
                        help=f"also carry wheels for this Python (a Blender built on another one, e.g. a future "
                             f"distribution build); repeatable; always: {', '.join(PYTHONS)}")
    args = parser.parse_args(argv)
    target = build(args.platform, args.out, tuple(dict.fromkeys([*PYTHONS, *(args.python or ())])))
    print(target)
    return target


if __name__ == "__main__":
    main()
