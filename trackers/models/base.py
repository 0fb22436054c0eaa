"""The skeleton shared by the two-stream (Siamese) tracker families, SiamCAR/VLT_SCAR and TransT/VLT_TT.

A :class:`SiameseTrackerModel` runs a backbone on the template and the search crop, turns the template maps into
a cached state (:meth:`~SiameseTrackerModel.embed_template`) and predicts from that state and the search maps
(:meth:`~SiameseTrackerModel.predict`). :meth:`~SiameseTrackerModel.forward` (training) runs both branches at once,
:meth:`~SiameseTrackerModel.template` (once per video) and :meth:`~SiameseTrackerModel.track` (every frame) split
them for trackers. How the backbone is called is left to three hooks: :class:`SharedBackboneMixin` for a
vision-only backbone shared by both crops, :class:`~trackers.models.vlt_backbone.VLTBackboneMixin` for the VLT
network.
"""
from __future__ import annotations

import abc
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

__all__ = ["SiameseTrackerModel", "SharedBackboneMixin"]


class SiameseTrackerModel(nn.Module, abc.ABC):
    """Template/search split of a two-stream tracker; subclasses give the backbone hooks and the head part."""

    uses_language = False

    # -- backbone hooks (mixins) -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def backbone_pair(self, template, search, language, genome, template_box, search_box, use_template_language,
                      language_mask=None) -> Tuple[List[torch.Tensor], List[torch.Tensor], Dict[str, torch.Tensor]]:
        """Stage maps of both crops and extra outputs (e.g. ``contrastive`` over the pairs ``language_mask``
        keeps)."""

    @abc.abstractmethod
    def backbone_template(self, template, language, genome, template_box, use_template_language
                          ) -> Tuple[List[torch.Tensor], Any]:
        """Template stage maps and the backbone's own cached state (or ``None``)."""

    @abc.abstractmethod
    def backbone_search(self, search, language, genome, backbone_state) -> List[torch.Tensor]:
        """Search stage maps given the cached template state."""

    # -- head hooks (families) ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def embed_template(self, zf: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Template stage maps -> the family's entries of the cached template state (batch-first tensors)."""

    @abc.abstractmethod
    def predict(self, embedded: Mapping[str, Any], xf: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The family's outputs from :meth:`embed_template`'s entries and the search stage maps."""

    # -- public API -------------------------------------------------------------------------------------------------
    def forward(self, template: torch.Tensor, search: torch.Tensor, language: Optional[torch.Tensor] = None,
                genome: Any = None, template_box: Optional[torch.Tensor] = None,
                search_box: Optional[torch.Tensor] = None, use_template_language: Optional[torch.Tensor] = None,
                language_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Training forward on RGB 0..255 crops (boxes ``x1, y1, x2, y2`` in crop pixels): the family's outputs
        (see its class) plus ``contrastive`` when the backbone computes one (over the pairs that
        :func:`~supernets.contrastive.contrastive_mask` keeps; ``language_mask``: B bool from the data path)."""
        zf, xf, extra = self.backbone_pair(template, search, language, genome, template_box, search_box,
                                           use_template_language, language_mask)
        out = self.predict(self.embed_template(zf), xf)
        out.update(extra)
        return out

    def recalibration_forward(self, template: torch.Tensor, search: torch.Tensor,
                              language: Optional[torch.Tensor] = None, genome: Any = None,
                              template_box: Optional[torch.Tensor] = None,
                              use_template_language: Optional[torch.Tensor] = None) -> None:
        """What BatchNorm recalibration needs of :meth:`forward` (no contrastive loss; outputs dropped): here the
        whole forward; a family whose head holds no BatchNorm may stop before it."""
        self.forward(template, search, language, genome, template_box, None, use_template_language)

    def template(self, template: torch.Tensor, language: Optional[torch.Tensor] = None, genome: Any = None,
                 template_box: Optional[torch.Tensor] = None, use_template_language: Optional[torch.Tensor] = None
                 ) -> Dict[str, Any]:
        """Run the template branch once: a state for :meth:`track` (every tensor in it is batch-first)."""
        zf, backbone_state = self.backbone_template(template, language, genome, template_box, use_template_language)
        state: Dict[str, Any] = dict(self.embed_template(zf))
        state["genome"] = genome
        if backbone_state is not None:
            state["backbone"] = backbone_state
        if language is not None:
            state["language"] = language
        return state

    def track(self, search: torch.Tensor, state: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        """Search branch + head for one frame of each video of the batch, given :meth:`template`'s state."""
        xf = self.backbone_search(search, state.get("language"), state.get("genome"), state.get("backbone"))
        return self.predict(state, xf)


class SharedBackboneMixin:
    """Backbone hooks of the vision-only baselines: one ``self.backbone`` for both crops; language, genome and
    boxes are ignored and nothing is cached."""

    backbone: nn.Module

    def backbone_pair(self, template, search, language, genome, template_box, search_box, use_template_language,
                      language_mask=None):
        """Stage maps of both crops (no extra outputs)."""
        return self.backbone(template), self.backbone(search), {}

    def backbone_template(self, template, language, genome, template_box, use_template_language):
        """Template stage maps (no backbone state)."""
        return self.backbone(template), None

    def backbone_search(self, search, language, genome, backbone_state):
        """Search stage maps."""
        return self.backbone(search)
