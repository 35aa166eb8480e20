"""A video job through the embedded farm: its flow, disparity and MP4 arrive in the dataset through the
worker's staging and the coordinator's commit, and the tracking exports are written."""
import subprocess
import sys
from pathlib import Path

import av
import yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"


def test_video_job_on_the_embedded_farm(tmp_path):
    recipe = yaml.safe_load(TINY.read_text())
    recipe["frames"], recipe["frame_rate"] = 3, 8
    recipe["randomizers"][0]["speed"] = 5.0
    recipe["sensors"][0].update(stereo_baseline=0.1, denoise=False,
                                outputs=["rgb", "instance_mask", "flow", "disparity", "video"])
    recipe["output"] = {"formats": ["native", "mot", "coco-video"]}
    path = tmp_path / "video.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "synthfarm.cli", "render", str(path), "--jobs", "1", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for folder, count in (("flow_forward", 6), ("flow_backward", 6), ("disparity", 3), ("images", 6)):
        assert len(list((out / folder).iterdir())) == count, folder  # two views (cam, cam_right), three frames
    for view in ("cam", "cam_right"):
        with av.open(str(out / "videos" / f"0000000000-0000-{view}.mp4")) as video:
            assert sum(1 for _ in video.decode(video=0)) == 3
    assert (out / "mot" / "0000000000-cam_right" / "gt" / "gt.txt").is_file()
    assert (out / "coco-video" / "instances.json").is_file()
