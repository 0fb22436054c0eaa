"""VLT_SCAR (paper 000 §3.4, §4.1): SiamCAR whose ResNet-50 is replaced by the VLT network (searched template and
search paths with ModaMixer after every stage), the rest inherited from SiamCAR unchanged.

The backbone is either the supernet (a genome is passed to every call: pretraining and the evolutionary search) or
an extracted subnet (no genome: retraining and tracking with the searched architecture). Stage outputs 2-4 (all at
stride 8, Table 3) feed SiamCAR's neck and head. Language vectors are ``B×language_dim``; without a text
(``language=None``) the zero vector is used (the ``zero`` strategy of Alg. 1).
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from asearch.errors import ArchitectureError
from trackers.heads.car import SiamCARHead
from trackers.models.siamcar import SiamCARBase
from trackers.necks import AdjustNeck

__all__ = ["VLTSCAR"]

#: entries of the backbone's template state that the search branch does not read (dropped from the cache)
_UNCACHED_STATE_KEYS = ("features", "contrastive_terms")


class VLTSCAR(SiamCARBase):
    """SiamCAR on the VLT supernet or subnet.

    Args:
        backbone: a ``VLTSupernet`` (genome per call) or ``VLTSubnet`` (genome fixed), or anything with the same
            ``forward`` / ``forward_template`` / ``forward_search`` interface, ``channels`` and ``stride``.
        neck, head: SiamCAR's :class:`AdjustNeck` and :class:`SiamCARHead`.
        stages: 1-based stages fed to the neck (default 2, 3, 4).
        template_size, search_size: crop sides (127 / 255).
        language_dim: width of the language vector (read from ``backbone.config`` when omitted).
    """

    uses_language = True

    def __init__(self, backbone: nn.Module, neck: AdjustNeck, head: SiamCARHead, stages: Sequence[int] = (2, 3, 4),
                 template_size: int = 127, search_size: int = 255, language_dim: Optional[int] = None):
        super().__init__(neck, head, stages, template_size, search_size, stride=getattr(backbone, "stride", 8))
        self.backbone = backbone
        if language_dim is None:
            language_dim = getattr(getattr(backbone, "config", None), "language_dim", None)
        if language_dim is None:
            raise ArchitectureError("VLTSCAR needs language_dim (the backbone has no config.language_dim)")
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
                raise ArchitectureError("this VLT_SCAR model is built on the supernet: pass the genome (path) to run")
            return [genome]
        if genome is not None:
            raise ArchitectureError("this VLT_SCAR model is built on a fixed subnet: it takes no genome")
        return []

    def backbone_pair(self, template, search, language, genome, template_box, search_box, use_template_language):
        out = self.backbone(template, search, self._language(language, template), *self._genome_args(genome),
                            template_box=template_box, search_box=search_box,
                            use_template_language=use_template_language)
        extra: Dict[str, torch.Tensor] = {}
        if out.get("contrastive") is not None:
            extra["contrastive"] = out["contrastive"]
        return out["template"], out["search"], extra

    def backbone_template(self, template, language, genome, template_box, use_template_language):
        state = self.backbone.forward_template(template, self._language(language, template),
                                               *self._genome_args(genome), template_box=template_box,
                                               use_template_language=use_template_language)
        feats = state["features"]
        cached = {k: v for k, v in state.items() if k not in _UNCACHED_STATE_KEYS}
        return feats, cached

    def backbone_search(self, search, language, genome, backbone_state):
        return self.backbone.forward_search(search, self._language(language, search), *self._genome_args(genome),
                                            backbone_state)

    def off_path_parameters(self, genome: Any) -> List[nn.Parameter]:
        """Backbone parameters not on ``genome`` (none for a subnet); neck and head are always on the path."""
        if not self.needs_genome or not hasattr(self.backbone, "off_path_parameters"):
            return []
        return list(self.backbone.off_path_parameters(genome))
