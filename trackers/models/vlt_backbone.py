"""The VLT network (searched template/search paths with ModaMixer, paper 000 §3.2-3.4) as the backbone of a tracker.

:class:`VLTBackboneMixin` gives a tracker model the three backbone hooks of the Siamese families
(``backbone_pair``, ``backbone_template``, ``backbone_search``) on a ``VLTSupernet`` (a genome is passed to every
call: pretraining and the evolutionary search) or a ``VLTSubnet`` (no genome: retraining and tracking with the
searched architecture). Language vectors are ``B×language_dim``; without a text (``language=None``) the zero vector
is used (the ``zero`` strategy of Alg. 1). Used by VLT_SCAR and VLT_TT.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from asearch.errors import ArchitectureError

__all__ = ["VLTBackboneMixin"]

#: entries of the backbone's template state that the search branch does not read (dropped from the cache)
_UNCACHED_STATE_KEYS = ("features", "contrastive_terms")


class VLTBackboneMixin:
    """Backbone hooks over a VLT supernet or subnet; call :meth:`set_vlt_backbone` in ``__init__``."""

    uses_language = True
    backbone: nn.Module
    language_dim: int
    needs_genome: bool

    def set_vlt_backbone(self, backbone: nn.Module, language_dim: Optional[int] = None) -> None:
        """Attach ``backbone`` (``VLTSupernet``/``VLTSubnet`` or the same interface) and read ``language_dim`` from
        ``backbone.config`` when it is not given."""
        self.backbone = backbone
        if language_dim is None:
            language_dim = getattr(getattr(backbone, "config", None), "language_dim", None)
        if language_dim is None:
            raise ArchitectureError(f"{type(self).__name__} needs language_dim (the backbone has no "
                                    "config.language_dim)")
        self.language_dim = int(language_dim)
        #: True when the backbone takes a genome (a supernet), False for a fixed subnet
        self.needs_genome = "genome" in inspect.signature(backbone.forward_template).parameters

    def _language(self, language: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        if language is None:
            return like.new_zeros(like.shape[0], self.language_dim)
        return language.to(device=like.device, dtype=like.dtype)

    def _genome_args(self, genome: Any) -> List[Any]:
        if self.needs_genome:
            if genome is None:
                raise ArchitectureError(f"this {type(self).__name__} model is built on the supernet: pass the genome "
                                        "(path) to run")
            return [genome]
        if genome is not None:
            raise ArchitectureError(f"this {type(self).__name__} model is built on a fixed subnet: it takes no genome")
        return []

    def backbone_pair(self, template, search, language, genome, template_box, search_box, use_template_language,
                      language_mask=None):
        """Stage maps of both crops and ``{'contrastive': ...}`` when the backbone computes it."""
        out = self.backbone(template, search, self._language(language, template), *self._genome_args(genome),
                            template_box=template_box, search_box=search_box,
                            use_template_language=use_template_language, language_mask=language_mask)
        extra: Dict[str, torch.Tensor] = {}
        if out.get("contrastive") is not None:
            extra["contrastive"] = out["contrastive"]
        return out["template"], out["search"], extra

    def backbone_template(self, template, language, genome, template_box, use_template_language):
        """Template stage maps and the backbone state the search branch needs (cached by trackers)."""
        state = self.backbone.forward_template(template, self._language(language, template),
                                               *self._genome_args(genome), template_box=template_box,
                                               use_template_language=use_template_language)
        cached = {k: v for k, v in state.items() if k not in _UNCACHED_STATE_KEYS}
        return state["features"], cached

    def backbone_search(self, search, language, genome, backbone_state):
        """Search stage maps given the cached template state."""
        return self.backbone.forward_search(search, self._language(language, search), *self._genome_args(genome),
                                            backbone_state)

    def off_path_parameters(self, genome: Any) -> List[nn.Parameter]:
        """Backbone parameters not on ``genome`` (none for a subnet); the rest of the model is always on the path."""
        if not self.needs_genome or not hasattr(self.backbone, "off_path_parameters"):
            return []
        return list(self.backbone.off_path_parameters(genome))
