"""The embedded farm's defaults: one worker per NVIDIA GPU, one without."""
import stat

from synthfarm.farm.embedded import batch_id_for, local_gpus


def test_gpu_count_from_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert local_gpus() == 0  # no nvidia-smi at all
    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA A100 (UUID: GPU-1)'\necho 'GPU 1: NVIDIA A100 (UUID: GPU-2)'\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    assert local_gpus() == 2


def test_batch_ids_follow_the_settings(tmp_path):
    a = batch_id_for(tmp_path, "h", 4, 0, {"n": 1}, False)
    assert a == batch_id_for(tmp_path, "h", 4, 0, {"n": 1}, False)  # the same command resumes the same batch
    assert len({a, batch_id_for(tmp_path, "h", 5, 0, {"n": 1}, False), batch_id_for(tmp_path, "h", 4, 1, {"n": 1}, False),
                batch_id_for(tmp_path, "h", 4, 0, {"n": 2}, False), batch_id_for(tmp_path, "h", 4, 0, {"n": 1}, True)}) == 5
