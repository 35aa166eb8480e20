"""Blender UI of the add-on: the recipe stored on the scene (props), its operators and the sidebar panels.
The farm plugin adds its own sub-panel (``farm/ui.py``) when it is present."""
from . import operators, panels, props, runs

_modules = (props, operators, runs, panels)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
