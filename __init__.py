# SPDX-License-Identifier: GPL-3.0-or-later
"""synthfarm: Blender extension entry point and Python package root.

Inside Blender this module is ``bl_ext.<repo>.synthfarm`` and only registers the add-on. As the pip
package ``synthfarm`` it also offers the Python API lazily, so importing it never requires Blender:

    >>> import synthfarm
    >>> synthfarm.render("assets/recipes/toybox.yaml", jobs=4, out="out/toybox")
"""

__all__ = ["register", "unregister", "render", "load_recipe", "Session", "Batch"]


def register():
    from .addon import ui
    from .farm import ui as farm_ui  # the farm plugin's sub-panel

    ui.register()
    farm_ui.register()


def unregister():
    from .addon import ui
    from .farm import ui as farm_ui

    farm_ui.unregister()
    ui.unregister()


def __getattr__(name):
    # Lazy so that `import synthfarm` stays cheap and Blender-free.
    if name == "render":
        from .addon.engine.api import render

        return render
    if name in ("Session", "Batch"):
        from .farm import session

        return getattr(session, name)
    if name == "load_recipe":
        from .addon.core.recipe import load_recipe

        return load_recipe
    raise AttributeError(f"module 'synthfarm' has no attribute {name!r}")
