"""Contrastive vision-language alignment of the ModaMixer (paper 000 §3.2, Eq. 2-4; CLIP-style).

For a batch of b pairs with visual embeddings e_v (ROI-aligned ground-truth box on ``Block_last(f_v)``, b×C) and
language embeddings e_l = Linear(f_l) (b×C)::

    m_log = scale · cos(e_v_i, e_l_j)                                   # Eq. 3 (b×b)
    v_lbl = [0, 1, ..., b-1]                                            # Eq. 4
    loss  = [CE(m_log, v_lbl) + CE(m_log^T, v_lbl)] / 2                  # Eq. 2

The paper gives no temperature: **choice** (SPEC §3) a learnable logit scale as in CLIP, stored as its log,
initialised to 1/0.07 and clamped at 100 when used.

Pairs without language are excluded (**choice**): their "language" is a zero tensor, a pooled template feature or a
generic attribute phrase, which is no caption of that target, so it would be a wrong positive (and identical
vectors of several such pairs would be contradictory negatives). With no pair left the loss is 0 (still attached to
the graph through the scale so that ``backward`` works).
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["contrastive_loss", "contrastive_mask", "ContrastiveAlignment"]


def contrastive_loss(e_v: torch.Tensor, e_l: torch.Tensor, scale: Union[float, torch.Tensor]) -> torch.Tensor:
    """Symmetric cross-entropy of the scaled cosine-similarity logits (Eq. 2-4); ``e_v``, ``e_l``: b×C, b ≥ 1."""
    if e_v.dim() != 2 or e_v.shape != e_l.shape:
        raise ValueError(f"contrastive_loss: e_v and e_l must both be b×C, got {tuple(e_v.shape)} and {tuple(e_l.shape)}")
    if e_v.shape[0] == 0:
        raise ValueError("contrastive_loss: empty batch")
    logits = scale * (F.normalize(e_v, dim=1) @ F.normalize(e_l, dim=1).t())  # Eq. 3
    labels = torch.arange(e_v.shape[0], device=e_v.device)  # Eq. 4 (0-based)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2  # Eq. 2


def contrastive_mask(language: torch.Tensor, use_template_language: Optional[torch.Tensor] = None,
                     language_mask: Optional[torch.Tensor] = None, batch: Optional[int] = None) -> torch.Tensor:
    """The pairs that take part in Eq. 2-4 (b bool): real (non-zero) language, not the template strategy, and
    ``language_mask`` where given (the data path's flag: a positive pair whose video has a sentence of its own, see
    :class:`asearch.data.sampler.PairDataset`; a negative pair's search crop shows another target, and a fallback
    phrase is no caption of this one). ``language`` is b×D (or 1×D, broadcast to ``batch``)."""
    mask = language.detach().abs().sum(dim=1) > 0
    b = int(batch if batch is not None else mask.shape[0])
    if mask.shape[0] != b:
        mask = mask.expand(b)
    for name, flags, keep in (("use_template_language", use_template_language, False),
                              ("language_mask", language_mask, True)):
        if flags is None:
            continue
        flags = torch.as_tensor(flags).to(device=mask.device, dtype=torch.bool).flatten()
        if flags.numel() != b:
            raise ValueError(f"{name} must hold one flag per batch item ({b}), got {flags.numel()}")
        mask = mask & (flags if keep else ~flags)
    return mask


class ContrastiveAlignment(nn.Module):
    """Holds the learnable logit scale and computes the masked loss of Eq. 2-4."""

    def __init__(self, init_scale: float = 1.0 / 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        if init_scale <= 0:
            raise ValueError(f"contrastive init scale must be > 0, got {init_scale}")
        self.max_scale = float(max_scale)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    @property
    def scale(self) -> torch.Tensor:
        """exp(logit_scale), clamped at ``max_scale`` (CLIP)."""
        return self.logit_scale.exp().clamp(max=self.max_scale)

    def forward(self, e_v: torch.Tensor, e_l: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Loss over the pairs where ``mask`` (b bool) is True; 0 when no pair is left."""
        if mask is not None:
            mask = mask.to(device=e_v.device, dtype=torch.bool)
            e_v, e_l = e_v[mask], e_l[mask]
        if e_v.shape[0] == 0:
            return self.logit_scale * 0.0
        return contrastive_loss(e_v, e_l, self.scale)
