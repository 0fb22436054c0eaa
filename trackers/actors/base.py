"""What the actors of the tracker families share: the language of a pair batch, the forward pass on it and the SPOS
off-path parameters; families add their losses (:meth:`~asearch.training.actor.BaseActor.compute_losses`).

Batches are those of :func:`asearch.data.collate_pairs`: ``template`` / ``search`` (B×3×H×W float 0..255),
``template_box`` / ``search_box`` (B×4 ``x1, y1, x2, y2`` crop pixels), ``label`` (1 positive pair, 0 negative),
``sentence``, ``attributes``, ``has_language`` and ``language_strategy`` (lists), ``language_mask`` (B bool: the
pairs that enter the contrastive loss, Eq. 2-4). A precomputed ``language`` tensor (B×D) and
``use_template_language`` (B bool) are used as given instead of the featurizer.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

import torch
from torch import nn

from asearch.training.actor import BaseActor
from search_spaces.paths import PathSampler

__all__ = ["PairActor", "unwrap", "batch_language"]


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (``model.module``), or ``model`` itself."""
    return getattr(model, "module", model)


def batch_language(model: Any, batch: Mapping[str, Any], featurizer: Any, device: torch.device
                   ) -> Dict[str, torch.Tensor]:
    """The tokenised texts of a pair batch for a model with its own token-level language model (PJVLT, COST:
    ``model.tokenize``); items without language follow ``language.missing`` (the featurizer's ``missing``, per-item
    ``language_strategy`` where the sampler sets one); without a featurizer no item has text."""
    from asearch.language import prepare_texts

    n = len(batch["sentence"])
    has = list(batch["has_language"]) if featurizer is not None else [False] * n
    missing = getattr(featurizer, "missing", "zero")
    texts, has_text, _ = prepare_texts(batch["sentence"], has, missing, batch.get("attributes"),
                                       batch.get("language_strategy") if featurizer is not None else None)
    return model.tokenize(texts, has_text, device)


class PairActor(BaseActor):
    """Language + forward pass + SPOS hooks on template/search pair batches.

    Args:
        model: the family's model (or its DDP wrapper, see :meth:`bind`).
        featurizer: language featurizer (``None``: no language; a VLT model then sees zero vectors).
        path_sampler: :class:`~search_spaces.paths.PathSampler` for a supernet model, else ``None``.
    """

    def __init__(self, model: nn.Module, featurizer: Any = None, path_sampler: Optional[PathSampler] = None):
        super().__init__(model, path_sampler)
        self.featurizer = featurizer

    def language(self, batch: Mapping[str, Any], device: torch.device
                 ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Language vectors and ``use_template`` flags of the batch (``(None, None)`` without language, and for a
        model that does not use language)."""
        if not getattr(unwrap(self.model), "uses_language", False):
            return None, None
        if batch.get("language") is not None:
            ut = batch.get("use_template_language")
            return batch["language"].to(device), None if ut is None else torch.as_tensor(ut, device=device).bool()
        if self.featurizer is None:
            return None, None
        vectors, use_template = self.featurizer(batch["sentence"], batch["attributes"], batch["has_language"],
                                                batch.get("language_strategy"))
        return vectors.to(device), use_template.to(device)

    def model_kwargs(self) -> Dict[str, Any]:
        """Extra keyword arguments of the model call at this step (none by default)."""
        return {}

    def _language_inputs(self, batch: Mapping[str, Any]) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """The batch's language vectors and its ``use_template`` flags, the flags ``None`` when no item uses the
        template strategy."""
        language, use_template = self.language(batch, batch["template"].device)
        any_tl = use_template is not None and bool(use_template.any())
        return language, use_template if any_tl else None

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, torch.Tensor]:
        """Run the model on the pair batch along ``path`` (``None`` for a fixed architecture)."""
        language, use_template = self._language_inputs(batch)
        return self.model(batch["template"], batch["search"], language, genome=path,
                          template_box=batch["template_box"], search_box=batch["search_box"],
                          use_template_language=use_template, language_mask=batch.get("language_mask"),
                          **self.model_kwargs())

    def recalibration_pass(self, batch: Mapping[str, Any], path: Any) -> None:
        """What BN recalibration (:mod:`asearch.search.bn`) runs on a pair batch: every BatchNorm layer on ``path``
        sees what :meth:`forward_pass` gives it. The model's ``recalibration_forward`` where it has one (it may
        leave out BatchNorm-free parts, e.g. SiamCAR's head), else its forward without the boxes that only feed
        the contrastive loss (the template box still goes in where an item takes its language from the template:
        the ROI of the template strategy)."""
        language, use_template = self._language_inputs(batch)
        kwargs = dict(genome=path, template_box=batch["template_box"] if use_template is not None else None,
                      use_template_language=use_template, **self.model_kwargs())
        model = unwrap(self.model)
        run = model.recalibration_forward if hasattr(model, "recalibration_forward") else self.model
        run(batch["template"], batch["search"], language, **kwargs)

    def off_path_parameters(self) -> Iterable[nn.Parameter]:
        """The model's parameters off the current path (its ``off_path_parameters``; empty for a fixed
        architecture)."""
        model = unwrap(self.model)
        if self.current_path is None or not hasattr(model, "off_path_parameters"):
            return []
        return model.off_path_parameters(self.current_path)
