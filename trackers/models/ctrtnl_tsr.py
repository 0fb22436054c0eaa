"""CTRTNL's target-specific retrieval (TSR; paper 004 §3.3, §4, Fig. 6): the global search that AdaRS boots.

When the best AdaRS score of the local proposals is below ``T^ars`` (Alg. 1 line 21, ``B_i <- TSR(I_i)``):

1. :func:`sliding_windows` / :func:`target_windows` lay windows over the whole frame;
2. :class:`ProposalSelector`, the vision-language guided proposal selector (Fig. 6), encodes a learnable guided
   token with the target template and the words in a tiny transformer encoder, multiplies the guided token's output
   (the "semantic feature", expanded over the pixels) element-wise with each window's PrRoI-pooled feature (after
   OAM, §4 "we also add the object-aware attention memory module to the TSN"), global-max-pools it and scores it;
3. :func:`topk_average`: the global result is the mean of the coordinates of the top-k windows (§3.3, last para).

Training (§4): windows sampled from the generated ones, labelled foreground / background by :func:`window_labels`,
the selector (and its OAM) optimised with :func:`selector_bce_loss`.

The paper gives no window sizes, strides, k, encoder sizes or labelling rule; the choices, each a default argument:

* Windows (:func:`target_windows`): the target's last size (the box AdaRS last accepted) times each of
  ``scales = (0.8, 1.0, 1.25)``, clamped to ``[min_size, frame size]`` per side; the stride is ``stride_ratio = 0.5``
  of the window side (neighbouring windows overlap by half, so every target centre lies within a quarter window of
  some window's centre). Windows start at 0 every stride; one more window flush with the right / bottom border is
  added when the last one does not reach it, so the whole frame is covered (:func:`window_starts`).
* "Pretrained transformer encoder ... tiny transformer encoders": built from scratch here (no checkpoint of theirs
  exists): ``layers = 2`` post-norm ``nn.TransformerEncoderLayer`` of width C, ``heads = 4``, FFN ``2C``, over the
  sequence ``[guided token; template pixels (h·w); words projected D -> C]`` with a learnable type embedding per
  part (guided / template / word); padded words are masked out as keys, so they change nothing. The semantic
  feature is the guided token's output.
* "Multiply ... element-wise after the semantic feature is expanded": ``f^obj_k ⊙ s`` with ``s`` (C) broadcast
  over the window's ``S×S`` pixels; "global max pooling" is over those pixels (``C×S×S -> C``); the score is
  ``Linear(C, 1)`` of it (the paper draws one score per window, no layer named): a logit, sigmoid for a probability.
* Window features: PrRoI pooling (:func:`~trackers.ops.prroi_pool2d`, ``S = 7``) on the frame's feature map at
  ``feature_stride`` (8 for SiamRPN++'s neck); the template is pooled the same way at its box.
* ``k = 3`` windows averaged (fewer when fewer windows exist); the average is of ``x1, y1, x2, y2``.
* Labels: a window is foreground when its IoU with the ground truth is ``>= pos_iou = 0.5`` (the Recall@50 of
  Tab. 4), background when ``< neg_iou = 0.3``, ignored in between; the BCE is the mean over the kept windows.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from trackers.boxes import box_iou_elementwise
from trackers.models.ctrtnl_blocks import ObjectAwareMemory
from trackers.ops import prroi_pool2d

__all__ = ["window_starts", "sliding_windows", "target_windows", "topk_average", "window_labels",
           "selector_bce_loss", "pool_boxes", "ProposalSelector"]


def window_starts(length: float, size: float, stride: float) -> torch.Tensor:
    """Start coordinates of windows of ``size`` along a side of ``length``: ``0, stride, 2·stride, ...`` while the
    window fits, plus ``length - size`` when the last one stops short of the border. ``size >= length`` gives one
    window at 0 (the caller clamps the size)."""
    if size <= 0 or stride <= 0:
        raise ValueError(f"window_starts: size and stride must be positive, got size={size}, stride={stride}")
    if size >= length:
        return torch.zeros(1, dtype=torch.float64)
    n = int(math.floor((length - size) / stride + 1e-9)) + 1                     # windows that fit from 0
    starts = torch.arange(n, dtype=torch.float64) * stride
    if starts[-1] + size < length - 1e-9:                                       # cover the border
        starts = torch.cat([starts, torch.tensor([length - size], dtype=torch.float64)])
    return starts


def sliding_windows(frame_size: Tuple[float, float], window_size: Tuple[float, float],
                    stride: Tuple[float, float]) -> torch.Tensor:
    """All windows of ``window_size = (w, h)`` over a frame of ``frame_size = (W, H)`` with ``stride = (sx, sy)``:
    ``N×4`` ``x1, y1, x2, y2`` (float32), rows first (y outer, x inner). Sides are clamped to the frame."""
    fw, fh = float(frame_size[0]), float(frame_size[1])
    w, h = min(float(window_size[0]), fw), min(float(window_size[1]), fh)
    xs, ys = window_starts(fw, w, float(stride[0])), window_starts(fh, h, float(stride[1]))
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    return torch.stack([x, y, x + w, y + h], -1).float()


def target_windows(frame_size: Tuple[float, float], target_size: Tuple[float, float],
                   scales: Sequence[float] = (0.8, 1.0, 1.25), stride_ratio: float = 0.5,
                   min_size: float = 8.0) -> torch.Tensor:
    """Windows for the global search from the target's last size ``(w, h)``: per scale ``s``, windows of side
    ``clamp(s·w, min_size, W)`` × ``clamp(s·h, min_size, H)`` and stride ``stride_ratio`` × side (module docstring);
    the scales' windows concatenated in order (``N×4`` xyxy)."""
    if not scales:
        raise ValueError("target_windows: scales must not be empty")
    fw, fh = float(frame_size[0]), float(frame_size[1])
    out = []
    for s in scales:
        w = min(max(s * float(target_size[0]), min_size), fw)
        h = min(max(s * float(target_size[1]), min_size), fh)
        out.append(sliding_windows((fw, fh), (w, h), (stride_ratio * w, stride_ratio * h)))
    return torch.cat(out)


