"""Make ``import synthfarm`` work in a script run by Blender or by plain Python, whether or not the package
is pip-installed: when it is not, the package is loaded from this repository (whatever its folder is
called)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load_synthfarm():
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
