"""Training actor of PJVLT (paper 001): ``actor(batch, step) -> (loss, stats)``.

The pair batches, the focal + 2·GIoU + 5·L1 loss (§III-E, Eq. 14-17) and its stats are the OSTrack family's
(:class:`~trackers.actors.ostrack.OSTrackActor`, :class:`~trackers.losses.ostrack.OSTrackLoss`); PJVLT reads word
tokens, not a pooled vector, so the forward pass tokenises the batch's texts with the model's own language model.
Items without language follow ``language.missing`` (the featurizer's ``missing``, per-item ``language_strategy``
where the sampler sets one) through :func:`asearch.language.prepare_texts`; without a featurizer
(``language.enabled: false``) no item has text.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

import torch

from trackers.actors.base import batch_language, unwrap
from trackers.actors.ostrack import OSTrackActor

__all__ = ["PJVLTActor", "batch_language"]


class PJVLTActor(OSTrackActor):
    """Forward pass with token-level language + OSTrack's loss (module docstring)."""

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, torch.Tensor]:
        """Run the model on the pair batch (PJVLT has a fixed architecture: ``path`` is ``None``)."""
        language = batch_language(unwrap(self.model), batch, self.featurizer, batch["template"].device)
        return self.model(batch["template"], batch["search"], language)
