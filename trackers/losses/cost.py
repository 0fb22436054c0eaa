"""COST's training loss (paper 003 §4.5): ``L = L_CoA + L_reg + α·L_ce`` with α = 1.

* ``L_ce``: 2-way cross-entropy over the ``N`` candidates (the paper's binary cross-entropy, written unweighted:
  ``eos_coef = 1``; TransT's class weighting is ``loss.eos_coef: 0.0625``), mean over candidates;
* ``L_reg`` (Eq. 10): ``λ_1 = 5`` L1 and ``λ_G = 2`` GIoU on the positives, normalised by their number (TransT's
  ``SetCriterion``, which COST follows: "Like [17]");
* ``L_CoA`` (Eq. 6-8): computed by the model (``outputs['contrastive']``), weight ``contrastive_weight`` = 1
  (0: the "w/o CoA" ablation).

Positives: "pixels within the ground-truth box" (§4.5). Of the ``N'_v + N_l + 1`` candidates only the ``N'_v``
visual tokens are pixels: their ``S×S`` grid starts at crop pixel ``offset`` (``model.visual_offset``, 48 at paper
size) with the model's stride, and TransT's rule (:func:`~trackers.losses.transt.assign_positives`) applies there.
**Choice**: the language tokens and the [OBJ] token are always background (they are no pixel).

The losses are :class:`~trackers.losses.transt.TransTLoss`'s; only the defaults (α = 1, unweighted CE) and the
positives differ. Note: issue 23 calls α the CoA weight; the paper's α weighs ``L_ce`` and CoA enters with 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from trackers.losses.transt import TransTLoss, TransTLossConfig, assign_positives

__all__ = ["COSTLossConfig", "COSTLoss"]


@dataclass
class COSTLossConfig(TransTLossConfig):
    """Weights of COST's loss (YAML section ``loss``): ``cls_weight`` α = 1, ``l1_weight`` λ_1 = 5,
    ``giou_weight`` λ_G = 2, ``contrastive_weight`` (L_CoA) 1, ``eos_coef`` 1 (unweighted cross-entropy)."""

    cls_weight: float = 1.0
    eos_coef: float = 1.0


class COSTLoss(TransTLoss):
    """TransT's losses over COST's candidates (module docstring).

    Args:
        cfg: :class:`COSTLossConfig`.
        visual_side: ``S``, side of the visual token grid (20 at paper size).
        offset: crop pixel of visual token 0 (``model.visual_offset``).
    """

    def __init__(self, cfg: Optional[COSTLossConfig] = None, visual_side: int = 20, offset: float = 48.0):
        super().__init__(cfg or COSTLossConfig())
        self.visual_side = int(visual_side)
        self.offset = float(offset)

    def positives(self, boxes: torch.Tensor, n: int, stride: float, positive_pairs: Optional[torch.Tensor] = None
                  ) -> torch.Tensor:
        """``B×n``: TransT's rule on the visual grid, the ``n - S²`` language / [OBJ] candidates background."""
        s2 = self.visual_side ** 2
        if n < s2:
            raise ValueError(f"COSTLoss: {n} candidates, fewer than the {s2} visual tokens")
        pos = assign_positives(boxes, self.visual_side, stride, positive_pairs, self.offset)
        return torch.cat([pos, pos.new_zeros(pos.shape[0], n - s2)], dim=1)
