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

Global negatives under DDP (``gather=True``, config key ``contrastive_gather``; CLIP's ``gather_with_grad``): in
training mode inside a process group of more than one process, every rank all-gathers e_v, e_l and the mask of all
ranks (rank order) and computes the loss of the whole global batch, so each pair has the global batch as negatives.
The gather carries no autograd; each rank's own rows keep their graph with the gradient scaled by the world size
(:func:`gather_rows`), which DDP's gradient averaging turns into exactly the gradient of one process on the whole
batch. Without a
process group, or in eval mode, nothing is gathered (the single-process result is unchanged).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["contrastive_loss", "contrastive_mask", "ContrastiveAlignment", "gather_rows"]


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(*tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Each tensor (b_r × ... on rank r, same b_r for all tensors of a rank) concatenated over the ranks in rank
    order; a collective call. Ranks may hold different b_r (rows are padded for the transfer).

    The transfer carries no autograd (no collective runs in the backward pass): this rank's own slot is its local
    tensor, with its gradient scaled by the world size W (``W·t − (W − 1)·t.detach()``: the value of ``t``). Every
    rank differentiates the same global loss, so the sum over the ranks of their gradients on rank r's rows is W
    times this rank's own; DDP's averaging then gives the gradient of one process on the whole batch."""
    world, rank = _world_size(), dist.get_rank()
    b = tensors[0].shape[0]
    device = tensors[0].device
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([b], dtype=torch.long, device=device))
    counts = [int(n.item()) for n in sizes]
    most = max(counts)
    out = []
    for t in tensors:
        if t.shape[0] != b:
            raise ValueError(f"gather_rows: tensors hold {b} and {t.shape[0]} rows")
        sent = t.detach()
        if most > b:
            sent = torch.cat([sent, sent.new_zeros((most - b,) + tuple(t.shape[1:]))])
        parts = [torch.empty_like(sent) for _ in range(world)]
        dist.all_gather(parts, sent.contiguous())
        pieces = [part[:n] for part, n in zip(parts, counts)]
        pieces[rank] = t * world - t.detach() * (world - 1) if t.is_floating_point() else t
        out.append(torch.cat(pieces))
    return tuple(out)


def contrastive_loss(e_v: torch.Tensor, e_l: torch.Tensor, scale: Union[float, torch.Tensor],
                     exclude_positive: bool = False) -> torch.Tensor:
    """Symmetric cross-entropy of the scaled cosine-similarity logits (Eq. 2-4); ``e_v``, ``e_l``: b×C, b ≥ 1.

    ``exclude_positive``: the denominator of each row sums over the negatives only, ``1[j ≠ i]`` (COST's InfoNCE,
    paper 003 Eq. 6-7, with ``scale = 1/τ``): ``mean_i [-s_ii + log Σ_{j≠i} exp(s_ij)]`` in both directions, halved
    (Eq. 8); needs b ≥ 2."""
    if e_v.dim() != 2 or e_v.shape != e_l.shape:
        raise ValueError(f"contrastive_loss: e_v and e_l must both be b×C, got {tuple(e_v.shape)} and {tuple(e_l.shape)}")
    if e_v.shape[0] == 0 or (exclude_positive and e_v.shape[0] < 2):
        raise ValueError(f"contrastive_loss: batch of {e_v.shape[0]} (needs {2 if exclude_positive else 1})")
    logits = scale * (F.normalize(e_v, dim=1) @ F.normalize(e_l, dim=1).t())  # Eq. 3 (COST: Alg. 1 lines 7-8)
    labels = torch.arange(e_v.shape[0], device=e_v.device)  # Eq. 4 (0-based)
    if exclude_positive:
        eye = torch.eye(e_v.shape[0], dtype=torch.bool, device=e_v.device)
        pos = logits.diagonal()
        neg = logits.masked_fill(eye, float("-inf"))
        v2l = (neg.logsumexp(dim=1) - pos).mean()      # COST Eq. 6
        l2v = (neg.logsumexp(dim=0) - pos).mean()      # COST Eq. 7 (rows of sim(F^l, F^v) = columns here)
        return (v2l + l2v) / 2                         # COST Eq. 8
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
    """Holds the learnable logit scale and computes the masked loss of Eq. 2-4.

    ``no_weight_decay``: the optimizer builder gives the logit scale no weight decay (CLIP practice). ``gather``:
    global negatives under DDP in training mode (see the module docstring).
    """

    no_weight_decay: Tuple[str, ...] = ("logit_scale",)

    def __init__(self, init_scale: float = 1.0 / 0.07, max_scale: float = 100.0, gather: bool = False) -> None:
        super().__init__()
        if init_scale <= 0:
            raise ValueError(f"contrastive init scale must be > 0, got {init_scale}")
        self.max_scale = float(max_scale)
        self.gather = bool(gather)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    @property
    def scale(self) -> torch.Tensor:
        """exp(logit_scale), clamped at ``max_scale`` (CLIP)."""
        return self.logit_scale.exp().clamp(max=self.max_scale)

    def forward(self, e_v: torch.Tensor, e_l: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Loss over the pairs where ``mask`` (b bool) is True (of every rank with ``gather``); 0 when no pair is
        left."""
        if self.gather and self.training and _world_size() > 1:
            flags = torch.ones(e_v.shape[0], dtype=torch.uint8, device=e_v.device) if mask is None \
                else mask.to(device=e_v.device, dtype=torch.uint8)
            e_v, e_l, flags = gather_rows(e_v, e_l, flags)
            mask = flags.bool()
        if mask is not None:
            mask = mask.to(device=e_v.device, dtype=torch.bool)
            e_v, e_l = e_v[mask], e_l[mask]
        if e_v.shape[0] == 0:
            return self.logit_scale * 0.0
        return contrastive_loss(e_v, e_l, self.scale)