def topk_average(boxes: torch.Tensor, scores: torch.Tensor, k: int = 3) -> Tuple[torch.Tensor, torch.Tensor]:
    """The global result (§3.3): the mean of the ``k`` highest-scoring boxes' coordinates.

    ``boxes`` ``...×N×4``, ``scores`` ``...×N``; returns ``(box ...×4, indices ...×k')`` with ``k' = min(k, N)``.
    """
    if k < 1:
        raise ValueError(f"topk_average: k must be >= 1, got {k}")
    if boxes.shape[-2] == 0:
        raise ValueError("topk_average: no boxes to choose from")
    idx = scores.topk(min(k, scores.shape[-1]), dim=-1).indices
    chosen = boxes.gather(-2, idx.unsqueeze(-1).expand(*idx.shape, boxes.shape[-1]))
    return chosen.mean(-2), idx


def window_labels(windows: torch.Tensor, target: torch.Tensor, pos_iou: float = 0.5,
                  neg_iou: float = 0.3) -> Tuple[torch.Tensor, torch.Tensor]:
    """Foreground / background labels of windows (``...×N×4``) against the ground truth (``...×4``, xyxy):
    ``(labels, valid)``, labels 1 where IoU >= ``pos_iou``, valid false where ``neg_iou <= IoU < pos_iou``."""
    if neg_iou > pos_iou:
        raise ValueError(f"window_labels: neg_iou {neg_iou} must not exceed pos_iou {pos_iou}")
    iou, _ = box_iou_elementwise(windows, target.unsqueeze(-2).to(windows.dtype))
    labels = (iou >= pos_iou).to(windows.dtype)
    return labels, (iou >= pos_iou) | (iou < neg_iou)


