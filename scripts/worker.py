"""The farm's Blender child inside a Blender installation.

    blender -b --factory-startup --python scripts/worker.py -- ENDPOINT

The supervisor (``synthfarm worker --blender PATH``) starts this itself; ENDPOINT is its PAIR socket.
Blender's Python needs pyzmq, pydantic, pyyaml, OpenEXR, pycocotools and Pillow (the extension's wheels).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _synthfarm():
    try:
        import synthfarm

        return synthfarm
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        spec = importlib.util.spec_from_file_location("synthfarm", root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["synthfarm"] = module
        spec.loader.exec_module(module)
        return module


if __name__ == "__main__":
    _synthfarm()
    from synthfarm.farm.blender_child import main

    main(sys.argv[-1])
