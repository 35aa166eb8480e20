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
        recipe = sys.modules[name + ".addon.core.recipe"] if name + ".addon.core.recipe" in sys.modules else None
        import importlib
        recipe = importlib.import_module(name + ".addon.core.recipe")
        loaded = recipe.load_recipe(module.__path__[0] + "/assets/recipes/toybox.yaml")
        assert loaded.name == "toybox"
        before = set(dir(bpy.types))
        addon_utils.disable(name)
        assert not addon_utils.check(name)[1]
        assert set(dir(bpy.types)) <= before  # unregister leaves no classes behind
        print("EXTENSION-OK")
    """)
    env = {**os.environ, **{var: str(tmp_path / "home" / var.lower()) for var in (
        "BLENDER_USER_RESOURCES", "BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS", "BLENDER_USER_DATAFILES",
        "BLENDER_USER_EXTENSIONS")}}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert "EXTENSION-OK" in run.stdout, (run.stdout[-2000:], run.stderr[-3000:])
