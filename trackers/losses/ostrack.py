"""OSTrack's training losses (Ye et al., ECCV 2022), also used by VLT_OST (+ the ModaMixer contrastive loss).

``L = focal_weight · L_focal + giou_weight · L_GIoU + l1_weight · L_1 (+ contrastive_weight · L_con)`` with OSTrack's
weights 1, 2 and 5:

* ``L_focal``: the weighted focal loss of CenterNet between the predicted score map ``p`` and a Gaussian heat map
  ``y`` (peak 1 at the target centre's cell)::

      L_focal = -1/N_pos · Σ [ y = 1 ] (1 - p)^α log p  +  [ y < 1 ] (1 - y)^β p^α log(1 - p)

  with α = 2, β = 4 and N_pos the number of cells where ``y = 1`` (when there is none the sum is not divided);
* the heat map (:func:`gaussian_heatmap`, CenterNet's ``draw_gaussian``): on the H×W grid of the search map the
  box has size ``w, h`` (cells) and its centre cell is ``round(x1 + w/2), round(y1 + h/2)``; the radius is
  ``r = int(max(0, gaussian_radius(w, h, 0.7)))``, the Gaussian has σ = (2r + 1) / 6 and covers the
  (2r + 1)² cells around the centre (clipped at the border);
* ``L_GIoU``: mean of ``1 - GIoU`` and ``L_1``: mean absolute error, both between the predicted box (arg-max of the
  score map, :func:`trackers.heads.center.decode_boxes`) and the ground truth, as normalised ``x1, y1, x2, y2``
  (ground truth clipped to [0, 1], as OSTrack).

Negative pairs (``label`` 0, no target in the search crop; OSTrack samples none, the toolkit's sampler can) get an
all-zero heat map and no box loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from asearch.errors import ConfigError
from trackers.boxes import box_iou_elementwise, cxcywh_to_xyxy, generalized_box_iou_elementwise
from trackers.losses.common import add_contrastive

__all__ = ["OSTrackLossConfig", "gaussian_radius", "gaussian_heatmap", "focal_loss", "OSTrackLoss",
           "ce_keep_ratio_at"]


@dataclass
class OSTrackLossConfig:
    """Weights of OSTrack's losses (YAML section ``loss``) and the candidate-elimination warm-up of the actor.

    ``ce_start_step`` / ``ce_warm_steps``: CE is off (keep ratio 1) before ``ce_start_step``, then the keep ratio
    goes from 1 down to the model's ratio along a half cosine over ``ce_warm_steps`` steps (OSTrack: from epoch 20
    over 80 epochs); both 0 keep the model's ratio from the first step.
    """

    focal_weight: float = 1.0
    giou_weight: float = 2.0
    l1_weight: float = 5.0
    contrastive_weight: float = 1.0
    min_overlap: float = 0.7
    ce_start_step: int = 0
    ce_warm_steps: int = 0

    def __post_init__(self) -> None:
        for key in ("focal_weight", "giou_weight", "l1_weight", "contrastive_weight", "ce_start_step",
                    "ce_warm_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss.{key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 < self.min_overlap < 1.0:
            raise ConfigError(f"loss.min_overlap must be in (0, 1), got {self.min_overlap}")


def ce_keep_ratio_at(step: int, base_ratio: float, start: int, warm: int) -> float:
    """Keep ratio of the CE blocks at training ``step``: 1 before ``start``, ``base_ratio`` after ``start + warm``,
    in between ``base + (1 - base) · (1 + cos(π · (step - start) / warm)) / 2`` (OSTrack's adjust_keep_rate)."""
    if step < start:
        return 1.0
    if warm <= 0 or step >= start + warm:
        return float(base_ratio)
    return float(base_ratio + (1.0 - base_ratio) * (1.0 + math.cos(math.pi * (step - start) / warm)) / 2.0)


def gaussian_radius(w: torch.Tensor, h: torch.Tensor, min_overlap: float = 0.7) -> torch.Tensor:
    """CenterNet's radius for boxes of size ``w × h``: the smallest of the three quadratic-root bounds (the formula
    as released with CenterNet, which OSTrack uses)."""
    a1, b1, c1 = 1.0, h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4.0, 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + torch.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(r1, torch.minimum(r2, r3))


def gaussian_heatmap(boxes: torch.Tensor, grid: int, min_overlap: float = 0.7,
                     positive: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Gaussian heat maps B×1×grid×grid of normalised ``x1, y1, x2, y2`` boxes (B×4), see the module docstring;
    items where ``positive`` (B bool) is False get all zeros."""
    boxes = boxes.detach().float()
    b = boxes.shape[0]
    out = torch.zeros(b, grid, grid, device=boxes.device)
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0) * grid
    centre = torch.round(boxes[:, :2] * grid + wh / 2).long()
    radius = gaussian_radius(wh[:, 0], wh[:, 1], min_overlap).clamp(min=0).nan_to_num(0.0).long()
    cells = torch.arange(grid, device=boxes.device)
    for i in range(b):
        if positive is not None and not bool(positive[i]):
            continue
        r = int(radius[i])
        cx, cy = int(centre[i, 0]), int(centre[i, 1])
        sigma = (2 * r + 1) / 6.0
        dx = (cells - cx).float()
        dy = (cells - cy).float()
        g = torch.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * sigma * sigma))
        inside = (dy.abs() <= r)[:, None] & (dx.abs() <= r)[None, :]
        out[i] = torch.where(inside, g, torch.zeros_like(g))
    return out.unsqueeze(1)


def focal_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's weighted focal loss between a probability map ``pred`` and a Gaussian map ``target`` (same
    shape), summed over the batch and divided by the number of cells with ``target == 1`` (module docstring)."""
    pred, target = pred.float(), target.float()
    pos = target.eq(1).float()
    neg = 1.0 - pos
    p = pred.clamp(min=1e-12)
    pos_loss = (torch.log(p) * (1 - p) ** alpha * pos).sum()
    neg_loss = (torch.log((1 - p).clamp(min=1e-12)) * p ** alpha * (1 - target) ** beta * neg).sum()
    n_pos = pos.sum()
    if float(n_pos) == 0:
        return -neg_loss
    return -(pos_loss + neg_loss) / n_pos


class OSTrackLoss(torch.nn.Module):
    """OSTrack's loss on a model output dict (``score_map``, ``pred_boxes`` and optionally ``contrastive``)."""

    def __init__(self, cfg: Optional[OSTrackLossConfig] = None):
        super().__init__()
        self.cfg = cfg or OSTrackLossConfig()

    def forward(self, outputs: Dict[str, torch.Tensor], boxes: torch.Tensor, search_size: int,
                positive_pairs: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``(total loss, stats)``; ``boxes``: B×4 ground truth ``x1, y1, x2, y2`` in search-crop pixels."""
        cfg = self.cfg
        score = outputs["score_map"].float()
        gt = (boxes.to(score.device, torch.float32) / float(search_size)).clamp(0.0, 1.0)
        pos = torch.ones(gt.shape[0], dtype=torch.bool, device=score.device) if positive_pairs is None \
            else positive_pairs.to(score.device).bool().view(-1)
        heat = gaussian_heatmap(gt, score.shape[-1], cfg.min_overlap, pos)
        loss_focal = focal_loss(score, heat)
        pred = cxcywh_to_xyxy(outputs["pred_boxes"].float())
        if bool(pos.any()):
            giou = generalized_box_iou_elementwise(pred[pos], gt[pos])
            loss_giou = (1.0 - giou).mean()
            loss_l1 = F.l1_loss(pred[pos], gt[pos])
            iou = float(box_iou_elementwise(pred[pos].detach(), gt[pos])[0].mean())
        else:  # no target anywhere: keep the graph connected with a zero that has gradients
            loss_giou = loss_l1 = pred.sum() * 0.0
            iou = 0.0
        total = cfg.focal_weight * loss_focal + cfg.giou_weight * loss_giou + cfg.l1_weight * loss_l1
        stats = {"loss_focal": float(loss_focal.detach()), "loss_giou": float(loss_giou.detach()),
                 "loss_l1": float(loss_l1.detach()), "iou": iou}
        return add_contrastive(total, stats, outputs, cfg.contrastive_weight), stats

