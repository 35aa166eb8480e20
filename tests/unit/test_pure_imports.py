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


def test_the_add_on_preview_overlay_needs_only_the_extension_wheels(tmp_path):
    """The add-on's Preview draws with analytics.annotated_frame inside Blender, whose extension carries no
    OpenCV, matplotlib or pandas wheels."""
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('cv2', 'matplotlib', 'pandas', 'scipy', 'sklearn', 'skimage'):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        from PIL import Image
        from synthfarm.addon.core.analytics import annotated_frame
        from synthfarm.addon.core.dataset.native import DatasetWriter
        from synthfarm.addon.core.groundtruth import rle_encode
        root = {str(tmp_path / "ds")!r}
        writer = DatasetWriter(root)
        writer.open("name: t", {{"recipe_hash": "h"}}, {{}})
        Image.new("RGB", (20, 10), (90, 90, 90)).save({str(tmp_path / "f.png")!r})
        mask = np.zeros((10, 20), bool); mask[2:8, 3:9] = True
        obj = {{"class": "a", "visible_pixels": 36, "bbox": [3, 2, 6, 6], "segmentation": rle_encode(mask)}}
        writer.write_frame(0, 0, "cam", image_png={str(tmp_path / "f.png")!r}, annotation={{"objects": [obj]}},
                           metadata={{}})
        frame = np.asarray(annotated_frame(root, "0000000000-0000-cam", width=40))
        assert frame.shape == (20, 40, 3) and (frame != 90).any()
        print('ok')
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
