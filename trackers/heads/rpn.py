"""SiamRPN++'s head (Li et al., CVPR 2019): anchors, the anchor box coding, the depthwise-correlation RPN per backbone
level and the weighted fusion of the levels.

Facts from the released code (pysot, ``pysot/utils/anchor.py``, ``pysot/models/head/rpn.py``,
``pysot/core/config.py``):

* **Anchors** (``Anchors.generate_anchors``): ``K = len(ratios) · len(scales)`` shapes per location, stride 8,
  ratios ``0.33, 0.5, 1, 2, 3`` (``h / w``), scale 8. For ratio ``r``: ``ws = int(sqrt(stride² / r))``,
  ``hs = int(ws · r)``, then ``w = ws · s``, ``h = hs · s`` (integer truncation as released): 104×32, 88×40, 64×64,
  40×80, 32×96 for the defaults.
* **Anchor positions**: every score-map location carries the ``K`` shapes centred on its search-crop pixel. pysot
  places location 0 at ``search_size // 2 - (M // 2) · stride`` (31 for 255 / M = 25); here the pixel comes from the
  toolkit's geometry (:func:`trackers.heads.car.location_offset`: 31 for 127/255 too; the zero-motion location is
  the crop centre). The RPN's two 3x3 valid convolutions (template and search) shrink both maps by one cell per side
  and so leave that mapping unchanged: the score map is :func:`~trackers.heads.car.score_size` wide (26 for 127/255
  with the toolkit's 16x16 / 32x32 maps; pysot's 15x15 / 31x31 give 25).
* **Box coding** (``AnchorTarget``, ``SiamRPNTracker._convert_bbox``): ``dx = (x - x_a) / w_a``,
  ``dy = (y - y_a) / h_a``, ``dw = log(w / w_a)``, ``dh = log(h / h_a)``; decoding inverts it.
* **Output layout** (``ModelBuilder.log_softmax``, ``weight_l1_loss``): ``cls`` B×2K×M×M is viewed as B×2×K×M×M
  (class-major) and ``loc`` B×4K×M×M as B×4×K×M×M; anchor index ``k · M² + row · M + col`` throughout this module.
* **DepthwiseXCorr**: template and search each through ``conv3x3 (no bias, no padding) + BN + ReLU`` to ``hidden``
  channels, depthwise correlation, then ``conv1x1 (no bias) + BN + ReLU + conv1x1`` to the output channels
  (2K for ``cls``, 4K for ``loc``); one for classification and one for regression per level (``DepthwiseRPN``).
* **MultiRPN** (``weighted: true`` in ``siamrpn_r50_l234_dwxcorr``): one DepthwiseRPN per level (layers 2-4), fused
  as ``Σ_l softmax(w_cls)_l · cls_l`` and ``Σ_l softmax(w_loc)_l · loc_l`` with learnable weights initialised to 1;
  ``weighted: false`` averages the levels.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from asearch.errors import ConfigError
from trackers.heads.car import score_locations, xcorr_depthwise

__all__ = ["RPN_RATIOS", "RPN_SCALES", "anchor_shapes", "generate_anchors", "encode_boxes", "decode_boxes",
           "anchor_logits", "anchor_deltas", "DepthwiseXCorr", "DepthwiseRPN", "MultiRPN"]

#: anchor aspect ratios ``h / w`` and scales of SiamRPN++ (pysot ``cfg.ANCHOR``)
RPN_RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)
RPN_SCALES = (8.0,)


def anchor_shapes(stride: int = 8, ratios: Sequence[float] = RPN_RATIOS, scales: Sequence[float] = RPN_SCALES
                  ) -> torch.Tensor:
    """``K×2`` anchor ``(w, h)``, ratio-major then scale (pysot's order and integer truncation, module docstring)."""
    if not ratios or not scales or any(r <= 0 for r in ratios) or any(s <= 0 for s in scales):
        raise ConfigError(f"anchor ratios and scales must be non-empty and positive, got {list(ratios)}, "
                          f"{list(scales)}")
    area = float(stride * stride)
    shapes = []
    for r in ratios:
        ws = int(math.sqrt(area / r))
        hs = int(ws * r)
        for s in scales:
            shapes.append((ws * s, hs * s))
    return torch.tensor(shapes, dtype=torch.float32)


def generate_anchors(size: int, stride: int, offset: float, ratios: Sequence[float] = RPN_RATIOS,
                     scales: Sequence[float] = RPN_SCALES, device: Optional[torch.device] = None) -> torch.Tensor:
    """``(K·size²)×4`` anchors ``cx, cy, w, h`` in search-crop pixels, index ``k · size² + row · size + col``;
    location ``(row, col)`` is centred at ``offset + stride · (col, row)`` (:func:`score_locations`)."""
    shapes = anchor_shapes(stride, ratios, scales).to(device)                  # K×2
    centres = score_locations(size, stride, offset, device)                     # N×2
    k, n = shapes.shape[0], centres.shape[0]
    return torch.cat([centres.unsqueeze(0).expand(k, n, 2), shapes.unsqueeze(1).expand(k, n, 2)], dim=2
                     ).reshape(k * n, 4)


def encode_boxes(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Deltas ``(dx, dy, log dw, log dh)`` of ``cxcywh`` ``boxes`` against ``cxcywh`` ``anchors`` (broadcast)."""
    return torch.stack([(boxes[..., 0] - anchors[..., 0]) / anchors[..., 2],
                        (boxes[..., 1] - anchors[..., 1]) / anchors[..., 3],
                        torch.log(boxes[..., 2] / anchors[..., 2]),
                        torch.log(boxes[..., 3] / anchors[..., 3])], dim=-1)


def decode_boxes(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`encode_boxes`: ``cxcywh`` boxes from deltas and ``cxcywh`` anchors (broadcast)."""
    return torch.stack([deltas[..., 0] * anchors[..., 2] + anchors[..., 0],
                        deltas[..., 1] * anchors[..., 3] + anchors[..., 1],
                        torch.exp(deltas[..., 2]) * anchors[..., 2],
                        torch.exp(deltas[..., 3]) * anchors[..., 3]], dim=-1)


def anchor_logits(cls: torch.Tensor, anchor_num: int) -> torch.Tensor:
    """``cls`` B×2K×M×M -> B×2×(K·M·M): class logits per anchor in this module's anchor order."""
    b, c, h, w = cls.shape
    if c != 2 * anchor_num:
        raise ValueError(f"cls has {c} channels, expected 2 x {anchor_num} anchors")
    return cls.reshape(b, 2, anchor_num * h * w)


def anchor_deltas(loc: torch.Tensor, anchor_num: int) -> torch.Tensor:
    """``loc`` B×4K×M×M -> B×(K·M·M)×4: the predicted deltas per anchor in this module's anchor order."""
    b, c, h, w = loc.shape
    if c != 4 * anchor_num:
        raise ValueError(f"loc has {c} channels, expected 4 x {anchor_num} anchors")
    return loc.reshape(b, 4, anchor_num * h * w).transpose(1, 2)


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DepthwiseXCorr(nn.Module):
    """Template/search 3x3 convs, depthwise correlation and the 1x1 output head (module docstring)."""

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(_conv_bn_relu(hidden, hidden, 1), nn.Conv2d(hidden, out_channels, 1))

    def forward(self, kernel: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """Template map B×C×k×k and search map B×C×S×S -> B×out×(S-k+1)×(S-k+1)."""
        return self.head(xcorr_depthwise(self.conv_search(search), self.conv_kernel(kernel)))


class DepthwiseRPN(nn.Module):
    """One level's RPN: a :class:`DepthwiseXCorr` for ``2K`` class logits and one for ``4K`` deltas."""

    def __init__(self, anchor_num: int, in_channels: int, hidden: Optional[int] = None):
        super().__init__()
        hidden = in_channels if hidden is None else hidden
        self.cls = DepthwiseXCorr(in_channels, hidden, 2 * anchor_num)
        self.loc = DepthwiseXCorr(in_channels, hidden, 4 * anchor_num)

    def forward(self, kernel: torch.Tensor, search: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{'cls': B×2K×M×M, 'loc': B×4K×M×M}``."""
        return {"cls": self.cls(kernel, search), "loc": self.loc(kernel, search)}


class MultiRPN(nn.Module):
    """SiamRPN++'s multi-level head: one :class:`DepthwiseRPN` per level, fused by softmax-normalised learnable
    weights (``weighted``) or averaged.

    Args:
        num_levels: backbone levels fed in (SiamRPN++: 3, layers 2-4).
        channels: neck channels of every level (256).
        anchor_num: anchors per location (5).
        weighted: learnable fusion weights (``siamrpn_r50_l234_dwxcorr``: true).
    """

    def __init__(self, num_levels: int, channels: int = 256, anchor_num: int = 5, weighted: bool = True):
        super().__init__()
        if num_levels < 1 or anchor_num < 1:
            raise ConfigError(f"MultiRPN needs at least one level and one anchor, got {num_levels}, {anchor_num}")
        self.num_levels = int(num_levels)
        self.anchor_num = int(anchor_num)
        self.weighted = bool(weighted)
        self.rpns = nn.ModuleList(DepthwiseRPN(self.anchor_num, channels) for _ in range(self.num_levels))
        if self.weighted:
            self.cls_weight = nn.Parameter(torch.ones(self.num_levels))
            self.loc_weight = nn.Parameter(torch.ones(self.num_levels))

    def level_weights(self) -> Dict[str, torch.Tensor]:
        """The fusion weights of ``cls`` and ``loc`` (softmax of the parameters, or uniform)."""
        if self.weighted:
            return {"cls": F.softmax(self.cls_weight, 0), "loc": F.softmax(self.loc_weight, 0)}
        device = self.rpns[0].cls.head[-1].weight.device
        uniform = torch.full((self.num_levels,), 1.0 / self.num_levels, device=device)
        return {"cls": uniform, "loc": uniform}

    def forward(self, kernels: Sequence[torch.Tensor], search: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Template kernels and search maps per level (same order) -> fused ``{'cls', 'loc'}``."""
        if len(kernels) != self.num_levels or len(search) != self.num_levels:
            raise ValueError(f"MultiRPN expects {self.num_levels} levels, got {len(kernels)} kernels and "
                             f"{len(search)} search maps")
        outs = [rpn(z, x) for rpn, z, x in zip(self.rpns, kernels, search)]
        weights = self.level_weights()
        return {key: sum(weights[key][i] * o[key] for i, o in enumerate(outs)) for key in ("cls", "loc")}

