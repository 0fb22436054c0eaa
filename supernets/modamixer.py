"""Searchable layers and the ModaMixer (paper 000 §3.2, Eq. 1).

:class:`ChoiceLayer` is one searchable layer: its candidate blocks are kept under the keys ``"0"``..``"3"`` (the SPOS
gene values), so that a supernet layer (all four choices) and a subnet layer (only the chosen ones) have the same
parameter names (``features.{layer}.{choice}.branch_main...``, as in the official SPOS checkpoint).

:class:`ModaMixer` fuses a language vector into a visual feature map (Eq. 1)::

    f_m = Block_mixer[g](Linear(f_l) ⊙ f_v) + Block_last(f_v)

``Linear`` projects the language vector (B×d) to the stage's C channels; the product reweights every spatial
position of ``f_v`` (B×C×H×W); ``Block_mixer`` is the searched mixer block (stride 1, no projection); ``Block_last``
is the stage's last backbone layer, which lives in the backbone (it is a backbone gene and loads from the SPOS
checkpoint), so the mixer receives its output.
"""
from __future__ import annotations

from typing import Iterable, Tuple

import torch
from torch import nn

from asearch.errors import ArchitectureError
from supernets.blocks import make_choice_block

__all__ = ["ChoiceLayer", "ModaMixer"]

ALL_CHOICES: Tuple[int, ...] = (0, 1, 2, 3)


class ChoiceLayer(nn.ModuleDict):
    """A searchable layer holding the blocks of ``choices`` (keys ``"0"``..``"3"``); ``forward(x, choice)``."""

    def __init__(self, inp: int, oup: int, stride: int = 1, project: bool = False, affine: bool = False,
                 choices: Iterable[int] = ALL_CHOICES) -> None:
        chosen = sorted({int(c) for c in choices})
        if not chosen:
            raise ValueError("a choice layer needs at least one choice")
        super().__init__({str(c): make_choice_block(c, inp, oup, stride, project, affine) for c in chosen})
        self.inp, self.oup, self.stride, self.project = inp, oup, stride, project

    @property
    def choices(self) -> Tuple[int, ...]:
        """The gene values this layer can run."""
        return tuple(int(k) for k in self.keys())

    def block(self, choice: int) -> nn.Module:
        """The block of gene value ``choice``; :class:`ArchitectureError` if this layer does not hold it."""
        key = str(int(choice))
        if key not in self:
            raise ArchitectureError(f"choice {choice} is not available in this layer (it holds {list(self.choices)})")
        return self[key]

    def forward(self, x: torch.Tensor, choice: int) -> torch.Tensor:  # type: ignore[override]
        """Run the block of gene value ``choice``."""
        return self.block(choice)(x)


class ModaMixer(nn.Module):
    """Language-vision mixer of one stage and one branch (Eq. 1): ``linear`` (d→C, bias) and the mixer ``blocks``."""

    def __init__(self, channels: int, language_dim: int, affine: bool = False,
                 choices: Iterable[int] = ALL_CHOICES) -> None:
        super().__init__()
        self.channels, self.language_dim = channels, language_dim
        self.linear = nn.Linear(language_dim, channels)
        self.blocks = ChoiceLayer(channels, channels, 1, False, affine, choices)

    def project(self, language: torch.Tensor) -> torch.Tensor:
        """``Linear(f_l)``: B×d language vectors -> B×C channel selectors (also e_l of Eq. 3)."""
        return self.linear(language)

    def forward(self, f_v: torch.Tensor, selector: torch.Tensor, last_out: torch.Tensor,
                choice: int) -> torch.Tensor:
        """Eq. 1: ``blocks[choice](selector ⊙ f_v) + last_out``.

        ``f_v``: B×C×H×W visual feature; ``selector``: B×C (usually :meth:`project` of the language vector, broadcast
        over H and W); ``last_out``: ``Block_last(f_v)`` computed by the backbone's last layer of the stage.
        """
        if selector.dim() != 2 or selector.shape[1] != f_v.shape[1]:
            raise ValueError(f"ModaMixer: selector must be B×{f_v.shape[1]}, got {tuple(selector.shape)}")
        mixed = selector[:, :, None, None] * f_v
        return self.blocks(mixed, choice) + last_out
