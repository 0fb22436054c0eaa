"""ResNet-50 with SiamCAR's dilated layer3/layer4 (total stride 8 for layers 2-4), optionally narrowed.

Layout (torchvision key names, so an ImageNet ``resnet50`` state dict loads as is): ``conv1`` 7x7/2 (padding 3) +
``bn1`` + ReLU + 3x3/2 max pool (padding 1), then bottleneck layers of 3/4/6/3 blocks with widths 64/128/256/512
(×4 expansion): ``layer1`` stride 1, ``layer2`` stride 2, ``layer3`` stride 1 dilation 2, ``layer4`` stride 1
dilation 4 (SiamCAR / SiamRPN++). **Choice**: every block of a dilated layer uses that layer's dilation (padding =
dilation) and the projection shortcut stays a 1x1 conv, which keeps the torchvision shapes; the stride sits in the
3x3 conv (torchvision v1.5). All convolutions are "same"-padded, so the geometry of :mod:`trackers.necks` holds (127
-> 16x16, 255 -> 32x32). ``width_mult`` scales every width (tiny test configs use 0.25).

Inputs are float RGB 0..255 ``B×3×H×W``, normalised inside with the ImageNet mean/std.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Union

import torch
from torch import nn

from asearch.errors import CheckpointError, ModelNotFoundError
from asearch.io import load_torch
from supernets.pixels import PixelNormalise

__all__ = ["Bottleneck", "ResNet", "resnet50"]



class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 (×4) with an identity or 1x1 projection shortcut."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class ResNet(nn.Module):
    """Bottleneck ResNet returning the outputs of ``layer1`` .. ``layer4`` (strides 4, 8, 8, 8).

    Args:
        layers: blocks per layer (ResNet-50: 3, 4, 6, 3); fewer entries build only the first layers (TransT cuts
            after ``layer3``: ``(3, 4, 6)``), and :meth:`forward` then returns only their outputs.
        width_mult: multiplier of every width (at least 8 channels per 3x3 conv).
        dilations: dilation of layer3 and layer4 (SiamCAR: 2, 4).
    """

    def __init__(self, layers: Sequence[int] = (3, 4, 6, 3), width_mult: float = 1.0,
                 dilations: Sequence[int] = (2, 4)):
        super().__init__()
        widths = [max(8, int(round(w * width_mult))) for w in (64, 128, 256, 512)]
        stem = max(8, int(round(64 * width_mult)))
        self.pixels = PixelNormalise("imagenet_rgb")
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem
        specs = [(1, 1), (2, 1), (1, int(dilations[0])), (1, int(dilations[1]))]
        for i, (n, width, (stride, dil)) in enumerate(zip(layers, widths, specs)):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(inplanes, width, stride if j == 0 else 1, dil))
                inplanes = width * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_layers = min(len(layers), 4)
        self.channels: List[int] = [w * Bottleneck.expansion for w in widths[:self.num_layers]]
        self.stride = 8

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """RGB 0..255 ``B×3×H×W`` -> ``[layer1, layer2, layer3, layer4]`` outputs (the built layers)."""
        x = self.pixels(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i in range(self.num_layers):
            x = getattr(self, f"layer{i + 1}")(x)
            outs.append(x)
        return outs

    def load_pretrained(self, path: Union[str, Path]) -> Dict[str, List[str]]:
        """Load an ImageNet state dict (torchvision names; ``fc.*`` skipped; ``module.`` prefixes stripped).

        Raises :class:`ModelNotFoundError` when the file is missing and :class:`CheckpointError` naming the first
        key whose shape differs (e.g. a narrowed ResNet) or the first parameter the file lacks. Returns
        ``{'loaded': [...], 'skipped': [...]}``.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(
                f"pretrained ResNet-50 weights not found: {path}. Put an ImageNet ResNet-50 state dict (torchvision "
                "key names, e.g. the file torchvision saves as resnet50-*.pth) there, or set model.resnet.pretrained "
                "to its path (null trains from scratch). Nothing is downloaded.")
        data = load_torch(path)
        for key in ("state_dict", "model"):
            if isinstance(data, dict) and isinstance(data.get(key), dict):
                data = data[key]
        data = {k[len("module."):] if k.startswith("module.") else k: v for k, v in data.items()}
        own = self.state_dict()
        loaded, skipped = [], []
        new_state = {}
        for key, value in data.items():
            if key not in own:
                skipped.append(key)
                continue
            if tuple(value.shape) != tuple(own[key].shape):
                raise CheckpointError(f"{path}: key '{key}' has shape {tuple(value.shape)} in the file but "
                                      f"{tuple(own[key].shape)} in the ResNet (width_mult must be 1.0 for ImageNet "
                                      "weights)")
            new_state[key] = value
            loaded.append(key)
        missing = [k for k in own if k not in new_state and not k.endswith("num_batches_tracked")]
        if missing:
            raise CheckpointError(f"{path}: key '{missing[0]}' of the ResNet is missing from the file "
                                  f"({len(missing)} missing in all)")
        self.load_state_dict(new_state, strict=False)
        from trackers.init_report import note_init

        note_init(self, "ImageNet ResNet-50 weights", path, len(loaded))
        return {"loaded": loaded, "skipped": skipped}


def resnet50(width_mult: float = 1.0, pretrained: Union[str, Path, None] = None, num_layers: int = 4) -> ResNet:
    """SiamCAR's ResNet-50 (dilated layer3/4); ``pretrained`` is a local ImageNet state-dict file or ``None``;
    ``num_layers = 3`` cuts after ``layer3`` (TransT; the file's ``layer4`` keys are then skipped)."""
    net = ResNet((3, 4, 6, 3)[:num_layers], width_mult=width_mult)
    if pretrained:
        net.load_pretrained(pretrained)
    return net
