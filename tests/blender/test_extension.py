"""The built extension zip installs through Blender's own installer, enables, works, and uninstalls
cleanly (a fresh Blender user folder, in a subprocess)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_extension_installs_with_blenders_installer(tmp_path):
    build = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    zip_path = Path(build.stdout.strip().splitlines()[-1])
    script = textwrap.dedent(f"""
        import bpy
        import addon_utils, sys
        result = bpy.ops.extensions.package_install_files(filepath={str(zip_path)!r}, repo="user_default",
                                                           enable_on_install=True)
        assert result == {{"FINISHED"}}, result
        name = "bl_ext.user_default.synthfarm"
        assert name in {{m.__name__ for m in addon_utils.modules()}}, "not installed"
        assert addon_utils.check(name)[1], "not enabled"
        module = sys.modules[name]
        types_before = set(dir(bpy.types))
        for cls in ("VIEW3D_PT_synthfarm", "VIEW3D_PT_synthfarm_generators", "VIEW3D_PT_synthfarm_farm",
                    "SYNTHFARM_OT_randomize"):
            assert cls in types_before, cls + " not registered"
        assert hasattr(bpy.types.Scene, "synthfarm") and hasattr(bpy.types.Scene, "synthfarm_farm")
        # its operators run, from the installed copy (assets travel in the zip)
        toybox = module.__path__[0] + "/assets/recipes/toybox.yaml"
        assert bpy.ops.synthfarm.import_recipe(filepath=toybox) == {{"FINISHED"}}
        assert bpy.context.scene.synthfarm.recipe.name == "toybox"
        assert bpy.ops.synthfarm.validate() == {{"FINISHED"}}
        assert bpy.ops.synthfarm.randomize(seed=2) == {{"FINISHED"}}
        assert "synthfarm_sample" in bpy.data.collections
        assert bpy.ops.synthfarm.clear_sample() == {{"FINISHED"}}
        assert bpy.ops.synthfarm.component_add(section="modifiers", kind="random_hide") == {{"FINISHED"}}
        handlers = {{k: len(getattr(bpy.app.handlers, k)) for k in dir(bpy.app.handlers) if not k.startswith("_")
                    and isinstance(getattr(bpy.app.handlers, k), list)}}
        addon_utils.disable(name)
        assert not addon_utils.check(name)[1]
        after = set(dir(bpy.types))
        assert not {{t for t in after if "synthfarm" in t.lower()}}, "classes left behind"
        assert not hasattr(bpy.types.Scene, "synthfarm") and not hasattr(bpy.types.Scene, "synthfarm_farm")
        assert {{k: len(getattr(bpy.app.handlers, k)) for k in handlers}} == handlers, "handlers left behind"
        assert not hasattr(bpy.ops.synthfarm, "randomize") or "randomize" not in dir(bpy.ops.synthfarm)
        print("EXTENSION-OK")
    """)
    env = {**os.environ, **{var: str(tmp_path / "home" / var.lower()) for var in (
        "BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS", "BLENDER_USER_DATAFILES",
        "BLENDER_USER_EXTENSIONS")}}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert "EXTENSION-OK" in run.stdout, (run.stdout[-2000:], run.stderr[-3000:])
