"""CTRTNL's alignment loss ``L_aln`` (paper 004 §4, after Eq. 19): VSE++'s hinge-based triplet ranking loss.

Faghri et al., "VSE++: Improving Visual-Semantic Embeddings with Hard Negatives" (BMVC 2018), Eq. 5: for a batch
of N matching (visual, text) pairs with similarity matrix ``S`` (rows visual, columns text, positives on the
diagonal) and margin α,

    L = Σ_i max_{j≠i} [α + S(i, j) - S(i, i)]_+  +  Σ_j max_{i≠j} [α + S(i, j) - S(j, j)]_+

(the hardest negative caption of each image plus the hardest negative image of each caption; with
``max_violation=False`` the maxima become sums, VSE0's loss). As in VSE++'s code the loss is summed over the batch,
not averaged, and α = 0.2. CTRTNL feeds Eq. 19's ``S_corr`` (:func:`~trackers.models.ctrtnl_blocks.
alignment_similarity`) as ``S``. ``not_negative`` removes pairs that must not count as negatives (e.g. two items of
one video, whose sentences are the same).

:class:`CTRTNLLoss` is Eq. 20 plus TSR's selector BCE, on the outputs of :meth:`~trackers.models.ctrtnl.CTRTNL.
forward`::

    L = L_aln + λ_div (L_div-p + L_div-l,v) + λ L_bce + λ_sel L_sel

Choices where the paper is silent:

* λ_div = λ = 1 (``div_weight``, ``bce_weight``); the paper trains AdaRS and TSR "offline", each with its loss; the
  local tracker and the language model are frozen, so one optimiser over the sum (``selector_weight`` 1) trains
  them as two separate runs would.
* OAM's target (``L_bce``): bin ``(u, v)`` of a proposal's ``S×S`` pooled grid is foreground when its centre lies
  inside the ground-truth box (the box's mask sampled at the bins), BCE averaged over every bin of every proposal.
* L_aln: the positives are the proposals with IoU >= ``positive_iou`` = 0.5 with the ground truth (the ground-truth
  box is one of the proposals, so every item has one). Each positive is paired with its item's sentence; VSE++ runs
  on the square matrix of these pairs, where two pairs of one item, or of items with the same text, are not
  negatives of each other. Items without text of their own and negative pairs (``label`` 0) give no positive.
* The selector's BCE (:func:`~trackers.models.ctrtnl_tsr.selector_bce_loss`, IoU >= 0.5 foreground, < 0.3
  background) is averaged over the items; a negative pair's windows are all background.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["hinge_triplet_loss", "CTRTNLLossConfig", "CTRTNLLoss", "foreground_targets"]


def hinge_triplet_loss(scores: torch.Tensor, margin: float = 0.2, max_violation: bool = True,
                       not_negative: Optional[torch.Tensor] = None) -> torch.Tensor:
    """VSE++'s ranking loss of an ``N×N`` similarity matrix whose diagonal holds the matching pairs.

    Args:
        scores: ``S[i, j]``, similarity of visual item ``i`` and text ``j``.
        margin: the hinge margin α.
        max_violation: online hardest negatives (VSE++); ``False`` sums over all negatives.
        not_negative: optional ``N×N`` bool, true where ``(i, j)`` is not a negative pair (the diagonal never is).
    Returns: the scalar loss, summed over the batch.
    """
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"hinge_triplet_loss: scores must be a square N×N matrix, got {tuple(scores.shape)}")
    n = scores.shape[0]
    positive = scores.diagonal()
    cost_text = (margin + scores - positive[:, None]).clamp(min=0)            # image i, negative text j
    cost_visual = (margin + scores - positive[None, :]).clamp(min=0)          # text j, negative image i
    skip = torch.eye(n, dtype=torch.bool, device=scores.device)
    if not_negative is not None:
        if not_negative.shape != scores.shape:
            raise ValueError(f"hinge_triplet_loss: not_negative must be {tuple(scores.shape)}, "
                             f"got {tuple(not_negative.shape)}")
        skip = skip | not_negative.to(device=scores.device, dtype=torch.bool)
    cost_text = cost_text.masked_fill(skip, 0.0)
    cost_visual = cost_visual.masked_fill(skip, 0.0)
    if max_violation:
        return cost_text.max(1).values.sum() + cost_visual.max(0).values.sum()
    return cost_text.sum() + cost_visual.sum()


@dataclass
class CTRTNLLossConfig:
    """Weights of CTRTNL's loss (YAML section ``loss``; module docstring): ``margin`` α 0.2 and ``max_violation``
    (VSE++), ``div_weight`` λ_div 1, ``bce_weight`` λ 1, ``selector_weight`` 1, ``positive_iou`` 0.5 (L_aln's
    positives), ``proposals`` G = 8 SiamRPN++ proposals per training pair, ``window_pos_iou`` / ``window_neg_iou``
    (the selector's labels)."""

    margin: float = 0.2
    max_violation: bool = True
    div_weight: float = 1.0
    bce_weight: float = 1.0
    selector_weight: float = 1.0
    positive_iou: float = 0.5
    proposals: int = 8
    window_pos_iou: float = 0.5
    window_neg_iou: float = 0.3

    def __post_init__(self) -> None:
        from asearch.errors import ConfigError

        if self.proposals < 1:
            raise ConfigError(f"loss.proposals must be >= 1, got {self.proposals}")
        if not 0.0 < self.positive_iou <= 1.0:
            raise ConfigError(f"loss.positive_iou must be in (0, 1], got {self.positive_iou}")


def foreground_targets(boxes: torch.Tensor, target: torch.Tensor, size: int) -> torch.Tensor:
    """OAM's targets: ``...×K×size×size``, 1 where the centre of bin ``(v, u)`` of proposal ``boxes[..., k, :]``
    (xyxy) lies inside ``target`` (``...×4`` xyxy), else 0."""
    t = (torch.arange(size, dtype=boxes.dtype, device=boxes.device) + 0.5) / size
    x = boxes[..., 0:1] + t * (boxes[..., 2:3] - boxes[..., 0:1])                  # ...×K×S bin centres
    y = boxes[..., 1:2] + t * (boxes[..., 3:4] - boxes[..., 1:2])
    g = target.unsqueeze(-2)
    inside_x = (x >= g[..., 0:1]) & (x <= g[..., 2:3])
    inside_y = (y >= g[..., 1:2]) & (y <= g[..., 3:4])
    return (inside_y.unsqueeze(-1) & inside_x.unsqueeze(-2)).to(boxes.dtype)


class CTRTNLLoss:
    """Eq. 20 + the selector's BCE (module docstring): ``loss(outputs, search_box, positive_pairs) -> (loss,
    stats)`` with stats ``aln``, ``div_p``, ``div_lv``, ``bce``, ``selector``, ``positives`` and ``total``."""

    def __init__(self, cfg: Optional[CTRTNLLossConfig] = None) -> None:
        self.cfg = cfg or CTRTNLLossConfig()

    def alignment(self, outputs: Mapping[str, Any], keep: torch.Tensor, iou: torch.Tensor) -> Tuple[torch.Tensor,
                                                                                                     int]:
        """L_aln over the positive proposals of the kept items and their sentences; ``(loss, positives)``."""
        from trackers.models.ctrtnl_blocks import alignment_similarity

        visual, text = outputs["visual"], outputs["text"]
        pos = (iou >= self.cfg.positive_iou) & keep[:, None]
        item, prop = pos.nonzero(as_tuple=True)
        if item.numel() < 2:
            return outputs["scores"].sum() * 0.0, int(item.numel())
        v = {k: t[item, prop].unsqueeze(1) for k, t in visual.items()}              # P×1×...
        s = {k: t[item].unsqueeze(0) for k, t in text.items()}                       # 1×P×...
        scores = alignment_similarity(v, s)                                          # P×P, diagonal: matches
        ids = outputs["language"]["ids"][item]
        same = (ids[:, None, :] == ids[None, :, :]).all(-1) | (item[:, None] == item[None, :])
        loss = hinge_triplet_loss(scores, self.cfg.margin, self.cfg.max_violation, same)
        return loss, int(item.numel())

    def __call__(self, outputs: Mapping[str, Any], search_box: torch.Tensor,
                 positive_pairs: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Dict[str, float]]:
        from trackers.boxes import box_iou_elementwise
        from trackers.models.ctrtnl_blocks import diversity_loss, local_diversity_loss
        from trackers.models.ctrtnl_tsr import selector_bce_loss, window_labels

        cfg = self.cfg
        boxes = outputs["proposals"]
        gt = search_box.to(boxes)
        b = boxes.shape[0]
        positive = (torch.ones(b, dtype=torch.bool, device=boxes.device) if positive_pairs is None
                    else torch.as_tensor(positive_pairs, device=boxes.device).reshape(b).bool())
        m = outputs["fg_logits"]
        fg = foreground_targets(boxes, gt, m.shape[-1]) * positive.to(boxes.dtype).view(b, 1, 1, 1)
        bce = F.binary_cross_entropy_with_logits(m, fg)
        div_p = diversity_loss(outputs["parts"])                                     # Eq. 17
        div_lv = local_diversity_loss(outputs["visual"]["local"], outputs["text"]["local"])   # Eq. 18
        iou, _ = box_iou_elementwise(boxes, gt[:, None].expand_as(boxes))
        keep = positive & outputs["language"]["has_text"].to(boxes.device).bool()
        aln, count = self.alignment(outputs, keep, iou)
        sel = []
        for i, (win, logits) in enumerate(zip(outputs["windows"], outputs["window_logits"])):
            labels, valid = window_labels(win, gt[i], cfg.window_pos_iou, cfg.window_neg_iou)
            if not bool(positive[i]):
                labels, valid = torch.zeros_like(labels), torch.ones_like(valid)
            sel.append(selector_bce_loss(logits, labels, valid))
        selector = torch.stack(sel).mean()
        total = aln + cfg.div_weight * (div_p + div_lv) + cfg.bce_weight * bce + cfg.selector_weight * selector
        parts = (("aln", aln), ("div_p", div_p), ("div_lv", div_lv), ("bce", bce), ("selector", selector),
                 ("total", total))
        stats = {k: float(v.detach()) for k, v in parts}
        stats["positives"] = float(count)
        return total, stats
