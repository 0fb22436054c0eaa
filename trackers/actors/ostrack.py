"""Training actor of the OSTrack family (OSTrack, VLT_OST): ``actor(batch, step) -> (loss, stats)``.

Batches (128/256 crops), language handling, the forward pass and the SPOS path hooks are those of
:class:`~trackers.actors.base.PairActor`; the model call also gets the current ``ce_keep_ratio``.

The candidate-elimination keep ratio follows OSTrack's warm-up (:func:`trackers.losses.ostrack.ce_keep_ratio_at`
with the loss config's ``ce_start_step`` / ``ce_warm_steps``). With a path sampler (the VLT_OST supernet form,
mixer-only SPOS) every step runs ``path_sampler.sample(step)`` and :meth:`OSTrackActor.off_path_parameters` lists
the mixer blocks off that path.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from search_spaces.paths import PathSampler
from trackers.actors.base import PairActor, unwrap
from trackers.losses.ostrack import OSTrackLoss, OSTrackLossConfig, ce_keep_ratio_at

__all__ = ["OSTrackActor"]


class OSTrackActor(PairActor):
    """Forward pass + OSTrack losses (+ contrastive for VLT_OST).

    Args:
        model: an :class:`~trackers.models.ostrack.OSTrack` / ``VLTOST`` (or its DDP wrapper, see :meth:`bind`).
        featurizer: language featurizer (``None``: VLT_OST sees zero language vectors).
        loss_cfg: :class:`OSTrackLossConfig`.
        path_sampler: for the VLT_OST supernet form, else ``None``.
    """

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[OSTrackLossConfig] = None,
                 path_sampler: Optional[PathSampler] = None):
        super().__init__(model, featurizer, path_sampler)
        self.cfg = loss_cfg or OSTrackLossConfig()
        self.loss = OSTrackLoss(self.cfg)
        self.keep_ratio: Optional[float] = None

    def begin_step(self, step: int) -> None:
        """The candidate-elimination keep ratio of ``step``."""
        base = unwrap(self.model).backbone.ce_keep_ratios
        # one schedule for every CE block (OSTrack uses the same ratio at all of them)
        self.keep_ratio = None if not base else ce_keep_ratio_at(step, min(base), self.cfg.ce_start_step,
                                                                 self.cfg.ce_warm_steps)

    def run(self, batch: Any, path: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Loss and stats along ``path`` at the keep ratio set by :meth:`begin_step`."""
        loss, stats = super().run(batch, path)
        if self.keep_ratio is not None:
            stats["ce_keep_ratio"] = self.keep_ratio
        return loss, stats

    def model_kwargs(self) -> Dict[str, Any]:
        """The current candidate-elimination keep ratio (``ce_keep_ratio``)."""
        return {"ce_keep_ratio": self.keep_ratio}

    def compute_losses(self, outputs: Dict[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Focal + 2·GIoU + 5·L1 (+ contrastive) and its parts as floats."""
        return self.loss(outputs, batch["search_box"], unwrap(self.model).search_size,
                         positive_pairs=batch.get("label"))
