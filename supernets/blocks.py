"""SPOS choice blocks: ShuffleNetV2 (k3/k5/k7) and Shuffle-Xception, with the official parameter names.

Structure and names follow the official SPOS supernet so that its checkpoint loads key for key:

* ShuffleNetV2 block ``branch_main``: ``0`` 1×1 conv (inp→mid), ``1`` BN, ``2`` ReLU, ``3`` k×k depthwise conv
  (stride), ``4`` BN, ``5`` 1×1 conv (mid→oup−inp), ``6`` BN, ``7`` ReLU.
* Shuffle-Xception block ``branch_main``: three (3×3 depthwise conv, BN, 1×1 conv, BN, ReLU) groups at indices
  ``0-4``, ``5-9``, ``10-14``; the first depthwise conv carries the stride, widths inp→mid→mid→oup−inp.
* ``branch_proj`` (first block of a stage only): ``0`` k×k depthwise conv (stride), ``1`` BN, ``2`` 1×1 conv
  (inp→inp), ``3`` BN, ``4`` ReLU.

A block with a projection branch processes the whole input in both branches and concatenates; a block without
splits the input by channel shuffle (even channels pass through, odd channels go through ``branch_main``).
All BatchNorms are ``affine=False`` in the supernet (as in SPOS); ``affine=True`` is available for standalone nets.
For tracking (stride 8), the first blocks of stages 3-4 keep their projection branch with stride 1.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

__all__ = ["CHOICE_NAMES", "KERNEL_SIZES", "channel_shuffle", "to_channels_last", "ShuffleV2Block",
           "ShuffleXceptionBlock", "make_choice_block", "make_divisible"]

#: gene value -> block name (SPOS encoding)
CHOICE_NAMES: Tuple[str, ...] = ("shufflenet_k3", "shufflenet_k5", "shufflenet_k7", "shuffle_xception")
#: gene value -> depthwise kernel size (Xception uses 3×3 depthwise convs)
KERNEL_SIZES: Tuple[int, ...] = (3, 5, 7, 3)


def make_divisible(value: float, divisor: int = 4, minimum: int = 4) -> int:
    """Round a (width-multiplied) channel count to the nearest multiple of ``divisor`` (at least ``minimum``)."""
    return max(minimum, int(round(value / divisor)) * divisor)


def channel_shuffle(x: torch.Tensor, keep_layout: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split ``x`` (B×C×H×W, C divisible by 4) into its even and odd channels, as the official SPOS code does.

    ``keep_layout=False``: the official reshape-permute-reshape, which copies ``x`` into the NCHW order whatever its
    layout. ``keep_layout=True``: the same channels as strided views of ``x``, which keep its memory layout (for a
    model stored channels-last, :func:`to_channels_last`; the official split would copy a channels-last tensor and
    turn every later layer to NCHW). The values are the same; the convolutions that follow may round differently
    in the other layout.
    """
    if keep_layout:
        return x[:, 0::2], x[:, 1::2]
    b, c, h, w = x.shape
    x = x.reshape(b * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, -1, c // 2, h, w)
    return x[0], x[1]


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store ``model`` in the channels-last layout and have its choice blocks keep that layout through their
    channel split (``channel_shuffle(keep_layout=True)``); returns ``model``. On CPU, oneDNN runs the blocks'
    convolutions with few channels far faster in this layout (the search's ``fitness.channels_last``)."""
    model.to(memory_format=torch.channels_last)
    for m in model.modules():
        if isinstance(m, _ChoiceBlock):
            m.keep_layout = True
    return model


def _bn(channels: int, affine: bool) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=affine)


class _ChoiceBlock(nn.Module):
    """Common forward of both block types (projection branch or channel-shuffle split, then concatenation).
    ``keep_layout``: see :func:`channel_shuffle` (set by :func:`to_channels_last`)."""

    branch_main: nn.Sequential
    keep_layout: bool = False

    def __init__(self, inp: int, oup: int, mid: int, ksize: int, stride: int, project: bool, affine: bool) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if stride == 2 and not project:
            raise ValueError("a stride-2 block needs the projection branch")
        self.inp, self.oup, self.mid, self.ksize, self.stride, self.project = inp, oup, mid, ksize, stride, project
        self.branch_in = inp if project else inp // 2
        if oup - self.branch_in <= 0:
            raise ValueError(f"block output {oup} must exceed its pass-through width {self.branch_in}")

    def _add_projection(self, affine: bool) -> None:
        """Create ``branch_proj`` (after ``branch_main``, so the state-dict order matches the official one)."""
        if not self.project:
            self.branch_proj = None
            return
        inp, k = self.inp, self.ksize
        self.branch_proj = nn.Sequential(
            nn.Conv2d(inp, inp, k, self.stride, k // 2, groups=inp, bias=False),
            _bn(inp, affine),
            nn.Conv2d(inp, inp, 1, 1, 0, bias=False),
            _bn(inp, affine),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch_proj is not None:
            return torch.cat((self.branch_proj(x), self.branch_main(x)), 1)
        x_proj, x_main = channel_shuffle(x, self.keep_layout)
        return torch.cat((x_proj, self.branch_main(x_main)), 1)


class ShuffleV2Block(_ChoiceBlock):
    """ShuffleNetV2 unit with a k×k depthwise conv (choices 0, 1, 2 = k3, k5, k7)."""

    def __init__(self, inp: int, oup: int, mid: int, ksize: int, stride: int = 1, project: bool = False,
                 affine: bool = False) -> None:
        super().__init__(inp, oup, mid, ksize, stride, project, affine)
        cin, pad = self.branch_in, ksize // 2
        self.branch_main = nn.Sequential(
            nn.Conv2d(cin, mid, 1, 1, 0, bias=False),
            _bn(mid, affine),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, ksize, stride, pad, groups=mid, bias=False),
            _bn(mid, affine),
            nn.Conv2d(mid, oup - cin, 1, 1, 0, bias=False),
            _bn(oup - cin, affine),
            nn.ReLU(inplace=True),
        )
        self._add_projection(affine)


class ShuffleXceptionBlock(_ChoiceBlock):
    """Shuffle-Xception unit: three 3×3 depthwise + 1×1 groups (choice 3)."""

    def __init__(self, inp: int, oup: int, mid: int, ksize: int = 3, stride: int = 1, project: bool = False,
                 affine: bool = False) -> None:
        super().__init__(inp, oup, mid, ksize, stride, project, affine)
        cin, pad = self.branch_in, ksize // 2
        layers: List[nn.Module] = []
        widths = [(cin, mid, stride), (mid, mid, 1), (mid, oup - cin, 1)]
        for c_in, c_out, s in widths:
            layers += [
                nn.Conv2d(c_in, c_in, ksize, s, pad, groups=c_in, bias=False),
                _bn(c_in, affine),
                nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
                _bn(c_out, affine),
                nn.ReLU(inplace=True),
            ]
        self.branch_main = nn.Sequential(*layers)
        self._add_projection(affine)


def make_choice_block(choice: int, inp: int, oup: int, stride: int = 1, project: bool = False,
                      affine: bool = False) -> _ChoiceBlock:
    """Build the block for gene value ``choice`` (0..3) with SPOS widths (``mid = oup // 2``)."""
    if choice not in (0, 1, 2, 3):
        raise ValueError(f"choice must be 0..3, got {choice}")
    mid = oup // 2
    if choice == 3:
        return ShuffleXceptionBlock(inp, oup, mid, 3, stride, project, affine)
    return ShuffleV2Block(inp, oup, mid, KERNEL_SIZES[choice], stride, project, affine)
