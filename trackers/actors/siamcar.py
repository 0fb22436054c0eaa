"""Training actor of the SiamCAR family (SiamCAR, VLT_SCAR): ``actor(batch, step) -> (loss, stats)``.

Batches are those of :func:`asearch.data.collate_pairs`: ``template`` / ``search`` (B×3×H×W float 0..255),
``template_box`` / ``search_box`` (B×4 ``x1, y1, x2, y2`` crop pixels), ``label`` (1 positive pair, 0 negative),
``sentence``, ``attributes``, ``has_language`` and ``language_strategy`` (lists). A precomputed ``language``
tensor (B×D) and ``use_template_language`` (B bool) are used as given instead of the featurizer.

With a path sampler (supernet pretraining, SPOS) each step runs the genome ``path_sampler.sample(step)`` and
:meth:`SiamCARActor.off_path_parameters` lists the backbone parameters off that path (the trainer drops their
gradients); neck and head are on every path.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import torch
from torch import nn

from asearch.training.actor import BaseActor, PathSampler
from trackers.losses.car import CARLoss, CARLossConfig

__all__ = ["SiamCARActor"]


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


class SiamCARActor(BaseActor):
    """Forward pass + SiamCAR losses (+ contrastive) for the SiamCAR family.

    Args:
        model: a :class:`~trackers.models.siamcar.SiamCARBase` (or its DDP wrapper, see :meth:`bind`).
        featurizer: language featurizer (``None``: no language; VLT_SCAR then sees zero vectors).
        loss_cfg: :class:`CARLossConfig`.
        path_sampler: :class:`~asearch.training.actor.PathSampler` for a supernet model, else ``None``.
    """

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[CARLossConfig] = None,
                 path_sampler: Optional[PathSampler] = None):
        super().__init__(model, path_sampler)
        self.featurizer = featurizer
        self.loss = CARLoss(loss_cfg or CARLossConfig())

    def language(self, batch: Mapping[str, Any], device: torch.device
                 ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Language vectors and ``use_template`` flags of the batch (``(None, None)`` without language)."""
        if batch.get("language") is not None:
            ut = batch.get("use_template_language")
            return batch["language"].to(device), None if ut is None else torch.as_tensor(ut, device=device).bool()
        if self.featurizer is None or not getattr(_unwrap(self.model), "uses_language", False):
            return None, None
        vectors, use_template = self.featurizer(batch["sentence"], batch["attributes"], batch["has_language"],
                                                batch.get("language_strategy"))
        return vectors.to(device), use_template.to(device)

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, torch.Tensor]:
        """Run the model on the pair batch along ``path`` (``None`` for a fixed architecture)."""
        template = batch["template"]
        language, use_template = self.language(batch, template.device)
        any_tl = use_template is not None and bool(use_template.any())
        return self.model(template, batch["search"], language, genome=path, template_box=batch["template_box"],
                          search_box=batch["search_box"], use_template_language=use_template if any_tl else None)

    def compute_losses(self, outputs: Dict[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """SiamCAR's classification + 3·IoU + centerness (+ contrastive) loss and its parts as floats."""
        model = _unwrap(self.model)
        m = outputs["cls"].shape[-1]
        locations = model.locations(m, device=outputs["cls"].device)
        label = batch.get("label")
        return self.loss(outputs, locations, batch["search_box"], positive_pairs=label)

    def off_path_parameters(self) -> Iterable[nn.Parameter]:
        """Backbone parameters off the current path (empty for a fixed architecture)."""
        model = _unwrap(self.model)
        if self.current_path is None or not hasattr(model, "off_path_parameters"):
            return []
        return model.off_path_parameters(self.current_path)
