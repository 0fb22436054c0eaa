"""Distributed training helpers: ``torchrun`` environment, rank queries and a seeded, resumable, sharded sampler.

Launch a multi-process run with ``torchrun --nproc_per_node N -m asearch ...``; :func:`init_distributed` reads the
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` variables that torchrun sets, starts the process group (``nccl`` on CUDA,
``gloo`` on CPU) and returns the device of this process. Without those variables everything runs as one process and
the helpers below answer rank 0 of 1.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from asearch.errors import ConfigError
from asearch.runtime import derive_seed, resolve_device

__all__ = [
    "DistInfo",
    "init_distributed",
    "cleanup_distributed",
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "derive_seed",
    "SeededSampler",
    "seeded_loader_factory",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its node, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def _env_int(name: str) -> Optional[int]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None


def init_distributed(device: Optional[str] = None, backend: Optional[str] = None, timeout_s: float = 1800.0) -> DistInfo:
    """Start the process group from the torchrun environment (if any) and return this process's :class:`DistInfo`.

    ``device``: ``None``/``"auto"`` picks ``cuda:LOCAL_RANK`` when CUDA is present, else CPU; an explicit
    ``"cpu"`` forces CPU (and the ``gloo`` backend). ``backend`` overrides the choice (``nccl`` on CUDA, ``gloo``
    on CPU). Calling it again when the group is already up returns the current state.
    """
    world_size = _env_int("WORLD_SIZE") or 1
    rank = _env_int("RANK") or 0
    local_rank = _env_int("LOCAL_RANK")
    local_rank = rank if local_rank is None else local_rank
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"environment: RANK={rank} is not in [0, WORLD_SIZE={world_size})")
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        if world_size > 1 or local_rank:
            dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        else:
            dev = torch.device("cuda", torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(var):
                raise ConfigError(
                    f"environment: WORLD_SIZE={world_size} but {var} is not set; launch with torchrun, which sets it"
                )
        from datetime import timedelta

        dist.init_process_group(
            backend=backend or ("nccl" if dev.type == "cuda" else "gloo"),
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
        )
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    """Tear the process group down (no-op when none is running)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """Rank of this process (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0: the only process that writes checkpoints, logs and progress bars."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process (no-op without a process group)."""
    if is_distributed():
        dist.barrier()


class SeededSampler(Sampler):
    """Index order of one epoch, fixed by ``(seed, epoch)``, sharded over ranks, able to start mid-epoch.

    The full order is a permutation of ``range(length)`` drawn from ``derive_seed(seed, epoch)`` (or ``range`` when
    ``shuffle`` is false). It is padded by wrapping around (or cut, with ``drop_last``) to a multiple of
    ``world_size`` and rank ``r`` takes positions ``r, r + world_size, ...`` -- the same scheme as torch's
    ``DistributedSampler``, but with an explicit ``start``: the number of this rank's indices of the current epoch
    that were already consumed (``batches_done * batch_size``), so that a resumed run continues exactly.
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, rank: Optional[int] = None,
                 world_size: Optional[int] = None, drop_last: bool = False, epoch: int = 0, start: int = 0):
        if length < 0:
            raise ValueError(f"SeededSampler: length must be >= 0, got {length}")
        self.length = int(length)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.world_size = get_world_size() if world_size is None else int(world_size)
        self.rank = get_rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"SeededSampler: rank {self.rank} is not in [0, {self.world_size})")
        self.drop_last = bool(drop_last)
        self.epoch = int(epoch)
        self.start = int(start)

    @property
    def num_samples(self) -> int:
        """Indices per rank in one full epoch."""
        if self.drop_last:
            return self.length // self.world_size
        return math.ceil(self.length / self.world_size) if self.length else 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order is produced (and restart it from the beginning)."""
        self.epoch = int(epoch)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's share of the current epoch."""
        if start < 0:
            raise ValueError(f"SeededSampler: start must be >= 0, got {start}")
        self.start = int(start)

    def epoch_order(self) -> list:
        """This rank's full index list for the current epoch (before skipping ``start``)."""
        if self.shuffle:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
            order = torch.randperm(self.length, generator=gen).tolist()
        else:
            order = list(range(self.length))
        total = self.num_samples * self.world_size
        if total > len(order) and order:
            reps = math.ceil(total / len(order))
            order = (order * reps)[:total]
        else:
            order = order[:total]
        return order[self.rank:total:self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_order()[self.start:])

    def __len__(self) -> int:
        return max(self.num_samples - self.start, 0)


def seeded_loader_factory(dataset: "torch.utils.data.Dataset", batch_size: int, seed: int = 0, num_workers: int = 0,
                          collate_fn=None, shuffle: bool = True, drop_last: bool = True, pin_memory: bool = False):
    """A ``data_loader_factory`` for :class:`~asearch.training.trainer.Trainer`: ``factory(epoch, skip_batches)``.

    Each call builds a ``DataLoader`` over a :class:`SeededSampler` of ``(seed, epoch)`` on this rank's shard that
    starts after ``skip_batches`` batches of ``batch_size`` (per process), so a resumed run sees exactly the batches
    an unbroken run would. The loader gets its own generator (seeded from ``(seed, epoch, skip_batches, rank)``), so
    building it never touches the global torch RNG, and worker processes are seeded from it. With
    ``num_workers > 0`` a dataset whose augmentation draws from the worker's RNG resumes exactly only at epoch
    starts; draw per-item randomness from the index (and epoch) for exact mid-epoch resume.
    """
    from torch.utils.data import DataLoader

    if batch_size < 1:
        raise ConfigError(f"config key 'batch_size' must be >= 1, got {batch_size}")

    def factory(epoch: int, skip_batches: int = 0) -> DataLoader:
        sampler = SeededSampler(len(dataset), seed=seed, shuffle=shuffle, drop_last=False, epoch=epoch,
                                start=skip_batches * batch_size)
        gen = torch.Generator().manual_seed(derive_seed(seed, epoch, skip_batches, sampler.rank))
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                          collate_fn=collate_fn, drop_last=drop_last, pin_memory=pin_memory, generator=gen,
                          persistent_workers=False)

    return factory
