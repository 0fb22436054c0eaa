"""SATracker's training loss (paper 002 §3.2-3.3, Eq. 5-6)::

    L_total = λ_giou · L_GIoU + λ_L1 · L_1 + λ_dm · L_DM,   λ = 2, 5, 1                     (Eq. 6)
    L_DM    = BCE(Sigmoid(score / τ), ŷ),   τ = 0.07                                           (Eq. 5)

* ``L_GIoU``: mean of ``1 - GIoU`` and ``L_1``: mean absolute error between the corner head's box and the ground
  truth, as normalised ``x1, y1, x2, y2`` of the search crop (ground truth clipped to [0, 1]).
* ``ŷ`` (:func:`box_mask`): 1 on the cells of the ``H_up × W_up`` matching map (40×40) whose centre lies inside the
  ground-truth box, 0 elsewhere. ``score`` is the model's ``match_score`` (Eq. 4); the BCE is the mean over the cells
  and over the items with text (``match_valid``; the paper does not say what an item without text does: it leaves
  the term). BCE on ``Sigmoid(score / τ)`` is computed from the logits ``score / τ`` (the same value, stable).

Negative pairs (``label`` 0; STARK's sampler draws none, the toolkit's can) get no box loss and an all-zero ``ŷ``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from asearch.errors import ConfigError
from trackers.boxes import box_iou_elementwise, cxcywh_to_xyxy, generalized_box_iou_elementwise

__all__ = ["SATrackerLossConfig", "box_mask", "dense_matching_loss", "SATrackerLoss"]


@dataclass
class SATrackerLossConfig:
    """Weights of Eq. 6 and the temperature of Eq. 5 (YAML section ``loss``)."""

    giou_weight: float = 2.0
    l1_weight: float = 5.0
    dm_weight: float = 1.0
    temperature: float = 0.07

    def __post_init__(self) -> None:
        for key in ("giou_weight", "l1_weight", "dm_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss.{key} must be >= 0, got {getattr(self, key)}")
        if not self.temperature > 0:
            raise ConfigError(f"loss.temperature must be > 0, got {self.temperature}")


def box_mask(boxes: torch.Tensor, size: int, positive: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``ŷ``: B×size×size, 1 where the cell centre ``((j + 0.5) / size, (i + 0.5) / size)`` lies inside the
    normalised ``x1, y1, x2, y2`` box (B×4); all zero where ``positive`` is False."""
    c = (torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5) / size
    b = boxes.float()
    inside_x = (c[None, :] >= b[:, 0:1]) & (c[None, :] <= b[:, 2:3])         # B×W
    inside_y = (c[None, :] >= b[:, 1:2]) & (c[None, :] <= b[:, 3:4])         # B×H
    mask = (inside_y[:, :, None] & inside_x[:, None, :]).float()
    if positive is not None:
        mask = mask * positive.to(mask.device).float().view(-1, 1, 1)
    return mask


def dense_matching_loss(score: torch.Tensor, mask: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Eq. 5: ``BCE(Sigmoid(score / τ), ŷ)``, the mean over all cells of ``score`` (B×H×W)."""
    return F.binary_cross_entropy_with_logits(score.float() / temperature, mask.float())


class SATrackerLoss(torch.nn.Module):
    """Eq. 6 on a model output dict (``pred_boxes``; ``match_score`` / ``match_valid`` where the model has SAMs)."""

    def __init__(self, cfg: Optional[SATrackerLossConfig] = None):
        super().__init__()
        self.cfg = cfg or SATrackerLossConfig()

    def forward(self, outputs: Dict[str, torch.Tensor], boxes: torch.Tensor, search_size: int,
                positive_pairs: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``(total loss, stats)``; ``boxes``: B×4 ground truth ``x1, y1, x2, y2`` in search-crop pixels."""
        cfg = self.cfg
        pred = cxcywh_to_xyxy(outputs["pred_boxes"].float())
        gt = (boxes.to(pred.device, torch.float32) / float(search_size)).clamp(0.0, 1.0)
        pos = torch.ones(gt.shape[0], dtype=torch.bool, device=pred.device) if positive_pairs is None \
            else positive_pairs.to(pred.device).bool().view(-1)
        if bool(pos.any()):
            loss_giou = (1.0 - generalized_box_iou_elementwise(pred[pos], gt[pos])).mean()
            loss_l1 = F.l1_loss(pred[pos], gt[pos])
            iou = float(box_iou_elementwise(pred[pos].detach(), gt[pos])[0].mean())
        else:  # no target anywhere: keep the graph connected with a zero that has gradients
            loss_giou = loss_l1 = pred.sum() * 0.0
            iou = 0.0
        total = cfg.giou_weight * loss_giou + cfg.l1_weight * loss_l1
        stats = {"loss_giou": float(loss_giou.detach()), "loss_l1": float(loss_l1.detach()), "iou": iou}
        score = outputs.get("match_score")
        if score is not None and cfg.dm_weight:
            valid = outputs["match_valid"].to(score.device).bool().view(-1)
            if bool(valid.any()):
                mask = box_mask(gt, score.shape[-1], pos)
                loss_dm = dense_matching_loss(score[valid], mask[valid], cfg.temperature)
            else:
                loss_dm = score.sum() * 0.0
            stats["loss_dm"] = float(loss_dm.detach())
            total = total + cfg.dm_weight * loss_dm
        return total, stats
