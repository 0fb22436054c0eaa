"""STARK's plain corner head (Yan et al., ICCV 2021), SATracker's box head (paper 002 §3.3).

Two conv towers on the search map (B×C×H×W), each four 3×3 Conv-BN-ReLU layers of widths ``channels, /2, /4, /8``
and a 1×1 conv to one channel (:func:`trackers.heads.center.conv_tower`, the same stack as OSTrack's towers): the
top-left and the bottom-right corner score maps. Each map becomes a probability distribution over the ``H·W``
cells (softmax), and a corner is its expectation (soft-argmax)::

    P(i, j) = softmax(s)_{ij},    x = Σ P(i, j) · u_j,    y = Σ P(i, j) · u_i

**Choice** (STARK uses ``u_j = j / W``, cell corners): ``u_j = (j + 0.5) / W``, the cell centres, so that a
uniform distribution gives the crop centre. Output: ``pred_boxes`` as a normalised ``cx, cy, w, h`` box of the
search crop (from ``x1, y1, x2, y2``), ``corner_boxes`` the ``x1, y1, x2, y2`` form, and ``corner_score`` the peak
probability of the two maps (their geometric mean: a confidence for the tracker's output, STARK reports none).
"""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from trackers.boxes import xyxy_to_cxcywh
from trackers.heads.center import conv_tower

__all__ = ["CornerHead", "soft_argmax"]


def soft_argmax(score: torch.Tensor) -> torch.Tensor:
    """Expected ``(x, y)`` (B×2, in [0, 1]) of the distribution ``softmax`` over the cells of ``score``
    (B×1×H×W), with cell ``(i, j)`` at ``((j + 0.5) / W, (i + 0.5) / H)``."""
    b, _, h, w = score.shape
    prob = torch.softmax(score.flatten(1).float(), dim=1).view(b, h, w)
    ux = (torch.arange(w, device=score.device, dtype=prob.dtype) + 0.5) / w
    uy = (torch.arange(h, device=score.device, dtype=prob.dtype) + 0.5) / h
    return torch.stack([(prob.sum(1) * ux).sum(1), (prob.sum(2) * uy).sum(1)], dim=1)


class CornerHead(nn.Module):
    """Top-left / bottom-right corner towers and their soft-argmax (module docstring)."""

    def __init__(self, in_channels: int, channels: int = 256):
        super().__init__()
        self.tl = conv_tower(in_channels, channels, 1)
        self.br = conv_tower(in_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        tl, br = self.tl(x), self.br(x)
        boxes = torch.cat([soft_argmax(tl), soft_argmax(br)], dim=1)
        peak = (torch.softmax(tl.flatten(1).float(), 1).amax(1) * torch.softmax(br.flatten(1).float(), 1).amax(1))
        return {"pred_boxes": xyxy_to_cxcywh(boxes), "corner_boxes": boxes, "corner_score": peak.sqrt(),
                "tl_map": tl, "br_map": br}
