"""Training actor of the TransT family (TransT, VLT_TT): ``actor(batch, step) -> (loss, stats)``.

Batches, language handling, the forward pass and the SPOS path hooks are those of
:class:`~trackers.actors.base.PairActor` (shared with SiamCAR); only the losses differ: TransT's
``8.334·CE + 5·L1 + 2·GIoU`` (+ contrastive), see :mod:`trackers.losses.transt`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from search_spaces.paths import PathSampler
from trackers.actors.base import PairActor, unwrap
from trackers.losses.transt import TransTLoss, TransTLossConfig

__all__ = ["TransTActor"]


class TransTActor(PairActor):
    """Forward pass + TransT losses (+ contrastive) for the TransT family.

    Args:
        model: a :class:`~trackers.models.transt.TransTBase` (or its DDP wrapper).
        featurizer: language featurizer (``None``: no language; VLT_TT then sees zero vectors).
        loss_cfg: :class:`TransTLossConfig`.
        path_sampler: :class:`~search_spaces.paths.PathSampler` for a supernet backbone, else ``None``.
    """

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[TransTLossConfig] = None,
                 path_sampler: Optional[PathSampler] = None):
        super().__init__(model, featurizer, path_sampler)
        self.loss = TransTLoss(loss_cfg or TransTLossConfig())

    def compute_losses(self, outputs: Dict[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """TransT's classification + L1 + GIoU (+ contrastive) loss and its parts as floats."""
        model = unwrap(self.model)
        return self.loss(outputs, batch["search_box"], model.search_size, model.stride,
                         positive_pairs=batch.get("label"))
