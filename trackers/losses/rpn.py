"""SiamRPN++'s training losses: anchor targets, cross-entropy on the sampled anchors, weighted L1 on the positives'
deltas, plus the ModaMixer contrastive loss of VLT (paper 000 Eq. 2-4) when the backbone returns one.

Total: ``L = cls_weight · L_cls + loc_weight · L_loc (+ contrastive_weight · L_con)``, weights 1.0 / 1.2 (pysot
``cfg.TRAIN.CLS_WEIGHT`` / ``LOC_WEIGHT``) and 1 (VLT).

Anchor targets (pysot ``pysot/datasets/anchor_target.py`` and ``cfg.TRAIN``), per pair:

* positive pair: IoU of every anchor with the ground truth; **positive** when ``IoU > thr_high`` (0.6), **negative**
  when ``IoU < thr_low`` (0.3), strict inequalities as released; every other anchor is ignored. At most
  ``pos_num`` (16) positives and ``total_num - pos_num`` (48) negatives are kept, drawn uniformly at random (pysot
  uses ``np.random.shuffle``; here a ``torch.Generator`` the caller seeds, see
  :class:`~trackers.actors.rpn.RPNActor`). The regression target of every anchor is the coding of
  :func:`trackers.heads.rpn.encode_boxes`; each kept positive has the L1 weight ``1 / n_pos``.
* negative pair (``label`` 0): no positive; the negatives are the anchors (all shapes) of the locations within
  ``neg_radius`` (3) cells of the location nearest the ground-truth centre, a 7x7 window, at most ``neg_num`` (16)
  of them. pysot finds the window's centre cell with ``size // 2 + ceil((c - search // 2) / stride + 0.5)``, one
  cell off the nearest for a centred target; here it is the nearest location of the toolkit's geometry.

Losses (pysot ``pysot/models/loss.py``): ``L_cls`` = ``0.5 · NLL(kept positives) + 0.5 · NLL(kept negatives)``, each
averaged over its anchors across the batch (``select_cross_entropy_loss``, the same function as SiamCAR's:
:func:`trackers.losses.car.select_cross_entropy`); ``L_loc = Σ_anchors weight · Σ_4 |δ_pred - δ_target| / B``
(``weight_l1_loss``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

from asearch.errors import ConfigError
from trackers.boxes import box_iou_elementwise, cxcywh_to_xyxy, xyxy_to_cxcywh
from trackers.heads.rpn import anchor_deltas, anchor_logits, encode_boxes
from trackers.losses.car import select_cross_entropy
from trackers.losses.common import add_contrastive

__all__ = ["RPNLossConfig", "anchor_targets", "weight_l1_loss", "RPNLoss"]


@dataclass
class RPNLossConfig:
    """Weights and anchor-target settings of SiamRPN++'s loss (YAML section ``loss``; defaults: pysot's)."""

    cls_weight: float = 1.0
    loc_weight: float = 1.2
    contrastive_weight: float = 1.0
    thr_high: float = 0.6
    thr_low: float = 0.3
    pos_num: int = 16
    total_num: int = 64
    neg_num: int = 16
    neg_radius: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.thr_low <= self.thr_high <= 1.0:
            raise ConfigError(f"loss.thr_low ({self.thr_low}) and loss.thr_high ({self.thr_high}) must satisfy "
                              "0 <= thr_low <= thr_high <= 1")
        if self.pos_num < 1 or self.total_num <= self.pos_num or self.neg_num < 1 or self.neg_radius < 0:
            raise ConfigError(f"loss.pos_num ({self.pos_num}) must be >= 1 and below loss.total_num "
                              f"({self.total_num}); loss.neg_num ({self.neg_num}) >= 1, loss.neg_radius "
                              f"({self.neg_radius}) >= 0")


def _keep(indices: torch.Tensor, limit: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    """At most ``limit`` of ``indices`` (1-D, CPU), drawn uniformly without replacement."""
    if indices.numel() <= limit:
        return indices
    return indices[torch.randperm(indices.numel(), generator=generator)[:limit]]


def anchor_targets(anchors: torch.Tensor, boxes: torch.Tensor, cfg: Optional[RPNLossConfig] = None,
                   positive_pairs: Optional[torch.Tensor] = None, stride: float = 8.0,
                   generator: Optional[torch.Generator] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels, regression targets and L1 weights of every anchor (module docstring).

    Args:
        anchors: ``A×4`` ``cx, cy, w, h`` search-crop pixels (:func:`trackers.heads.rpn.generate_anchors`).
        boxes: ``B×4`` ground truth ``x1, y1, x2, y2`` in search-crop pixels.
        cfg: thresholds and sample sizes (:class:`RPNLossConfig`).
        positive_pairs: optional ``B`` bool/int; a false entry is a negative pair.
        stride: spacing of the anchor locations in pixels (the negative pairs' window).
        generator: the random source of the sampling (CPU ``torch.Generator``).

    Returns:
        ``labels`` B×A long (1 positive, 0 negative, -1 ignored), ``deltas`` B×A×4 and ``weights`` B×A.
    """
    cfg = cfg or RPNLossConfig()
    boxes = boxes.to(device=anchors.device, dtype=anchors.dtype)
    b, a = boxes.shape[0], anchors.shape[0]
    iou, _ = box_iou_elementwise(cxcywh_to_xyxy(anchors).unsqueeze(0).expand(b, a, 4),
                                 boxes.unsqueeze(1).expand(b, a, 4))
    target = xyxy_to_cxcywh(boxes)
    sized = torch.cat([target[:, :2], target[:, 2:].clamp(min=1e-6)], dim=1)   # a degenerate box: finite deltas
    deltas = encode_boxes(sized.unsqueeze(1), anchors.unsqueeze(0))
    pairs = torch.ones(b, dtype=torch.bool) if positive_pairs is None else \
        torch.as_tensor(positive_pairs).reshape(-1).bool().cpu()
    labels = torch.full((b, a), -1, dtype=torch.long)
    weights = torch.zeros(b, a, dtype=anchors.dtype)
    iou_c, centres, target_c = iou.detach().cpu(), anchors[:, :2].detach().cpu(), target.detach().cpu()
    for i in range(b):
        if bool(pairs[i]):
            pos = _keep(torch.nonzero(iou_c[i] > cfg.thr_high).flatten(), cfg.pos_num, generator)
            neg = _keep(torch.nonzero(iou_c[i] < cfg.thr_low).flatten(), cfg.total_num - cfg.pos_num, generator)
            labels[i, neg] = 0
            labels[i, pos] = 1
            weights[i, pos] = 1.0 / max(pos.numel(), 1)
        else:
            nearest = centres[(centres - target_c[i, :2]).abs().sum(1).argmin()]
            near = ((centres - nearest).abs() <= cfg.neg_radius * stride + 1e-3).all(1)
            labels[i, _keep(torch.nonzero(near).flatten(), cfg.neg_num, generator)] = 0
    return labels.to(anchors.device), deltas, weights.to(anchors.device)


