"""Training actor of the SiamRPN++ family (SiamRPN++, VLT_RPN++): ``actor(batch, step) -> (loss, stats)``.

Batches, language handling (the ``language_mask`` of the contrastive loss included), the forward pass and the SPOS
path hooks are those of :class:`~trackers.actors.base.PairActor`; the losses are SiamRPN++'s
(:mod:`trackers.losses.rpn`). The anchor sampling draws from a generator seeded with ``(loss.seed, step)`` at the
start of every step, so a run and its resumption from a checkpoint sample the same anchors (pysot draws from the
global NumPy state).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from search_spaces.paths import PathSampler
from trackers.actors.base import PairActor, unwrap
from trackers.losses.rpn import RPNLoss, RPNLossConfig

__all__ = ["RPNActor"]

#: multiplier of the seed in the per-step generator seed ``seed · _SEED_STRIDE + step``
_SEED_STRIDE = 1_000_003


class RPNActor(PairActor):
    """Forward pass + SiamRPN++ losses (+ contrastive) for the SiamRPN++ family.

    Args:
        model: a :class:`~trackers.models.rpn.SiamRPNPPBase` (or its DDP wrapper, see :meth:`bind`).
        featurizer: language featurizer (``None``: no language; VLT_RPN++ then sees zero vectors).
        loss_cfg: :class:`RPNLossConfig`.
        path_sampler: :class:`~search_spaces.paths.PathSampler` for a supernet model, else ``None``.
    """

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[RPNLossConfig] = None,
                 path_sampler: Optional[PathSampler] = None):
        super().__init__(model, featurizer, path_sampler)
        self.loss = RPNLoss(loss_cfg or RPNLossConfig())
        self.generator = torch.Generator().manual_seed(self.loss.cfg.seed * _SEED_STRIDE)
        self._anchors: Dict[Tuple[int, str], torch.Tensor] = {}

    def begin_step(self, step: int) -> None:
        """Seed the anchor sampling of this step with ``(loss.seed, step)``."""
        self.generator.manual_seed(self.loss.cfg.seed * _SEED_STRIDE + int(step))

    def anchors(self, size: int, device: torch.device) -> torch.Tensor:
        """The model's anchors of a ``size`` score map on ``device`` (computed once per size and device)."""
        key = (int(size), str(device))
        if key not in self._anchors:
            self._anchors[key] = unwrap(self.model).anchors(size, device=device)
        return self._anchors[key]

    def compute_losses(self, outputs: Dict[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """SiamRPN++'s cross-entropy + 1.2 weighted L1 (+ contrastive) loss and its parts as floats."""
        model = unwrap(self.model)
        m = outputs["cls"].shape[-1]
        return self.loss(outputs, self.anchors(m, outputs["cls"].device), batch["search_box"],
                         positive_pairs=batch.get("label"), stride=model.stride, generator=self.generator)
