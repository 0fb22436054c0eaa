"""Memory + disk cache of language features: the text encoder runs once per text, never per frame (SPEC §3).

A key is the string ``"<model id>|<mode>|<text>"``. On disk each key is one small ``<sha256(key)>.pt`` file holding
``{"key": key, "feature": tensor}``, written atomically, so several processes may share a cache directory.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from asearch.errors import CheckpointError
from asearch.io import atomic_torch_save, load_torch

__all__ = ["FeatureCache", "cache_key"]


def cache_key(model_id: str, mode: str, text: str) -> str:
    """The cache key of one text for one model and one mode (``sentence`` or ``attribute``)."""
    return f"{model_id}|{mode}|{text}"


class FeatureCache:
    """Dictionary of 1-D CPU feature tensors, optionally backed by one file per key in ``cache_dir``."""

    def __init__(self, cache_dir: Optional[Union[str, os.PathLike]] = None):
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._memory: Dict[str, torch.Tensor] = {}
        self.disk_hits = 0

    def path_for(self, key: str) -> Optional[Path]:
        """File of ``key`` in the cache directory (``None`` without one)."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.pt"

    def get(self, key: str) -> Optional[torch.Tensor]:
        """The cached feature of ``key`` (memory first, then disk), or ``None``."""
        hit = self._memory.get(key)
        if hit is not None:
            return hit
        path = self.path_for(key)
        if path is None or not path.is_file():
            return None
        try:
            record = load_torch(path)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}; this is a language-feature cache file: delete it to recompute") from exc
        if not isinstance(record, dict) or record.get("key") != key or not torch.is_tensor(record.get("feature")):
            raise CheckpointError(f"language-feature cache file {path} does not hold the feature of {key!r}; "
                                  "delete it to recompute")
        feature = record["feature"].float()
        self._memory[key] = feature
        self.disk_hits += 1
        return feature

    def put(self, key: str, feature: torch.Tensor) -> torch.Tensor:
        """Store ``feature`` (moved to CPU, detached) under ``key`` in memory and on disk; returns the stored tensor."""
        feature = feature.detach().to("cpu", torch.float32).contiguous()
        self._memory[key] = feature
        path = self.path_for(key)
        if path is not None:
            atomic_torch_save({"key": key, "feature": feature.clone()}, path)
        return feature

    def __contains__(self, key: str) -> bool:
        return key in self._memory or (self.path_for(key) is not None and self.path_for(key).is_file())

    def __len__(self) -> int:
        """Number of features held in memory."""
        return len(self._memory)
