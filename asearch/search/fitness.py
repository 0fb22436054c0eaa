"""Fitness of a candidate: SUC on a fixed validation set with the supernet's shared weights (paper 000 Eq. 6).

(work in progress: config only)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, Optional

from asearch.errors import ConfigError

__all__ = ["ValidationConfig", "BNConfig", "FitnessConfig", "worker_cache"]


@dataclass
class ValidationConfig:
    """The fixed validation set: the first ``videos`` videos of ``dataset``/``split`` (sorted by name), each cut to
    its first ``frames`` frames (``null``: full videos), scored with ``protocol`` (``null``: the dataset's default;
    ``lasot`` for the synthetic benchmark)."""

    dataset: str = "synthetic"
    root: Optional[str] = None
    split: str = "val"
    videos: int = 20
    frames: Optional[int] = 11
    protocol: Optional[str] = None

    def __post_init__(self) -> None:
        if self.videos < 1:
            raise ConfigError(f"fitness.validation.videos: must be >= 1, got {self.videos}")
        if self.frames is not None and self.frames < 2:
            raise ConfigError(f"fitness.validation.frames: must be >= 2 (the first frame initialises) or null, "
                              f"got {self.frames}")


@dataclass
class BNConfig:
    """BN recalibration before scoring: ``batches`` fixed training batches of ``batch_size`` pairs."""

    batches: int = 200
    batch_size: int = 16
    dataset: str = "synthetic"
    root: Optional[str] = None
    split: str = "train"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batches < 0 or self.batch_size < 1:
            raise ConfigError(f"fitness.bn: batches must be >= 0 and batch_size >= 1 "
                              f"(got {self.batches}, {self.batch_size})")


@dataclass
class FitnessConfig:
    """How a candidate is scored."""

    validation: ValidationConfig = field(default_factory=ValidationConfig)
    bn: BNConfig = field(default_factory=BNConfig)
    batched: bool = True
    tracker: Dict[str, Any] = field(default_factory=dict)


_WORKER_CACHE: Dict[Hashable, Any] = {}


def worker_cache(key: Hashable, build: Callable[[], Any]) -> Any:
    """Per-process cache: ``build()`` runs once per worker process and ``key`` (e.g. checkpoint path + mtime)."""
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = build()
    return _WORKER_CACHE[key]
