"""What a worker can render with (device, GPU model, GPU memory, host memory) and what a batch may require.

A worker finds its capabilities without Blender: NVIDIA GPUs from ``nvidia-smi`` (only those it may use:
``CUDA_VISIBLE_DEVICES`` and ``--gpu`` narrow the list, as Slurm and Kubernetes set them), host memory from
psutil. It reports them in HELLO; the coordinator dispatches a batch's jobs only to workers that meet the
batch's requirements, and says in ``status`` why a batch waits when no connected worker does.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from typing import Optional

import psutil
from pydantic import BaseModel, ConfigDict, Field

GIB = 1024 ** 3


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str = Field("CPU", pattern=r"^(CPU|GPU)$")  # what the worker renders on
    gpu_model: str = Field("", max_length=200)  # e.g. "NVIDIA A100-SXM4-80GB" (the first, if several)
    gpu_count: int = Field(0, ge=0, le=1024)
    vram_bytes: int = Field(0, ge=0)  # the smallest memory of its GPUs
    memory_bytes: int = Field(0, ge=0)  # host memory


class Requirements(BaseModel):
    """What a batch needs of a worker (``synthfarm submit --require gpu --require min_vram_gb=24``)."""
    model_config = ConfigDict(extra="forbid")
    gpu: bool = False  # render on a GPU only
    min_vram_gb: float = Field(0.0, ge=0, le=1e6)
    min_memory_gb: float = Field(0.0, ge=0, le=1e9)
    gpu_model: str = Field("", max_length=200)  # a glob, case-insensitive, e.g. "*A100*"

    def unmet(self, caps: Capabilities) -> Optional[str]:
        """None when ``caps`` meet these requirements, else what is missing."""
        if (self.gpu or self.min_vram_gb or self.gpu_model) and caps.device != "GPU":
            return "a GPU"
        if self.min_vram_gb and caps.vram_bytes < self.min_vram_gb * GIB:
            return f"at least {self.min_vram_gb:g} GB of GPU memory"
        if self.gpu_model and not fnmatch.fnmatch(caps.gpu_model.lower(), self.gpu_model.lower()):
            return f"a GPU matching {self.gpu_model!r}"
        if self.min_memory_gb and caps.memory_bytes < self.min_memory_gb * GIB:
            return f"at least {self.min_memory_gb:g} GB of memory"
        return None

    def describe(self) -> str:
        parts = (["GPU"] if self.gpu else []) + ([f"VRAM >= {self.min_vram_gb:g} GB"] if self.min_vram_gb else []) \
            + ([f"GPU model {self.gpu_model}"] if self.gpu_model else []) \
            + ([f"memory >= {self.min_memory_gb:g} GB"] if self.min_memory_gb else [])
        return ", ".join(parts) or "nothing"


def parse_requirements(items: list[str]) -> Requirements:
    """``["gpu", "min_vram_gb=24", "gpu_model=*A100*"]`` -> Requirements; errors name the item."""
    data: dict = {}
    for item in items:
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in Requirements.model_fields:
            raise ValueError(f"--require {item!r}: unknown capability {name!r} (known: "
                             f"{', '.join(Requirements.model_fields)})")
        data[name] = value.strip() if value else True
    return Requirements.model_validate(data)


def nvidia_gpus(listing: str) -> list[tuple[str, str, str, int]]:
    """(index, uuid, name, memory bytes) from ``nvidia-smi --query-gpu=index,uuid,name,memory.total
    --format=csv,noheader,nounits`` output (memory in MiB)."""
    gpus = []
    for line in listing.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 4 and fields[3].isdigit():
            gpus.append((fields[0], fields[1], fields[2], int(fields[3]) * 1024 * 1024))
    return gpus


def usable(gpus: list, visible: str | None, gpu_index: int | None) -> list:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES (indices or UUIDs), then ``--gpu`` among those."""
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",") if v.strip()]
        gpus = [g for w in wanted for g in gpus if w in (g[0], g[1])]
    if gpu_index is not None:
        gpus = gpus[gpu_index:gpu_index + 1]
    return gpus


def detect(device: str = "auto", gpu_index: int | None = None) -> Capabilities:
    """This machine's capabilities for a worker rendering on ``device`` (auto | cpu | gpu)."""
    memory = psutil.virtual_memory().total
    gpus = []
    if device != "cpu" and shutil.which("nvidia-smi"):
        try:
            listing = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,name,memory.total",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True,
                                     timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        gpus = usable(nvidia_gpus(listing), os.environ.get("CUDA_VISIBLE_DEVICES"), gpu_index)
    if not gpus:
        return Capabilities(device="CPU", memory_bytes=memory)
    return Capabilities(device="GPU", gpu_model=gpus[0][2], gpu_count=len(gpus),
                        vram_bytes=min(g[3] for g in gpus), memory_bytes=memory)
