"""SiamCAR's training losses: label assignment on score-map locations, 2-class cross-entropy, IoU loss and
centerness BCE, plus the ModaMixer contrastive loss of VLT (paper 000 Eq. 2-4) when the backbone returns one.

Total (SiamCAR): ``L = L_cls + cen_weight * L_cen + loc_weight * L_reg (+ contrastive_weight * L_con)`` with
weights 1, 3 (regression), 1 and 1 by default.

Label assignment (SiamCAR's code, stricter than "inside the box"): location ``(x, y)`` (search-crop pixels, see
:func:`trackers.heads.car.score_locations`) with distances ``l = x - x1, t = y - y1, r = x2 - x, b = y2 - y`` to the
ground-truth box is **positive** when ``min(l, r) > (1 - f) / 2 * w`` and ``min(t, b) > (1 - f) / 2 * h``, i.e. it
lies in the centred rectangle covering the fraction ``f = center_fraction`` of the box's width and height (SiamCAR:
``l > 0.6 * w / 2``, so ``f = 0.4``; ``f = 1`` gives "anywhere inside the box"). Every other location is negative.
A negative pair (``label`` 0) has no positive location.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from asearch.errors import ConfigError
from trackers.losses.common import add_contrastive

__all__ = ["CARLossConfig", "assign_targets", "centerness_target", "iou_loss", "select_cross_entropy", "CARLoss"]


@dataclass
class CARLossConfig:
    """Weights of SiamCAR's losses and the positive region (YAML section ``loss``)."""

    cls_weight: float = 1.0
    loc_weight: float = 3.0
    cen_weight: float = 1.0
    contrastive_weight: float = 1.0
    center_fraction: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 < self.center_fraction <= 1.0:
            raise ConfigError(f"loss.center_fraction must be in (0, 1], got {self.center_fraction}")


def assign_targets(locations: torch.Tensor, boxes: torch.Tensor, center_fraction: float = 0.4,
                   positive_pairs: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Labels and regression targets of every location.

    Args:
        locations: ``N×2`` search-crop pixels ``(x, y)``.
        boxes: ``B×4`` ground truth ``x1, y1, x2, y2`` in search-crop pixels.
        center_fraction: size fraction of the positive rectangle (module docstring).
        positive_pairs: optional ``B`` bool/int; a false entry (negative pair) gets no positive.

    Returns:
        ``labels`` B×N long (1 positive, 0 negative) and ``targets`` B×N×4 ``l, t, r, b`` (pixels).
    """
    x = locations[:, 0].unsqueeze(0)                                   # 1×N
    y = locations[:, 1].unsqueeze(0)
    x1, y1, x2, y2 = (boxes[:, i:i + 1].to(locations.dtype) for i in range(4))  # B×1 each
    targets = torch.stack([x - x1, y - y1, x2 - x, y2 - y], dim=2)     # B×N×4 (SiamCAR regression targets)
    margin = (1.0 - center_fraction) / 2.0
    w, h = (x2 - x1), (y2 - y1)
    inside = (torch.minimum(targets[..., 0], targets[..., 2]) > margin * w) & \
             (torch.minimum(targets[..., 1], targets[..., 3]) > margin * h)
    if positive_pairs is not None:
        inside = inside & positive_pairs.to(device=inside.device).bool().view(-1, 1)
    return inside.long(), targets


def centerness_target(ltrb: torch.Tensor) -> torch.Tensor:
    """``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` on the last axis (SiamCAR / FCOS centerness)."""
    l, t, r, b = ltrb.unbind(-1)
    lr = torch.minimum(l, r) / torch.maximum(l, r).clamp(min=1e-12)
    tb = torch.minimum(t, b) / torch.maximum(t, b).clamp(min=1e-12)
    return torch.sqrt((lr * tb).clamp(min=0.0))


def iou_loss(pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """IoU loss of ``ltrb`` boxes sharing their anchor point: ``-log((I + 1) / (U + 1))`` (UnitBox, as SiamCAR's code,
    with +1 smoothing), averaged with ``weight`` (SiamCAR: the centerness targets) or uniformly. ``K×4`` inputs."""
    pl, pt, pr, pb = pred.unbind(-1)
    tl, tt, tr, tb = target.unbind(-1)
    area_p = (pl + pr) * (pt + pb)
    area_t = (tl + tr) * (tt + tb)
    inter = (torch.minimum(pl, tl) + torch.minimum(pr, tr)) * (torch.minimum(pt, tt) + torch.minimum(pb, tb))
    union = area_p + area_t - inter
    losses = -torch.log((inter + 1.0) / (union + 1.0))
    if weight is not None and float(weight.sum()) > 0:
        return (losses * weight).sum() / weight.sum()
    return losses.mean()


def select_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SiamCAR's classification loss: ``0.5 * NLL(positives) + 0.5 * NLL(negatives)``, each a mean over its own
    locations (a part with no location contributes 0). ``logits`` B×2×M×M, ``labels`` B×(M·M) in {0, 1}."""
    logp = F.log_softmax(logits.flatten(2), dim=1).transpose(1, 2).reshape(-1, logits.shape[1])  # (B·N)×2
    flat = labels.reshape(-1)
    total = logits.new_zeros(())
    for cls in (1, 0):
        sel = flat == cls
        if bool(sel.any()):
            total = total + 0.5 * F.nll_loss(logp[sel], flat[sel])
    return total


class CARLoss(torch.nn.Module):
    """SiamCAR's loss on a model output dict (``cls``, ``cen``, ``loc`` and optionally ``contrastive``)."""

    def __init__(self, cfg: Optional[CARLossConfig] = None):
        super().__init__()
        self.cfg = cfg or CARLossConfig()

    def forward(self, outputs: Dict[str, torch.Tensor], locations: torch.Tensor, boxes: torch.Tensor,
                positive_pairs: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``(total loss, stats)``; ``boxes`` B×4 search-crop ``x1, y1, x2, y2``, ``locations`` from the model."""
        cfg = self.cfg
        cls, cen, loc = outputs["cls"], outputs["cen"], outputs["loc"]
        b, _, m, _ = cls.shape
        if locations.shape[0] != m * m:
            raise ValueError(f"CARLoss: {locations.shape[0]} locations for a {m}x{m} score map")
        labels, targets = assign_targets(locations.to(cls.device), boxes.to(cls.device), cfg.center_fraction,
                                         positive_pairs)
        loss_cls = select_cross_entropy(cls, labels)
        pos = labels.reshape(-1) > 0
        pred_ltrb = loc.flatten(2).transpose(1, 2).reshape(-1, 4)
        cen_logit = cen.flatten(1).reshape(-1)
        if bool(pos.any()):
            tgt = targets.reshape(-1, 4)[pos]
            cen_t = centerness_target(tgt)
            loss_loc = iou_loss(pred_ltrb[pos], tgt, cen_t)
            loss_cen = F.binary_cross_entropy_with_logits(cen_logit[pos], cen_t)
        else:  # keep the graph connected (DDP) with a zero that has gradients
            loss_loc = pred_ltrb.sum() * 0.0
            loss_cen = cen_logit.sum() * 0.0
        total = cfg.cls_weight * loss_cls + cfg.loc_weight * loss_loc + cfg.cen_weight * loss_cen
        stats = {"loss_cls": float(loss_cls.detach()), "loss_loc": float(loss_loc.detach()),
                 "loss_cen": float(loss_cen.detach()), "positives": float(pos.sum()) / max(b, 1)}
        return add_contrastive(total, stats, outputs, cfg.contrastive_weight), stats
