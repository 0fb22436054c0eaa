"""What a network's first layer expects of its input pixels: one home for the input formats and the ImageNet
statistics (the VLT supernet, the ResNet-50 and the ViT of the trackers all take RGB crops in 0..255).

Formats (``input_format``):

``imagenet_rgb``
    ``(x / 255 - mean) / std`` per channel with the ImageNet mean and std (torchvision / timm weights, and a network
    trained from scratch here).
``spos_bgr``
    What the official SPOS ImageNet supernet was trained on (megvii SinglePathOneShot: OpenCV BGR images converted
    to float without scaling or normalisation): the channels reversed to BGR, values 0..255 unchanged.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from asearch.errors import ConfigError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "INPUT_FORMATS", "PixelNormalise", "check_input_format"]

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)
INPUT_FORMATS: Tuple[str, ...] = ("imagenet_rgb", "spos_bgr")


def check_input_format(value: str, key: str = "input_format") -> str:
    """``value`` if it is one of :data:`INPUT_FORMATS`, else :class:`~asearch.errors.ConfigError` naming the config
    key ``key``."""
    if value not in INPUT_FORMATS:
        raise ConfigError(f"config key '{key}' must be one of {', '.join(INPUT_FORMATS)}, got {value!r}")
    return value


class PixelNormalise(nn.Module):
    """B×3×H×W RGB 0..255 -> the network's input in ``input_format`` (module docstring). No parameters; the
    statistics are non-persistent buffers (no state-dict keys)."""

    def __init__(self, input_format: str = "imagenet_rgb") -> None:
        super().__init__()
        self.input_format = check_input_format(input_format)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)

    def extra_repr(self) -> str:
        return f"input_format={self.input_format!r}"

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"images must be B×3×H×W (RGB, 0..255), got shape {tuple(image.shape)}")
        if self.input_format == "spos_bgr":
            return image.flip(1)
        if image.is_contiguous() or not image.is_contiguous(memory_format=torch.channels_last):
            return (image - self.mean) / self.std
        # channels-last: the same arithmetic on B·H rows of W·3 values with the mean and std tiled along a row
        # (broadcasting over an innermost dimension of 3 runs ~5x slower on CPU)
        b, _, h, w = image.shape
        rows = image.permute(0, 2, 3, 1).reshape(b * h, w * 3)
        out = (rows - self.mean.reshape(3).repeat(w)) / self.std.reshape(3).repeat(w)
        return out.view(b, h, w, 3).permute(0, 3, 1, 2)
