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
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["hinge_triplet_loss"]


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
