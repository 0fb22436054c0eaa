"""Training actor of the grounding model: ``actor(batch, step) -> (loss, stats)`` on the batches of
:class:`asearch.data.grounding.GroundingDataset` (``image`` B×3×S×S, ``box`` B×4 normalised ``cx, cy, w, h``, the
language fields of the pair batches); texts are tokenised by the model's own language model
(:func:`~trackers.actors.base.batch_language`, ``language.missing`` for items without text)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from asearch.training.actor import BaseActor
from trackers.actors.base import batch_language, unwrap
from trackers.losses.grounding import GroundingLoss, GroundingLossConfig

__all__ = ["GroundingActor"]


class GroundingActor(BaseActor):
    """Forward pass on whole frames + TransVG's L1 / GIoU loss."""

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[GroundingLossConfig] = None,
                 path_sampler: Any = None):
        super().__init__(model, path_sampler)
        self.featurizer = featurizer
        self.loss = GroundingLoss(loss_cfg)

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, torch.Tensor]:
        """Run the model on the batch's frames and texts (a fixed architecture: ``path`` is ``None``)."""
        language = batch_language(unwrap(self.model), batch, self.featurizer, batch["image"].device)
        return self.model(batch["image"], language)

    def compute_losses(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """L1 + GIoU of the predicted against the annotated normalised boxes."""
        return self.loss(outputs["boxes"], batch["box"])
