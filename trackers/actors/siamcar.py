"""Training actor of the SiamCAR family (SiamCAR, VLT_SCAR): ``actor(batch, step) -> (loss, stats)``.

Batches and language handling are those of :class:`~trackers.actors.base.PairActor`. With a path sampler
(supernet pretraining, SPOS) each step runs the genome ``path_sampler.sample(step)`` and
:meth:`SiamCARActor.off_path_parameters` lists the backbone parameters off that path (the trainer drops their
gradients); neck and head are on every path.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from search_spaces.paths import PathSampler
from trackers.actors.base import PairActor, unwrap
from trackers.losses.car import CARLoss, CARLossConfig

__all__ = ["SiamCARActor"]


class SiamCARActor(PairActor):
    """Forward pass + SiamCAR losses (+ contrastive) for the SiamCAR family.

    Args:
        model: a :class:`~trackers.models.siamcar.SiamCARBase` (or its DDP wrapper, see :meth:`bind`).
        featurizer: language featurizer (``None``: no language; VLT_SCAR then sees zero vectors).
        loss_cfg: :class:`CARLossConfig`.
        path_sampler: :class:`~search_spaces.paths.PathSampler` for a supernet model, else ``None``.
    """

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[CARLossConfig] = None,
                 path_sampler: Optional[PathSampler] = None):
        super().__init__(model, featurizer, path_sampler)
        self.loss = CARLoss(loss_cfg or CARLossConfig())

    def compute_losses(self, outputs: Dict[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """SiamCAR's classification + 3·IoU + centerness (+ contrastive) loss and its parts as floats."""
        model = unwrap(self.model)
        m = outputs["cls"].shape[-1]
        locations = model.locations(m, device=outputs["cls"].device)
        label = batch.get("label")
        return self.loss(outputs, locations, batch["search_box"], positive_pairs=label)
