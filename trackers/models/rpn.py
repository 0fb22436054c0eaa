"""SiamRPN++ (Li et al., CVPR 2019) and VLT_RPN++ (paper 000 Table 14): the SiamCAR family's backbone, neck and crop
geometry with SiamRPN++'s multi-level anchor RPN in place of the CAR head.

:class:`SiamRPNPPBase` is :class:`~trackers.models.siamcar.SiamCARBase` (adjust neck with the 7x7 template centre
crop, stage selection, the template/track split, BatchNorm recalibration) with a :class:`~trackers.heads.rpn.MultiRPN`
head, which takes the same (kernels, search maps) per stage, plus the anchors of its score map. Released facts
(pysot ``siamrpn_r50_l234_dwxcorr``): ResNet-50 layers 2-4 at stride 8, adjust layers to 256 channels, MultiRPN
``weighted: true``, 5 anchors (ratios 0.33-3, scale 8), 127/255 crops. The backbones are the two the SiamCAR family
uses, through the same mixins: :class:`~trackers.models.base.SharedBackboneMixin` (SiamRPN++, the toolkit's
ResNet-50) and :class:`~trackers.models.vlt_backbone.VLTBackboneMixin` (VLT_RPN++, the VLT supernet or a subnet with
ModaMixer and the contrastive loss), exactly as VLT_SCAR plugs into SiamCAR.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from asearch.errors import ArchitectureError, ConfigError
from trackers.heads.rpn import RPN_RATIOS, RPN_SCALES, MultiRPN, generate_anchors
from trackers.models.base import SharedBackboneMixin
from trackers.models.siamcar import SiamCARBase
from trackers.models.vlt_backbone import VLTBackboneMixin
from trackers.necks import AdjustNeck
from trackers.registry import Lazy, ModelEntry, SiamCARModelConfig, build_vlt_backbone

__all__ = ["SiamRPNPPBase", "SiamRPNPP", "VLTRPNPP", "RPNHeadConfig", "RPNModelConfig", "build_siamrpnpp",
           "build_vlt_rpnpp", "SIAMRPNPP_ENTRY", "VLT_RPNPP_ENTRY"]


class SiamRPNPPBase(SiamCARBase):
    """Neck + MultiRPN head + geometry and anchors of the SiamRPN++ family.

    Args:
        neck: :class:`AdjustNeck` over the used stages.
        head: :class:`MultiRPN` with one level per stage.
        stages: 1-based backbone stages (2, 3, 4).
        template_size, search_size: crop sides (127 / 255).
        stride: total stride of the used stages, also the anchor stride (8).
        ratios, scales: anchor shapes (:func:`~trackers.heads.rpn.anchor_shapes`); ``len(ratios) · len(scales)``
            must be the head's ``anchor_num``.
    """

    def __init__(self, neck: AdjustNeck, head: MultiRPN, stages: Sequence[int] = (2, 3, 4),
                 template_size: int = 127, search_size: int = 255, stride: int = 8,
                 ratios: Sequence[float] = RPN_RATIOS, scales: Sequence[float] = RPN_SCALES):
        super().__init__(neck, head, stages, template_size, search_size, stride)  # type: ignore[arg-type]
        self.ratios = [float(r) for r in ratios]
        self.scales = [float(s) for s in scales]
        self.anchor_num = len(self.ratios) * len(self.scales)
        if head.anchor_num != self.anchor_num:
            raise ArchitectureError(f"the RPN head predicts {head.anchor_num} anchors per location, the anchor "
                                    f"ratios x scales give {self.anchor_num}")
        if head.num_levels != len(self.stages):
            raise ArchitectureError(f"the RPN head has {head.num_levels} levels for {len(self.stages)} stages")

    def anchors(self, size: Optional[int] = None, device: Optional[torch.device] = None) -> torch.Tensor:
        """``(K·M·M)×4`` anchors ``cx, cy, w, h`` in search-crop pixels (:func:`generate_anchors`)."""
        return generate_anchors(size or self.score_size, self.stride, self.location_offset, self.ratios,
                                self.scales, device)


class SiamRPNPP(SharedBackboneMixin, SiamRPNPPBase):
    """The vision-only SiamRPN++: one ResNet-50 shared by both crops; language arguments are ignored."""

    def __init__(self, backbone: nn.Module, neck: AdjustNeck, head: MultiRPN, stages: Sequence[int] = (2, 3, 4),
                 template_size: int = 127, search_size: int = 255, ratios: Sequence[float] = RPN_RATIOS,
                 scales: Sequence[float] = RPN_SCALES):
        super().__init__(neck, head, stages, template_size, search_size, getattr(backbone, "stride", 8), ratios,
                         scales)
        self.backbone = backbone


class VLTRPNPP(VLTBackboneMixin, SiamRPNPPBase):
    """SiamRPN++ on the VLT supernet (a genome per call) or an extracted subnet (paper 000 Table 14)."""

    def __init__(self, backbone: nn.Module, neck: AdjustNeck, head: MultiRPN, stages: Sequence[int] = (2, 3, 4),
                 template_size: int = 127, search_size: int = 255, language_dim: Optional[int] = None,
                 ratios: Sequence[float] = RPN_RATIOS, scales: Sequence[float] = RPN_SCALES):
        super().__init__(neck, head, stages, template_size, search_size, getattr(backbone, "stride", 8), ratios,
                         scales)
        self.set_vlt_backbone(backbone, language_dim)


# ----------------------------------------------------------------------------------------------------------------------
# configs, builders and registry entries (see :mod:`trackers.registry`)
@dataclass
class RPNHeadConfig:
    """MultiRPN head: anchor ratios (``h / w``) and scales, learnable level weights (pysot's defaults).

    The square anchor is ``8 · scale`` pixels wide; SiamFC's context crop puts a target of about ``T / 2`` pixels in
    the crops, so ``scale = 8`` fits ``T = 127`` (64 px) and smaller crops need ``scale ≈ 8 · T / 127`` (4 for 63).
    """

    ratios: List[float] = field(default_factory=lambda: list(RPN_RATIOS))
    scales: List[float] = field(default_factory=lambda: list(RPN_SCALES))
    weighted: bool = True


@dataclass
class RPNModelConfig(SiamCARModelConfig):
    """Model section of the SiamRPN++ family (``name``: ``vlt_rpnpp`` or ``siamrpnpp``): the SiamCAR family's keys
    (:class:`~trackers.registry.SiamCARModelConfig`) with an RPN ``head``."""

    names: ClassVar[Tuple[str, ...]] = ("vlt_rpnpp", "siamrpnpp")
    family: ClassVar[str] = "SiamRPN++"
    name: str = "vlt_rpnpp"
    head: RPNHeadConfig = field(default_factory=RPNHeadConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.head.ratios or not self.head.scales or min(self.head.ratios + self.head.scales) <= 0:
            raise ConfigError(f"model.head.ratios and model.head.scales must be non-empty and positive, got "
                              f"{self.head.ratios}, {self.head.scales}")
        if self.name == "siamrpnpp":
            for key in ("supernet", "genome", "spos_checkpoint"):
                if getattr(self, key):
                    raise ConfigError(f"model.{key} applies to vlt_rpnpp only (model.name is 'siamrpnpp': a "
                                      "ResNet-50, configured in model.resnet)")


def _neck_head(cfg: RPNModelConfig, channels: List[int]) -> tuple:
    neck = AdjustNeck([channels[s - 1] for s in cfg.stages], cfg.neck.channels, cfg.neck.center_size)
    head = MultiRPN(len(cfg.stages), cfg.neck.channels, len(cfg.head.ratios) * len(cfg.head.scales),
                    cfg.head.weighted)
    return neck, head


def build_vlt_rpnpp(cfg: RPNModelConfig, pretrained: bool = True) -> VLTRPNPP:
    """VLT_RPN++ from its model config: the VLT supernet (``genome: null``) or the genome's subnet, see
    :func:`trackers.registry.build_vlt_backbone`."""
    backbone = build_vlt_backbone(cfg, pretrained)
    neck, head = _neck_head(cfg, backbone.channels)
    return VLTRPNPP(backbone, neck, head, cfg.stages, cfg.template_size, cfg.search_size,
                    backbone.config.language_dim, cfg.head.ratios, cfg.head.scales)


def build_siamrpnpp(cfg: RPNModelConfig, pretrained: bool = True) -> SiamRPNPP:
    """SiamRPN++ from its model config (the toolkit's dilated ResNet-50; ImageNet weights from
    ``model.resnet.pretrained`` when ``pretrained``)."""
    from trackers.backbones.resnet import resnet50

    backbone = resnet50(cfg.resnet.width_mult, cfg.resnet.pretrained if pretrained else None)
    neck, head = _neck_head(cfg, backbone.channels)
    return SiamRPNPP(backbone, neck, head, cfg.stages, cfg.template_size, cfg.search_size, cfg.head.ratios,
                     cfg.head.scales)


def _entry(build) -> ModelEntry:
    from trackers.inference.rpn import RPNTrackerConfig
    from trackers.losses.rpn import RPNLossConfig

    return ModelEntry(RPNModelConfig, RPNLossConfig, RPNTrackerConfig, build, Lazy("trackers.actors.rpn:RPNActor"),
                      Lazy("trackers.inference.rpn:RPNTracker"))


VLT_RPNPP_ENTRY = _entry(build_vlt_rpnpp)
SIAMRPNPP_ENTRY = _entry(build_siamrpnpp)
