"""Blender UI of the add-on. The panels and operators arrive with the add-on issue; registration is
already wired so the extension installs and enables cleanly."""

_modules = ()


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
