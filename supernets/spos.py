"""The SPOS ImageNet classification supernet (ShuffleNetV2 one-shot), laid out key for key like the official one.

Structure (224×224 input, 1000 classes): ``first_conv`` = Conv2d(3, 16, 3, 2, 1) + BN + ReLU; ``features[layer]``
(20 layers, stages of 4/4/8/4 with widths 64/160/320/640) is a ``ModuleList`` of the 4 choice blocks
(``features.{layer}.{choice}``), the first layer of every stage with stride 2 and a projection branch;
``conv_last`` = Conv2d(640, 1024, 1) + BN + ReLU; global average pooling; dropout 0.1; ``classifier`` =
Sequential(Linear(1024, 1000, bias=False)). All BatchNorms are ``affine=False`` (as in SPOS) unless ``affine=True``.
Its state dict has 1337 entries (335 parameter tensors) and 8,388,176 parameters, so the official
``checkpoint-*.pth.tar`` (after removing the ``module.`` prefix) loads with ``strict=True``.

The VLT tracking supernet reuses these blocks (stride 8, ModaMixers); this build exists to load, check and evaluate
the official SPOS weights and to reproduce the official size/FLOPs tables (:meth:`path_params`, :meth:`path_flops`).
"""
from __future__ import annotations

import operator
from typing import List, Optional, Sequence

import torch
from torch import nn

from asearch.errors import ArchitectureError
from search_spaces.cost import block_cost, conv_output_size, linear_cost, stem_cost
from supernets.blocks import make_choice_block

__all__ = ["SPOSClassificationSupernet", "SPOS_STAGE_REPEATS", "SPOS_STAGE_CHANNELS"]

SPOS_STAGE_REPEATS = (4, 4, 8, 4)
#: stem, four stages, last conv
SPOS_STAGE_CHANNELS = (16, 64, 160, 320, 640, 1024)


class SPOSClassificationSupernet(nn.Module):
    """SPOS ShuffleNetV2 one-shot supernet for classification; ``forward(x, arch)`` runs one path (20 genes)."""

    def __init__(self, num_classes: int = 1000, input_size: int = 224, affine: bool = False,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.input_size, self.affine = input_size, affine
        stem, *stages, last = SPOS_STAGE_CHANNELS
        self.first_conv = nn.Sequential(
            nn.Conv2d(3, stem, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem, affine=affine),
            nn.ReLU(inplace=True),
        )
        self.features = nn.ModuleList()
        # (inp, oup, stride, project) of each layer, in order
        self.layer_specs: List[tuple] = []
        c_in = stem
        for repeats, c_out in zip(SPOS_STAGE_REPEATS, stages):
            for i in range(repeats):
                spec = (c_in, c_out, 2, True) if i == 0 else (c_out, c_out, 1, False)
                self.layer_specs.append(spec)
                self.features.append(nn.ModuleList(
                    make_choice_block(g, spec[0], spec[1], spec[2], spec[3], affine) for g in range(4)))
            c_in = c_out
        self.conv_last = nn.Sequential(
            nn.Conv2d(c_in, last, 1, 1, 0, bias=False),
            nn.BatchNorm2d(last, affine=affine),
            nn.ReLU(inplace=True),
        )
        self.globalpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Sequential(nn.Linear(last, num_classes, bias=False))

    @property
    def num_layers(self) -> int:
        """Number of searchable layers (20)."""
        return len(self.features)

    def _check_arch(self, arch: Sequence[int]) -> List[int]:
        if len(arch) != self.num_layers:
            raise ArchitectureError(f"SPOS arch: expected {self.num_layers} genes, got {len(arch)}")
        out = []
        for i, g in enumerate(arch):
            try:
                value = operator.index(g)
            except TypeError:
                value = -1
            if isinstance(g, bool) or not 0 <= value < 4:
                raise ArchitectureError(f"SPOS arch: gene {i} has value {g!r}, expected 0..3")
            out.append(value)
        return out

    def forward(self, x: torch.Tensor, arch: Sequence[int]) -> torch.Tensor:
        """Logits of path ``arch`` (one choice 0..3 per layer) for images ``x`` (B×3×H×W)."""
        arch = self._check_arch(arch)
        x = self.first_conv(x)
        for layer, g in zip(self.features, arch):
            x = layer[g](x)
        x = self.globalpool(self.conv_last(x)).flatten(1)
        return self.classifier(self.dropout(x))

    # ----- size and cost of one path --------------------------------------------------------------------------------
    def shared_params(self) -> int:
        """Parameters outside the choice blocks (stem, conv_last, classifier): 1,679,792 for the official net."""
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("features."))

    def path_params(self, arch: Sequence[int]) -> int:
        """Parameters of the standalone net of path ``arch`` (shared + the chosen block of each layer)."""
        arch = self._check_arch(arch)
        chosen = sum(p.numel() for layer, g in zip(self.features, arch) for p in layer[g].parameters())
        return self.shared_params() + chosen

    def path_flops(self, arch: Sequence[int], input_size: Optional[int] = None) -> int:
        """MACs of Conv2d + Linear for path ``arch`` at ``input_size``² (default: the build's), batch 1.

        Equal to the official SPOS ``get_flops`` (e.g. all-0 path at 224: 295,842,496).
        """
        arch = self._check_arch(arch)
        size = self.input_size if input_size is None else int(input_size)
        stem, *_, last = SPOS_STAGE_CHANNELS
        _, macs, side = stem_cost(stem, size, affine=self.affine)
        for (inp, oup, stride, project), g in zip(self.layer_specs, arch):
            macs += block_cost(g, inp, oup, stride, project, side, self.affine)[1]
            side = conv_output_size(side, 3, stride, 1)
        c_in = self.layer_specs[-1][1]
        macs += side * side * c_in * last  # conv_last 1x1
        macs += linear_cost(last, self.classifier[0].out_features, bias=False)[1]
        return int(macs)
