"""addon.core and the farm's pure modules import in an interpreter where bpy cannot be imported."""
import subprocess
import sys
import textwrap


def test_core_imports_without_blender():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('bpy', 'mathutils', 'bpy_extras', 'zmq'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import importlib, pkgutil
        import synthfarm
        import synthfarm.addon.core as core
        for info in pkgutil.walk_packages(core.__path__, 'synthfarm.addon.core.'):
            importlib.import_module(info.name)
        import synthfarm.cli
        try:
            import bpy
        except ImportError:
            print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_farm_imports_without_blender():
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('bpy', 'mathutils', 'bpy_extras'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import importlib, pkgutil
        import synthfarm.farm as farm
        for info in pkgutil.walk_packages(farm.__path__, 'synthfarm.farm.'):
            if info.name.rsplit('.', 1)[1] not in ('blender_child', 'ui'):  # the Blender side
                importlib.import_module(info.name)
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
