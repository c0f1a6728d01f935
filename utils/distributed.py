"""Processes and devices: one place for ``torch.distributed`` and ``--device``.

Run a training command as it is for one process, or under
``torchrun --nproc_per_node N -m utils.train TASK ...`` for N data-parallel processes: gloo on
CPU, nccl on CUDA (one GPU per process). Every helper here is a no-op with one process, so
library code (the quantizer's EMA statistics, the training loop) calls them unconditionally.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from utils.errors import OptionError

__all__ = [
    "DEVICES",
    "Processes",
    "resolve_device",
    "setup",
    "world_size",
    "is_rank0",
    "all_reduce_sum",
    "broadcast_from_rank0",
    "all_gather_objects",
    "any_rank",
    "cleanup",
]

#: Values of ``--device``: ``auto`` is CUDA when present, else the CPU.
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Processes:
    """Where this process stands: its rank, the number of processes and its device.

    Notebook: notebooks/02_vq_vae.ipynb

    Attributes:
        rank: This process's rank (0 with one process).
        world: Number of processes.
        device: The device this process computes on.
    """

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, validates and saves."""
        return self.rank == 0


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without a GPU is refused.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The device.

    Raises:
        OptionError: An unknown name, or CUDA asked for where there is none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in DEVICES[1:]:
        raise OptionError("--device", f"must be one of {DEVICES} (or cuda:N), got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("--device", f"{name!r} asked for, but no CUDA device is available")
    return torch.device(name)


def setup(device: str = "auto") -> Processes:
    """Join the process group when started by ``torchrun`` (several processes), else do nothing.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        device: ``--device`` value (:func:`resolve_device`).

    Returns:
        This process's :class:`Processes`.
    """
    dev = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return Processes(0, 1, dev)
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), dev)


def world_size() -> int:
    """Number of processes in the group (1 when not distributed).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def is_rank0() -> bool:
    """True in the first (or only) process.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    return world_size() == 1 or dist.get_rank() == 0


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over all processes, in place (unchanged with one process).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_from_rank0(t: Tensor) -> Tensor:
    """Overwrite ``t`` with rank 0's value, in place (unchanged with one process).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if world_size() > 1:
        dist.broadcast(t, src=0)
    return t


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` with one process).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """True on every process when ``flag`` is true on at least one (all stop at the same step).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def cleanup() -> None:
    """Wait for every process, then leave the process group (no-op with one process).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if world_size() > 1:
        dist.barrier()
        dist.destroy_process_group()
