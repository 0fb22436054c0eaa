"""VLT_SCAR (paper 000 §3.4, §4.1): SiamCAR whose ResNet-50 is replaced by the VLT network (searched template and
search paths with ModaMixer after every stage), the rest inherited from SiamCAR unchanged.

The backbone is either the supernet (a genome is passed to every call: pretraining and the evolutionary search) or
an extracted subnet (no genome: retraining and tracking with the searched architecture). Stage outputs 2-4 (all at
stride 8, Table 3) feed SiamCAR's neck and head. Language vectors are ``B×language_dim``; without a text
(``language=None``) the zero vector is used (the ``zero`` strategy of Alg. 1). The backbone hooks are shared with
VLT_TT: :class:`~trackers.models.vlt_backbone.VLTBackboneMixin`.
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from trackers.heads.car import SiamCARHead
from trackers.models.siamcar import SiamCARBase
from trackers.models.vlt_backbone import VLTBackboneMixin
from trackers.necks import AdjustNeck

__all__ = ["VLTSCAR"]


class VLTSCAR(VLTBackboneMixin, SiamCARBase):
    """SiamCAR on the VLT supernet or subnet.

    Args:
        backbone: a ``VLTSupernet`` (genome per call) or ``VLTSubnet`` (genome fixed), or anything with the same
            ``forward`` / ``forward_template`` / ``forward_search`` interface, ``channels`` and ``stride``.
        neck, head: SiamCAR's :class:`AdjustNeck` and :class:`SiamCARHead`.
        stages: 1-based stages fed to the neck (default 2, 3, 4).
        template_size, search_size: crop sides (127 / 255).
        language_dim: width of the language vector (read from ``backbone.config`` when omitted).
    """

    def __init__(self, backbone: nn.Module, neck: AdjustNeck, head: SiamCARHead, stages: Sequence[int] = (2, 3, 4),
                 template_size: int = 127, search_size: int = 255, language_dim: Optional[int] = None):
        super().__init__(neck, head, stages, template_size, search_size, stride=getattr(backbone, "stride", 8))
        self.set_vlt_backbone(backbone, language_dim)