def selector_bce_loss(logits: torch.Tensor, labels: torch.Tensor,
                      valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """§4: binary cross-entropy of the selector's window logits against foreground / background labels, the mean
    over the valid windows (all when ``valid`` is None); 0 (with a graph) when none is valid."""
    loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    if valid is None:
        return loss.mean()
    v = valid.to(loss.dtype)
    return (loss * v).sum() / v.sum().clamp(min=1.0)


def pool_boxes(features: torch.Tensor, boxes: torch.Tensor, output_size: int, feature_stride: float) -> torch.Tensor:
    """PrRoI-pool image-coordinate boxes ``B×N×4`` (xyxy) from ``features`` ``B×C×H×W`` -> ``B×N×C×S×S``."""
    b, n = boxes.shape[:2]
    index = torch.arange(b, dtype=boxes.dtype, device=boxes.device).repeat_interleave(n)
    rois = torch.cat([index[:, None], boxes.reshape(b * n, 4)], 1)
    pooled = prroi_pool2d(features, rois, output_size, spatial_scale=1.0 / feature_stride)
    return pooled.reshape(b, n, *pooled.shape[1:])


class ProposalSelector(nn.Module):
    """The vision-language guided proposal selector (Fig. 6) with its OAM (§4).

    ``semantic(template B×C×h×w, words B×T×D, word_mask B×T) -> B×C``: the guided token's output of the tiny
    encoder over ``[guided; template pixels; projected words]``. ``forward(frame_features B×C×H×W, windows B×N×4,
    template, words, word_mask)`` returns ``logits`` (``B×N``, one per window), ``fg_logits`` (``B×N×S×S``, OAM's
    ``M``) and ``semantic`` (``B×C``). :meth:`retrieve` runs the whole global search on one frame. Choices: see the
    module docstring.
    """

    def __init__(self, channels: int = 256, word_dim: int = 768, layers: int = 2, heads: int = 4,
                 ffn: Optional[int] = None, pool_size: int = 7, feature_stride: float = 8.0, slots: int = 16,
                 reduction: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool_size, self.feature_stride = pool_size, feature_stride
        self.guide = nn.Parameter(torch.randn(1, 1, channels) * 0.02)          # the learnable guided token
        self.types = nn.Parameter(torch.randn(3, channels) * 0.02)             # guided / template / word
        self.word_proj = nn.Linear(word_dim, channels)
        layer = nn.TransformerEncoderLayer(channels, heads, ffn or 2 * channels, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.oam = ObjectAwareMemory(channels, slots, reduction)
        self.score = nn.Linear(channels, 1)

    def semantic(self, template: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """The semantic feature ``s`` (``B×C``) from the target template and the words (Fig. 6, left)."""
        b = template.shape[0]
        z = template.flatten(-2).transpose(-1, -2) + self.types[1]            # B×hw×C template tokens
        e = self.word_proj(words) + self.types[2]                            # B×T×C word tokens
        g = self.guide.expand(b, -1, -1) + self.types[0]                      # B×1×C
        seq = torch.cat([g, z, e], 1)
        keep = torch.cat([torch.ones(b, 1 + z.shape[1], dtype=torch.bool, device=seq.device),
                          word_mask.bool()], 1)
        return self.encoder(seq, src_key_padding_mask=~keep)[:, 0]            # the guided token's output

    def forward(self, frame_features: torch.Tensor, windows: torch.Tensor, template: torch.Tensor,
                words: torch.Tensor, word_mask: torch.Tensor,
                semantic: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        s = self.semantic(template, words, word_mask) if semantic is None else semantic
        f = pool_boxes(frame_features, windows, self.pool_size, self.feature_stride)  # B×N×C×S×S
        f_obj, m = self.oam(f)                                                # Eq. 1-3 on each window
        attended = f_obj * s[:, None, :, None, None]                          # s expanded, element-wise product
        pooled = attended.amax((-2, -1))                                      # global max pooling: B×N×C
        return {"logits": self.score(pooled).squeeze(-1), "fg_logits": m, "semantic": s}

    @torch.no_grad()
    def retrieve(self, frame_features: torch.Tensor, frame_size: Tuple[float, float],
                 target_size: Tuple[float, float], template: torch.Tensor, words: torch.Tensor,
                 word_mask: torch.Tensor, k: int = 3, semantic: Optional[torch.Tensor] = None,
                 chunk: int = 1024, **window_kwargs) -> Dict[str, torch.Tensor]:
        """TSR on one frame (``B = 1``): windows from the target's last size, selector scores, top-k average.

        The semantic feature is computed once (or passed in, cached per video) and the windows are scored ``chunk``
        at a time (a 1280×720 frame with a 40×30 target gives 9,560 windows; pooled at 7×7×256 that is ~0.48 GB
        at once). Returns ``box`` (4, xyxy, image coordinates), ``windows`` (N×4), ``logits`` (N), ``topk``
        (indices) and ``score`` (the mean sigmoid of the chosen windows)."""
        if frame_features.shape[0] != 1:
            raise ValueError(f"retrieve: one frame at a time, got a batch of {frame_features.shape[0]}")
        if chunk < 1:
            raise ValueError(f"retrieve: chunk must be >= 1, got {chunk}")
        windows = target_windows(frame_size, target_size, **window_kwargs).to(frame_features)
        s = self.semantic(template, words, word_mask) if semantic is None else semantic
        logits = torch.cat([self(frame_features, part[None], template, words, word_mask, s)["logits"][0]
                            for part in windows.split(chunk)])
        box, idx = topk_average(windows, logits, k)
        return {"box": box, "windows": windows, "logits": logits, "topk": idx,
                "score": torch.sigmoid(logits[idx]).mean()}
