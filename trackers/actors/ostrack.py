"""Training actor of the OSTrack family (OSTrack, VLT_OST): ``actor(batch, step) -> (loss, stats)``.

Batches are those of :func:`asearch.data.collate_pairs` (128/256 crops): ``template``, ``search`` (B×3×H×W,
0..255), ``template_box`` / ``search_box`` (B×4 ``x1, y1, x2, y2`` crop pixels), ``label`` (1 positive, 0
negative), ``sentence``, ``attributes``, ``has_language``, ``language_strategy``; a precomputed ``language`` (B×D)
and ``use_template_language`` (B bool) are used as given instead of the featurizer.

The candidate-elimination keep ratio follows OSTrack's warm-up (:func:`trackers.losses.ostrack.ce_keep_ratio_at`
with the loss config's ``ce_start_step`` / ``ce_warm_steps``). With a path sampler (the VLT_OST supernet form,
mixer-only SPOS) every step runs ``path_sampler.sample(step)`` and :meth:`OSTrackActor.off_path_parameters` lists
the mixer blocks off that path.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import torch
from torch import nn

from asearch.training.actor import BaseActor, PathSampler
from trackers.losses.ostrack import OSTrackLoss, OSTrackLossConfig, ce_keep_ratio_at

__all__ = ["OSTrackActor"]


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


class OSTrackActor(BaseActor):
    """Forward pass + OSTrack losses (+ contrastive for VLT_OST).

    Args:
        model: an :class:`~trackers.models.ostrack.OSTrack` / ``VLTOST`` (or its DDP wrapper, see :meth:`bind`).
        featurizer: language featurizer (``None``: VLT_OST sees zero language vectors).
        loss_cfg: :class:`OSTrackLossConfig`.
        path_sampler: for the VLT_OST supernet form, else ``None``.
    """

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[OSTrackLossConfig] = None,
                 path_sampler: Optional[PathSampler] = None):
        super().__init__(model, path_sampler)
        self.featurizer = featurizer
        self.cfg = loss_cfg or OSTrackLossConfig()
        self.loss = OSTrackLoss(self.cfg)
        self.keep_ratio: Optional[float] = None

    def __call__(self, batch: Any, step: int) -> Tuple[torch.Tensor, Dict[str, float]]:
        base = _unwrap(self.model).backbone.ce_keep_ratios
        # one schedule for every CE block (OSTrack uses the same ratio at all of them)
        self.keep_ratio = None if not base else ce_keep_ratio_at(step, min(base), self.cfg.ce_start_step,
                                                                 self.cfg.ce_warm_steps)
        loss, stats = super().__call__(batch, step)
        if self.keep_ratio is not None:
            stats["ce_keep_ratio"] = self.keep_ratio
        return loss, stats

    def language(self, batch: Mapping[str, Any], device: torch.device
                 ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Language vectors and ``use_template`` flags of the batch (``(None, None)`` without language)."""
        if not getattr(_unwrap(self.model), "uses_language", False):
            return None, None
        if batch.get("language") is not None:
            ut = batch.get("use_template_language")
            return batch["language"].to(device), None if ut is None else torch.as_tensor(ut, device=device).bool()
        if self.featurizer is None:
            return None, None
        vectors, use_template = self.featurizer(batch["sentence"], batch["attributes"], batch["has_language"],
                                                batch.get("language_strategy"))
        return vectors.to(device), use_template.to(device)

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, torch.Tensor]:
        """Run the model on the pair batch along ``path`` with the current CE keep ratio."""
        template = batch["template"]
        language, use_template = self.language(batch, template.device)
        any_tl = use_template is not None and bool(use_template.any())
        return self.model(template, batch["search"], language, genome=path, template_box=batch["template_box"],
                          search_box=batch["search_box"], use_template_language=use_template if any_tl else None,
                          ce_keep_ratio=self.keep_ratio)

    def compute_losses(self, outputs: Dict[str, torch.Tensor], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Focal + 2·GIoU + 5·L1 (+ contrastive) and its parts as floats."""
        return self.loss(outputs, batch["search_box"], _unwrap(self.model).search_size,
                         positive_pairs=batch.get("label"))

    def off_path_parameters(self) -> Iterable[nn.Parameter]:
        """Mixer-block parameters off the current path (empty for a fixed network)."""
        model = _unwrap(self.model)
        if self.current_path is None or not hasattr(model, "off_path_parameters"):
            return []
        return model.off_path_parameters(self.current_path)
