"""Test set-up shared by every suite.

Blender writes its user configuration on `import bpy`; point it at a throw-away directory so the tests
never touch the developer's own Blender set-up. This must happen before anything imports bpy.
"""
import os
import tempfile

_BLENDER_HOME = tempfile.mkdtemp(prefix="synthfarm-blender-home-")
for _var in ("BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS",
             "BLENDER_USER_DATAFILES", "BLENDER_USER_EXTENSIONS"):
    os.environ.setdefault(_var, os.path.join(_BLENDER_HOME, _var.lower()))
