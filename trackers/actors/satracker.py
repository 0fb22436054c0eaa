"""Training actor of SATracker (paper 002): ``actor(batch, step) -> (loss, stats)``.

The pair batches and the forward pass are :class:`~trackers.actors.base.PairActor`'s; like PJVLT, SATracker reads
word tokens, so the forward pass tokenises the batch's texts with the model's own language model
(:func:`~trackers.actors.base.batch_language`, ``language.missing`` included). The loss is
:class:`~trackers.losses.satracker.SATrackerLoss` (2·GIoU + 5·L1 + 1·dense matching, Eq. 6).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from trackers.actors.base import PairActor, batch_language, unwrap
from trackers.losses.satracker import SATrackerLoss, SATrackerLossConfig

__all__ = ["SATrackerActor"]


class SATrackerActor(PairActor):
    """Forward pass with token-level language + SATracker's loss (module docstring)."""

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[SATrackerLossConfig] = None,
                 path_sampler: Any = None):
        super().__init__(model, featurizer, path_sampler)
        self.cfg = loss_cfg or SATrackerLossConfig()
        self.loss = SATrackerLoss(self.cfg)

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, torch.Tensor]:
        """Run the model on the pair batch (a fixed architecture: ``path`` is ``None``)."""
        model = unwrap(self.model)
        language = batch_language(model, batch, self.featurizer, batch["template"].device) \
            if model.uses_language else None
        return self.model(batch["template"], batch["search"], language)

    def compute_losses(self, outputs: Dict[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """2·GIoU + 5·L1 + 1·DM and its parts as floats."""
        return self.loss(outputs, batch["search_box"], unwrap(self.model).search_size,
                         positive_pairs=batch.get("label"))
