"""Loss of the grounding model (TransVG §3.4): ``L = l1_weight · L_1 + giou_weight · L_GIoU`` on the normalised box.

``L_1 = mean_i ||b_i - b*_i||_1 / 4`` (mean over the four ``cx, cy, w, h`` coordinates, as DETR's ``l1_loss``),
``L_GIoU = mean_i (1 - GIoU(b_i, b*_i))`` (Rezatofighi et al. 2019), both weights 1 in TransVG.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import torch

from asearch.errors import ConfigError
from trackers.boxes import box_iou_elementwise, cxcywh_to_xyxy, generalized_box_iou_elementwise

__all__ = ["GroundingLossConfig", "GroundingLoss"]


@dataclass
class GroundingLossConfig:
    """Section ``loss`` of ``grounding``: the weights of L1 and GIoU (TransVG: 1 and 1)."""

    l1_weight: float = 1.0
    giou_weight: float = 1.0

    def __post_init__(self) -> None:
        for key in ("l1_weight", "giou_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss.{key} must be >= 0, got {getattr(self, key)}")


class GroundingLoss:
    """``loss(pred B×4, target B×4) -> (total, stats)``, both normalised ``cx, cy, w, h``."""

    def __init__(self, cfg: GroundingLossConfig = None):
        self.cfg = cfg or GroundingLossConfig()

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        target = target.to(pred)
        l1 = (pred - target).abs().mean()
        p, t = cxcywh_to_xyxy(pred), cxcywh_to_xyxy(target)
        giou = (1.0 - generalized_box_iou_elementwise(p, t)).mean()
        total = self.cfg.l1_weight * l1 + self.cfg.giou_weight * giou
        iou = box_iou_elementwise(p.detach(), t)[0].mean()
        return total, {"loss_l1": float(l1.detach()), "loss_giou": float(giou.detach()), "iou": float(iou)}
