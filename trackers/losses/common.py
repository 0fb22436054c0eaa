"""What every tracker family's loss shares: the ModaMixer contrastive term of VLT (paper 000 Eq. 2-4)."""
from __future__ import annotations

from typing import Any, Dict, Mapping

import torch

__all__ = ["add_contrastive"]


def add_contrastive(total: torch.Tensor, stats: Dict[str, float], outputs: Mapping[str, Any],
                    weight: float) -> torch.Tensor:
    """``total + weight · L_con`` when the model returned ``contrastive`` and ``weight`` is non-zero (its value then
    goes to ``stats['loss_contrastive']``), else ``total``."""
    contrastive = outputs.get("contrastive")
    if contrastive is None or not weight:
        return total
    stats["loss_contrastive"] = float(contrastive.detach())
    return total + weight * contrastive