def weight_l1_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ weight · Σ_4 |pred - target| / B`` over ``B×A×4`` deltas (pysot ``weight_l1_loss``); anchors of weight 0
    do not enter (their targets may be undefined)."""
    diff = (pred - target).abs().sum(-1)
    return torch.where(weights > 0, diff * weights, torch.zeros_like(diff)).sum() / max(pred.shape[0], 1)


class RPNLoss(torch.nn.Module):
    """SiamRPN++'s loss on a model output dict (``cls``, ``loc`` and optionally ``contrastive``)."""

    def __init__(self, cfg: Optional[RPNLossConfig] = None):
        super().__init__()
        self.cfg = cfg or RPNLossConfig()

    def forward(self, outputs: Dict[str, torch.Tensor], anchors: torch.Tensor, boxes: torch.Tensor,
                positive_pairs: Optional[torch.Tensor] = None, stride: float = 8.0,
                generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``(total loss, stats)``; ``anchors`` A×4 ``cxcywh`` from the model, ``boxes`` B×4 search-crop
        ``x1, y1, x2, y2``."""
        cfg = self.cfg
        cls, loc = outputs["cls"], outputs["loc"]
        k = cls.shape[1] // 2
        if anchors.shape[0] != k * cls.shape[-2] * cls.shape[-1]:
            raise ValueError(f"RPNLoss: {anchors.shape[0]} anchors for {k} anchors per location on a "
                             f"{cls.shape[-2]}x{cls.shape[-1]} score map")
        labels, targets, weights = anchor_targets(anchors.to(cls.device), boxes, cfg, positive_pairs, stride,
                                                  generator)
        loss_cls = select_cross_entropy(anchor_logits(cls, k).float(), labels)
        loss_loc = weight_l1_loss(anchor_deltas(loc, k).float(), targets, weights)
        total = cfg.cls_weight * loss_cls + cfg.loc_weight * loss_loc
        b = max(cls.shape[0], 1)
        stats = {"loss_cls": float(loss_cls.detach()), "loss_loc": float(loss_loc.detach()),
                 "positives": float((labels == 1).sum()) / b}
        return add_contrastive(total, stats, outputs, cfg.contrastive_weight), stats
