"""Training actor of COST (paper 003): ``actor(batch, step) -> (loss, stats)``.

The pair batches are the TransT family's (:class:`~trackers.actors.transt.TransTActor`, TransT's crop rule); COST
reads word tokens, so the forward pass tokenises the batch's texts with the model's own language model
(:func:`~trackers.actors.base.batch_language`, ``language.missing`` for items without text); the batch's
``language_mask`` (pairs with a sentence of their own, positive pairs) selects the pairs of L_CoA. Loss:
:class:`~trackers.losses.cost.COSTLoss`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

from trackers.actors.base import batch_language, unwrap
from trackers.actors.transt import TransTActor
from trackers.losses.cost import COSTLoss, COSTLossConfig

__all__ = ["COSTActor"]


class COSTActor(TransTActor):
    """Forward pass with token-level language + COST's loss (module docstring)."""

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[COSTLossConfig] = None,
                 path_sampler: Any = None):
        super().__init__(model, featurizer, None, path_sampler)
        net = unwrap(model)
        self.loss = COSTLoss(loss_cfg or COSTLossConfig(), net.visual_side, net.visual_offset)

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, torch.Tensor]:
        """Run the model on the pair batch (a fixed architecture: ``path`` is ``None``)."""
        language = batch_language(unwrap(self.model), batch, self.featurizer, batch["template"].device)
        return self.model(batch["template"], batch["search"], language, language_mask=batch.get("language_mask"))

    def recalibration_pass(self, batch: Mapping[str, Any], path: Any) -> None:
        """BatchNorm recalibration sees the training forward."""
        language = batch_language(unwrap(self.model), batch, self.featurizer, batch["template"].device)
        unwrap(self.model).recalibration_forward(batch["template"], batch["search"], language)
