"""Blender UI of the add-on: operators and the sidebar panels over the recipe stored on the scene (..storage).
The farm plugin adds its own sub-panel (``farm/ui.py``) when it is present."""
from .. import storage
from . import operators, panels, runs

_modules = (storage, operators, runs, panels)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
