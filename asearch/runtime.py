"""Device choice and seeding: CUDA when present, CPU otherwise; nothing is placed on a device in constructors."""
from __future__ import annotations

import random
from typing import Optional, Union

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything"]


def resolve_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA if available else CPU; otherwise ``torch.device(device)``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
