"""The farm's Blender child inside a Blender installation.

    blender -b --factory-startup --python scripts/worker.py -- ENDPOINT

The supervisor (``synthfarm worker --blender PATH``) starts this itself; ENDPOINT is its PAIR socket.
Blender's Python needs pyzmq, pydantic, pyyaml, OpenEXR, pycocotools and Pillow (the extension's wheels).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import load_synthfarm  # noqa: E402


if __name__ == "__main__":
    load_synthfarm()
    from synthfarm.farm.blender_child import main

    main(sys.argv[-1])
