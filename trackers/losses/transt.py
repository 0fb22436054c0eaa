"""TransT's training losses (Chen et al., CVPR 2021) with its Hungarian-free label assignment, plus the ModaMixer
contrastive loss of VLT (paper 000 Eq. 2-4) when the backbone returns one.

Label assignment (TransT's matcher, in pixels). The search map has ``L×L`` locations; location ``(r, c)`` sits at
search-crop pixel ``(stride·c, stride·r)`` (the geometry of :mod:`trackers.necks`: 256 px / stride 8 -> 32 cells at
0, 8, ..., 248, i.e. normalised ``c / L`` as in TransT). With the ground-truth box ``x1, y1, x2, y2`` (crop pixels),
the positive columns are ``ceil(x1 / stride) <= c < ceil(x2 / stride)``, i.e. the locations with
``x1 <= stride·c < x2``; when that range is empty (a box thinner than one cell between two locations) it becomes the
single column ``ceil(x1 / stride)`` (TransT: ``Xmax = Xmin + 1``); rows likewise; ranges are clipped to the map.
Positives = locations in a positive row AND a positive column ("inside the box"). A negative pair (``label`` 0) has
none.

Losses (TransT's ``SetCriterion``), ``n_pos`` = positives in the batch (at least 1):

* ``L_cls``: 2-way cross-entropy over every location, target foreground (0) at positives and background (1)
  elsewhere, class weights ``(1, eos_coef)`` with ``eos_coef = 0.0625``, weighted mean
  ``sum_i w_{y_i} · (-log p_i[y_i]) / sum_i w_{y_i}`` (PyTorch's ``cross_entropy`` with ``weight``);
* ``L_L1 = sum_pos |b_pred - b_gt|_1 / n_pos`` on normalised ``cx, cy, w, h`` (box / search size);
* ``L_GIoU = sum_pos (1 - GIoU(b_pred, b_gt)) / n_pos``;
* total ``L = 8.334·L_cls + 5·L_L1 + 2·L_GIoU (+ contrastive_weight·L_con)``.

**Choice**: ``n_pos`` is counted on the local batch (TransT averages it over DDP ranks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from asearch.errors import ConfigError
from trackers.boxes import box_iou_elementwise, cxcywh_to_xyxy, generalized_box_iou_elementwise, xyxy_to_cxcywh
from trackers.heads.transt import BACKGROUND, FOREGROUND
from trackers.losses.common import add_contrastive

__all__ = ["TransTLossConfig", "assign_positives", "TransTLoss"]


@dataclass
class TransTLossConfig:
    """Weights of TransT's losses (YAML section ``loss``); defaults are TransT's."""

    cls_weight: float = 8.334
    l1_weight: float = 5.0
    giou_weight: float = 2.0
    eos_coef: float = 0.0625
    contrastive_weight: float = 1.0

    def __post_init__(self) -> None:
        for key in ("cls_weight", "l1_weight", "giou_weight", "contrastive_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss.{key} must be >= 0, got {getattr(self, key)}")
        if not self.eos_coef > 0:
            raise ConfigError(f"loss.eos_coef must be > 0, got {self.eos_coef}")


def _axis_mask(lo: torch.Tensor, hi: torch.Tensor, size: int, stride: float, offset: float = 0.0) -> torch.Tensor:
    """``B×size`` mask of the cells ``ceil((lo - offset) / stride) <= i < ceil((hi - offset) / stride)`` (at least
    one cell, clipped)."""
    start = torch.ceil((lo - offset) / stride)
    stop = torch.ceil((hi - offset) / stride)
    stop = torch.where(stop <= start, start + 1, stop)
    idx = torch.arange(size, dtype=lo.dtype, device=lo.device).view(1, -1)
    return (idx >= start.view(-1, 1)) & (idx < stop.view(-1, 1))


def assign_positives(boxes: torch.Tensor, map_size: int, stride: float,
                     positive_pairs: Optional[torch.Tensor] = None, offset: float = 0.0) -> torch.Tensor:
    """TransT's positives (module docstring): ``B×(L·L)`` bool, row-major over the ``L×L`` map.

    Args:
        boxes: ``B×4`` ground truth ``x1, y1, x2, y2`` in search-crop pixels.
        map_size: ``L``, cells per side of the search map.
        stride: pixels between neighbouring locations.
        positive_pairs: optional ``B`` flags; a false entry (negative pair) gets no positive.
        offset: crop pixel of location 0 (0 for TransT; a map cut by unpadded convolutions starts further in).
    """
    boxes = boxes.float()
    cols = _axis_mask(boxes[:, 0], boxes[:, 2], map_size, stride, offset)    # B×L
    rows = _axis_mask(boxes[:, 1], boxes[:, 3], map_size, stride, offset)    # B×L
    pos = (rows[:, :, None] & cols[:, None, :]).reshape(boxes.shape[0], -1)
    if positive_pairs is not None:
        pos = pos & torch.as_tensor(positive_pairs, device=pos.device).bool().view(-1, 1)
    return pos


class TransTLoss(torch.nn.Module):
    """TransT's loss on a model output dict (``logits`` B×N×2, ``boxes`` B×N×4 normalised ``cx, cy, w, h``, and
    optionally ``contrastive``)."""

    def __init__(self, cfg: Optional[TransTLossConfig] = None):
        super().__init__()
        self.cfg = cfg or TransTLossConfig()
        weight = torch.ones(2)
        weight[BACKGROUND] = self.cfg.eos_coef
        self.register_buffer("class_weight", weight, persistent=False)

    def positives(self, boxes: torch.Tensor, n: int, stride: float, positive_pairs: Optional[torch.Tensor] = None
                  ) -> torch.Tensor:
        """``B×n`` positives of the ``n`` predictions: TransT's ``L×L`` map (``n = L²``), see
        :func:`assign_positives`; a family with other candidates overrides this."""
        side = int(round(n ** 0.5))
        if side * side != n:
            raise ValueError(f"TransTLoss: {n} locations do not form a square map")
        return assign_positives(boxes, side, stride, positive_pairs)

    def forward(self, outputs: Dict[str, torch.Tensor], boxes: torch.Tensor, search_size: int, stride: float,
                positive_pairs: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``(total loss, stats)``; ``boxes`` B×4 search-crop ``x1, y1, x2, y2``; ``search_size`` the crop side."""
        cfg = self.cfg
        logits, pred = outputs["logits"], outputs["boxes"]
        b, n, _ = logits.shape
        boxes = boxes.to(device=logits.device, dtype=torch.float32)
        pos = self.positives(boxes, n, stride, positive_pairs)                     # B×N
        target = torch.full((b, n), BACKGROUND, dtype=torch.long, device=logits.device)
        target[pos] = FOREGROUND
        loss_cls = F.cross_entropy(logits.float().reshape(-1, 2), target.reshape(-1),
                                   weight=self.class_weight.to(logits.device))
        n_pos = int(pos.sum())
        gt = (xyxy_to_cxcywh(boxes) / float(search_size))[:, None, :].expand(b, n, 4)  # normalised cx, cy, w, h
        if n_pos > 0:
            p, g = pred.float()[pos], gt[pos]
            loss_l1 = (p - g).abs().sum() / n_pos
            p_xyxy, g_xyxy = cxcywh_to_xyxy(p), cxcywh_to_xyxy(g)
            loss_giou = (1.0 - generalized_box_iou_elementwise(p_xyxy, g_xyxy)).sum() / n_pos
            iou = float(box_iou_elementwise(p_xyxy, g_xyxy)[0].detach().mean())
        else:  # keep the graph connected (DDP) with zeros that have gradients
            loss_l1 = pred.sum() * 0.0
            loss_giou = pred.sum() * 0.0
            iou = 0.0
        total = cfg.cls_weight * loss_cls + cfg.l1_weight * loss_l1 + cfg.giou_weight * loss_giou
        stats = {"loss_cls": float(loss_cls.detach()), "loss_l1": float(loss_l1.detach()),
                 "loss_giou": float(loss_giou.detach()), "iou": iou, "positives": n_pos / max(b, 1)}
        return add_contrastive(total, stats, outputs, cfg.contrastive_weight), stats
