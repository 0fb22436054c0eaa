"""OSTrack's center head (Ye et al., ECCV 2022; the CenterNet-style box head of OSTrack, PJVLT and VLT_OST).

Three conv towers on the search map (B×C×H×W, H = W = search_size / patch_size): each is four 3×3 conv + BN + ReLU
layers with widths ``channels, channels/2, channels/4, channels/8`` (OSTrack: 256, 128, 64, 32) and a 1×1 output
conv:

* ``ctr``: 1 channel, ``score_map = clamp(sigmoid(·), 1e-4, 1 - 1e-4)``, the target-centre heat map;
* ``size``: 2 channels, ``size_map = sigmoid(·)``: box width and height as fractions of the search crop;
* ``offset``: 2 channels, raw: sub-cell offset of the centre (in cells).

Box of a map (:func:`decode_boxes`): at the arg-max cell ``(i_y, i_x)`` of a score map,
``cx = (i_x + offset_x) / W``, ``cy = (i_y + offset_y) / H``, ``w, h = size_map`` there — a normalised
``cx, cy, w, h`` box of the search crop. Training uses the box at the arg-max of the predicted score map (its
gradient reaches the size and offset maps at that cell), as OSTrack.
"""
from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from asearch.errors import ConfigError

__all__ = ["CenterHead", "decode_boxes", "conv_tower"]


def conv_tower(in_channels: int, channels: int, out_channels: int) -> nn.Sequential:
    """Four 3×3 Conv-BN-ReLU layers of widths ``channels, /2, /4, /8`` and a 1×1 output conv (OSTrack's towers,
    STARK's corner branches)."""
    widths = [in_channels, channels, channels // 2, channels // 4, channels // 8]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 3, 1, 1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(widths[-1], out_channels, 1))
    return nn.Sequential(*layers)


def decode_boxes(score_map: torch.Tensor, size_map: torch.Tensor, offset_map: torch.Tensor,
                 return_score: bool = False):
    """Normalised ``cx, cy, w, h`` boxes (B×4) at the arg-max of ``score_map`` (B×1×H×W); with ``return_score``
    also the max score (B)."""
    b, _, h, w = score_map.shape
    best = score_map.flatten(1).max(dim=1)
    idx = best.indices
    iy = torch.div(idx, w, rounding_mode="floor")
    ix = idx % w
    gather = lambda m: m.flatten(2).gather(2, idx.view(b, 1, 1).expand(-1, m.shape[1], -1)).squeeze(2)  # noqa: E731
    size = gather(size_map)
    offset = gather(offset_map)
    boxes = torch.stack([(ix.to(size.dtype) + offset[:, 0]) / w, (iy.to(size.dtype) + offset[:, 1]) / h,
                         size[:, 0], size[:, 1]], dim=1)
    return (boxes, best.values) if return_score else boxes


class CenterHead(nn.Module):
    """OSTrack's center head (module docstring); ``channels`` must be divisible by 8."""

    def __init__(self, in_channels: int = 768, channels: int = 256):
        super().__init__()
        if channels % 8 or channels < 8:
            raise ConfigError(f"center head: channels must be a positive multiple of 8, got {channels}")
        self.in_channels, self.channels = in_channels, channels
        self.ctr = conv_tower(in_channels, channels, 1)
        self.size = conv_tower(in_channels, channels, 2)
        self.offset = conv_tower(in_channels, channels, 2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, feature: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Search map B×C×H×W -> ``score_map`` (B×1×H×W), ``size_map``, ``offset_map`` (B×2×H×W) and
        ``pred_boxes`` (B×4 normalised ``cx, cy, w, h`` at the arg-max of the score map)."""
        # float32 maps: 1 - 1e-4 is not representable near 1 in fp16/bf16 (mixed precision), the focal loss needs it
        score = torch.sigmoid(self.ctr(feature).float()).clamp(1e-4, 1.0 - 1e-4)
        size = torch.sigmoid(self.size(feature).float())
        offset = self.offset(feature).float()
        return {"score_map": score, "size_map": size, "offset_map": offset,
                "pred_boxes": decode_boxes(score, size, offset)}
