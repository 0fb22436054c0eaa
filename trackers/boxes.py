"""Box operations on torch tensors (last axis = 4 coordinates), shared by the trackers' losses and decoders.

Formats: ``xyxy`` = ``x1, y1, x2, y2``; ``cxcywh`` = centre and size. IoUs here are element-wise (box ``i`` of ``a``
with box ``i`` of ``b``), which is what per-location regression losses need.
"""
from __future__ import annotations

from typing import Tuple

import torch

__all__ = ["cxcywh_to_xyxy", "xyxy_to_cxcywh", "box_iou_elementwise", "generalized_box_iou_elementwise"]


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``cx, cy, w, h`` -> ``x1, y1, x2, y2``."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``x1, y1, x2, y2`` -> ``cx, cy, w, h``."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1], dim=-1)


def box_iou_elementwise(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> Tuple[torch.Tensor, torch.Tensor]:
    """IoU and union area of ``xyxy`` boxes ``a[i]`` and ``b[i]`` (same shape ``...×4``); degenerate boxes count as
    zero area."""
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a + area_b - inter
    return inter / union.clamp(min=eps), union


def generalized_box_iou_elementwise(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Generalized IoU (Rezatofighi et al., CVPR 2019): ``IoU - (|C| - |A ∪ B|) / |C|`` with ``C`` the smallest box
    enclosing both; element-wise over ``xyxy`` boxes, values in ``[-1, 1]``."""
    iou, union = box_iou_elementwise(a, b, eps)
    lt = torch.minimum(a[..., :2], b[..., :2])
    rb = torch.maximum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    enclosing = wh[..., 0] * wh[..., 1]
    return iou - (enclosing - union) / enclosing.clamp(min=eps)
