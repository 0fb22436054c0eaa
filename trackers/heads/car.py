"""SiamCAR's head (Guo et al., CVPR 2020): depthwise cross-correlation per stage, concatenation, a 1x1 reduction and
the CAR towers (classification + centerness on one tower, ltrb regression on the other).

Score-map locations map to search-crop pixels by :func:`location_offset` and :func:`score_locations`; the loss's
label assignment and the tracker's decoding both use these two functions.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from asearch.errors import ConfigError
from trackers.necks import center_crop_start, feature_size

__all__ = ["xcorr_depthwise", "location_offset", "score_size", "score_locations", "CARHead", "SiamCARHead"]


def xcorr_depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise cross-correlation: search ``B×C×H×W`` with template kernel ``B×C×k×k`` per sample and channel."""
    b, c = kernel.shape[:2]
    out = F.conv2d(x.reshape(1, b * c, *x.shape[2:]), kernel.reshape(b * c, 1, *kernel.shape[2:]), groups=b * c)
    return out.reshape(b, c, *out.shape[2:])


def location_offset(template_size: int, stride: int = 8, center_size: int = 7, num_downsamples: int = 3) -> float:
    """Search-crop pixel of score-map location 0: ``(T - 1) / 2 - stride * c0``.

    Derivation (geometry of :mod:`trackers.necks`): the template map has ``n_z = feature_size(T)`` cells, the
    kernel is its centre window starting at cell ``c0 = (n_z - k) // 2``. Output ``i`` correlates search cells
    ``i .. i + k - 1`` with kernel cells ``c0 .. c0 + k - 1``, so search cell ``i + j`` faces template cell ``c0 + j``:
    a shift of ``stride * (i - c0)`` pixels between the two crops. The target is at the template crop's centre
    ``(T - 1) / 2``, hence at search pixel ``(T - 1) / 2 + stride * (i - c0)``. Example: T = 127, k = 7: n_z = 16,
    c0 = 4, offset = 63 - 32 = 31; with a 255 search crop (32 cells, 26 outputs) locations run 31, 39, ..., 231 and
    location 12 is the crop centre 127 (zero motion). SiamCAR's code uses 32. The search size does not enter.
    """
    n_z = feature_size(template_size, num_downsamples)
    k = n_z if center_size <= 0 else min(center_size, n_z)
    return (template_size - 1) / 2.0 - stride * center_crop_start(n_z, k)


def score_size(template_size: int, search_size: int, center_size: int = 7, num_downsamples: int = 3) -> int:
    """Side of the score map: search cells minus kernel cells plus one (127/255 -> 26, 64/128 -> 10)."""
    n_z = feature_size(template_size, num_downsamples)
    k = n_z if center_size <= 0 else min(center_size, n_z)
    return feature_size(search_size, num_downsamples) - k + 1


def score_locations(size: int, stride: float, offset: float, device: Optional[torch.device] = None) -> torch.Tensor:
    """``size*size × 2`` search-crop pixel ``(x, y)`` of each location, row-major (index ``r * size + c``)."""
    coords = offset + stride * torch.arange(size, dtype=torch.float32, device=device)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


def _tower(channels: int, num_convs: int, gn_groups: int) -> nn.Sequential:
    layers: List[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(gn_groups, channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class CARHead(nn.Module):
    """The CAR towers: ``num_convs`` × (conv3x3 + GroupNorm + ReLU) per tower, then the three predictions.

    Outputs per location: ``cls`` (``num_classes`` logits, SiamCAR: 2, background/target), ``cen`` (1 centerness
    logit, from the classification tower) and ``loc`` (``l, t, r, b`` distances in search-crop pixels, positive by
    ``exp`` (SiamCAR) or ``relu(x) * stride``). Initialisation as the official CAR head (SiamCAR's
    ``pysot/models/head/car_head.py``, from FCOS): conv weights N(0, 0.01), biases 0, then the bias of EVERY
    classification output channel (background and target alike: it sets the whole ``cls_logits.bias``) to
    ``-log((1 - p) / p)`` with prior ``p = prior_prob`` (0.01, ``cfg.TRAIN.PRIOR_PROB``). With a 2-class softmax
    equal biases start both classes at probability 1/2.
    """

    def __init__(self, channels: int, num_convs: int = 4, num_classes: int = 2, gn_groups: int = 32,
                 prior_prob: float = 0.01, reg_activation: str = "exp", stride: int = 8):
        super().__init__()
        if channels % gn_groups:
            raise ConfigError(f"head.gn_groups ({gn_groups}) must divide the neck channels ({channels})")
        if reg_activation not in ("exp", "relu"):
            raise ConfigError(f"head.reg_activation must be 'exp' or 'relu', got {reg_activation!r}")
        self.reg_activation = reg_activation
        self.stride = stride
        self.cls_tower = _tower(channels, num_convs, gn_groups)
        self.bbox_tower = _tower(channels, num_convs, gn_groups)
        self.cls_logits = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.centerness = nn.Conv2d(channels, 1, 3, padding=1)
        self.bbox_pred = nn.Conv2d(channels, 4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.constant_(m.bias, 0.0)
        if not 0.0 < prior_prob < 1.0:
            raise ConfigError(f"head.prior_prob must be in (0, 1), got {prior_prob}")
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``x`` B×C×M×M -> ``{'cls': B×K×M×M, 'cen': B×1×M×M, 'loc': B×4×M×M}``."""
        c = self.cls_tower(x)
        raw = self.bbox_pred(self.bbox_tower(x))
        loc = torch.exp(raw) if self.reg_activation == "exp" else F.relu(raw) * self.stride
        return {"cls": self.cls_logits(c), "cen": self.centerness(c), "loc": loc}


class SiamCARHead(nn.Module):
    """Depthwise correlation of each stage's (template kernel, search map), concatenated, reduced by a 1x1 conv to
    ``channels`` and fed to :class:`CARHead` (SiamCAR: 3 stages × 256 -> 256)."""

    def __init__(self, num_stages: int, channels: int = 256, num_convs: int = 4, num_classes: int = 2,
                 gn_groups: int = 32, prior_prob: float = 0.01, reg_activation: str = "exp", stride: int = 8):
        super().__init__()
        self.num_stages = int(num_stages)
        self.down = nn.Conv2d(self.num_stages * channels, channels, 1)
        self.car = CARHead(channels, num_convs, num_classes, gn_groups, prior_prob, reg_activation, stride)

    def forward(self, kernels: Sequence[torch.Tensor], search: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Kernels and search maps per stage (same order) -> the CAR predictions."""
        if len(kernels) != self.num_stages or len(search) != self.num_stages:
            raise ValueError(f"SiamCARHead expects {self.num_stages} stages, got {len(kernels)} kernels and "
                             f"{len(search)} search maps")
        corr = torch.cat([xcorr_depthwise(x, z) for z, x in zip(kernels, search)], dim=1)
        return self.car(self.down(corr))
