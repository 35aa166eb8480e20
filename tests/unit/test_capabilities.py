"""Worker capabilities (nvidia-smi's listing narrowed as Slurm and Kubernetes narrow it), batch requirements,
and the task log a supervisor keeps of its Blender child's output (a real child process and pipe)."""
import io
import subprocess
import sys
import time

import pytest

from synthfarm.farm.capabilities import GIB, Capabilities, Requirements, detect, nvidia_gpus, parse_requirements, usable
from synthfarm.farm.tasklog import OutputTail

# the format of `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`
LISTING = """0, GPU-1a2b3c4d-0000-1111-2222-333344445555, NVIDIA A100-SXM4-80GB, 81920
1, GPU-9f8e7d6c-0000-1111-2222-333344445555, NVIDIA A100-SXM4-40GB, 40960
"""


def test_gpus_from_nvidia_smi_narrowed_like_slurm_and_kubernetes():
    gpus = nvidia_gpus(LISTING)
    assert [(g[0], g[2], g[3]) for g in gpus] == [("0", "NVIDIA A100-SXM4-80GB", 80 * GIB),
                                                  ("1", "NVIDIA A100-SXM4-40GB", 40 * GIB)]
    assert [g[0] for g in usable(gpus, None, None)] == ["0", "1"]
    assert [g[0] for g in usable(gpus, "1", None)] == ["1"]  # Slurm's --gres: CUDA_VISIBLE_DEVICES=1
    assert [g[0] for g in usable(gpus, "GPU-9f8e7d6c-0000-1111-2222-333344445555", None)] == ["1"]  # by UUID
    assert usable(gpus, "", None) == []  # no GPU allowed
    assert [g[0] for g in usable(gpus, None, 1)] == ["1"]  # --gpu 1


def test_this_machine_is_detected():
    caps = detect("cpu")
    assert caps.device == "CPU" and caps.gpu_count == 0 and caps.memory_bytes > GIB


def test_requirements():
    a100 = Capabilities(device="GPU", gpu_model="NVIDIA A100-SXM4-80GB", gpu_count=1, vram_bytes=80 * GIB,
                        memory_bytes=512 * GIB)
    cpu = Capabilities(device="CPU", memory_bytes=16 * GIB)
    assert Requirements().unmet(cpu) is None
    assert Requirements(gpu=True).unmet(cpu) == "a GPU"
    assert Requirements(min_vram_gb=24).unmet(a100) is None
    assert Requirements(min_vram_gb=96).unmet(a100) == "at least 96 GB of GPU memory"
    assert Requirements(gpu_model="*a100*").unmet(a100) is None
    assert Requirements(gpu_model="*H100*").unmet(a100) == "a GPU matching '*H100*'"
    assert Requirements(min_memory_gb=32).unmet(cpu) == "at least 32 GB of memory"
    assert parse_requirements(["gpu", "min_vram_gb=24"]) == Requirements(gpu=True, min_vram_gb=24)
    with pytest.raises(ValueError, match="unknown capability 'vram'"):
        parse_requirements(["vram=24"])
    with pytest.raises(ValueError, match="min_vram_gb"):
        parse_requirements(["min_vram_gb=lots"])


def test_task_log_keeps_the_end_of_each_attempt():
    child = subprocess.Popen([sys.executable, "-u", "-c", """
import sys
print("attempt one: loading")
sys.stdout.flush()
input()
for i in range(2000):
    print(f"attempt two: line {i}")
print("Error: the last words", file=sys.stderr)
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    echo = io.BytesIO()
    tail = OutputTail(child.stdout, keep=1024, echo=echo)
    deadline = time.monotonic() + 30
    while "loading" not in tail.text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tail.text() == "attempt one: loading\n"
    tail.restart()  # the next attempt
    child.stdin.write(b"\n")
    child.stdin.close()
    child.wait(timeout=30)
    tail.wait()
    text = tail.text()
    assert len(text.encode()) <= 1024 and text.endswith("attempt two: line 1999\nError: the last words\n")
    assert "attempt one" not in text
    assert echo.getvalue().count(b"\n") == 2002  # every line still reached the operator's stderr
