"""SiamCAR's neck: a 1x1 convolution + BatchNorm per used backbone stage, and the centre crop of the template map.

Geometry (documented once, used by the model, the losses and the tracker). Every backbone of this toolkit is a
chain of "same"-padded convolutions (kernel k, padding k // 2) whose strides are 2 (three times) or 1, so a map of
total stride ``s`` has ``ceil(ceil(ceil(n / 2) / 2) / 2)`` cells for an input of ``n`` pixels and **cell j is centred
on input pixel s * j** (pixel-centre coordinates, pixel 0 is the first pixel). With a 127 template the map is 16x16;
SiamCAR correlates only its central 7x7 cells (they hold the target and little background), starting at cell
``(16 - 7) // 2 = 4`` (for 15x15 as in SiamCAR's own ResNet, also 4). See :func:`trackers.heads.car.location_offset`
for the resulting mapping of score-map locations to search-crop pixels.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import nn

__all__ = ["feature_size", "center_crop_start", "center_crop", "AdjustNeck"]


def feature_size(input_size: int, num_downsamples: int = 3) -> int:
    """Cells of a map after ``num_downsamples`` "same"-padded stride-2 layers: ``ceil(n / 2)`` applied repeatedly."""
    n = int(input_size)
    for _ in range(num_downsamples):
        n = int(math.ceil(n / 2))
    return n


def center_crop_start(map_size: int, crop_size: int) -> int:
    """First cell of the centred ``crop_size`` window of a ``map_size`` map (0 when no crop applies)."""
    if crop_size <= 0 or crop_size >= map_size:
        return 0
    return (map_size - crop_size) // 2


def center_crop(x: torch.Tensor, crop_size: int) -> torch.Tensor:
    """The centred ``crop_size`` x ``crop_size`` cells of a ``B×C×H×W`` map (unchanged when it is not larger)."""
    if crop_size <= 0:
        return x
    h, w = x.shape[-2:]
    top, left = center_crop_start(h, crop_size), center_crop_start(w, crop_size)
    return x[..., top:top + min(crop_size, h), left:left + min(crop_size, w)]


class AdjustNeck(nn.Module):
    """Per stage ``Conv2d(C_s, out_channels, 1, bias=False) + BatchNorm2d`` (SiamCAR's adjust layers).

    Args:
        in_channels: channel count of each used backbone stage.
        out_channels: channels after the neck (SiamCAR: 256; tiny configs e.g. 32).
        center_size: cells kept by the template's centre crop (SiamCAR: 7; 0 disables the crop).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256, center_size: int = 7):
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        self.out_channels = int(out_channels)
        self.center_size = int(center_size)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, self.out_channels, 1, bias=False), nn.BatchNorm2d(self.out_channels))
            for c in self.in_channels
        )

    def forward(self, feats: Sequence[torch.Tensor], crop: bool = False) -> List[torch.Tensor]:
        """Adjust each stage's map; ``crop=True`` (template) also takes the centre ``center_size`` window."""
        if len(feats) != len(self.layers):
            raise ValueError(f"AdjustNeck expects {len(self.layers)} stage maps, got {len(feats)}")
        out = [layer(f) for layer, f in zip(self.layers, feats)]
        if crop:
            out = [center_crop(f, self.center_size) for f in out]
        return out
