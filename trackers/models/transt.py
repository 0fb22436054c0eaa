"""TransT (Chen et al., CVPR 2021) and VLT_TT (paper 000 §3.4, §4.1): a backbone, a 1x1 projection to ``d_model``,
TransT's feature-fusion network (:mod:`trackers.heads.transt`) and its classification / box MLPs.

* :class:`TransT`, vision-only: ResNet-50 cut after ``layer3`` (1024 channels at width 1). TransT's ResNet keeps
  stride 8 there: the stride-2 of ``layer3`` is removed and its 3x3 convolutions are dilated by 2 (TransT §3.1; COST
  §3.2 restates it), exactly the ``layer3`` of :mod:`trackers.backbones.resnet`. Template 128 -> 16x16 map,
  search 256 -> 32x32 map = 1024 locations (TransT's 1024 predictions). **Note**: one might read "ResNet-50 layer3"
  as stride 16 (8x8 / 16x16 maps); TransT does not use that, and neither does this module.
* :class:`VLTTT`: the VLT network (searched template/search paths with ModaMixer) replaces the ResNet; its LAST
  stage (``640·width`` channels, stride 8 after Table 3's layout) feeds the projection, so the maps are the same
  16x16 / 32x32 as TransT's. The VLT backbone is a supernet (genome per call) or a fixed subnet.

Locations: search-map cell ``(r, c)`` sits at search-crop pixel ``(stride·c, stride·r)`` (:mod:`trackers.necks`);
the box MLP predicts the normalised box ``cx, cy, w, h`` of the search crop at every location (TransT), so the box
in crop pixels is ``box · search_size``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from asearch.errors import ArchitectureError, ConfigError
from trackers.heads.car import score_locations
from trackers.heads.transt import FeatureFusionNetwork, SinePositionEncoding, TransTHead, flatten_map
from trackers.models.base import SharedBackboneMixin, SiameseTrackerModel
from trackers.models.vlt_backbone import VLTBackboneMixin
from trackers.inference.transt import TransTTrackerConfig
from trackers.losses.transt import TransTLossConfig
from trackers.necks import feature_size
from trackers.registry import (RESNET_INIT, SPOS_INIT, Lazy, ModelEntry, ResNetConfig, build_vlt_backbone,
                               check_supernet_sizes)

__all__ = ["TransTBase", "TransT", "VLTTT", "TransTModelConfig", "build_vlt_tt", "build_transt", "VLT_TT_ENTRY",
           "TRANST_ENTRY"]


class TransTBase(SiameseTrackerModel):
    """Projection + fusion network + heads + geometry of the TransT family; see :meth:`forward`, :meth:`template`
    and :meth:`track` (the template branch's tokens are computed once per video and cached by the tracker).
    Outputs ``{'logits': B×N×2, 'boxes': B×N×4}``: N = L², class 0 = foreground, boxes normalised ``cx, cy, w, h``.

    Args:
        in_channels: channels of the backbone map used (``stage``).
        fusion: :class:`FeatureFusionNetwork`.
        head: :class:`TransTHead`.
        stage: 1-based backbone stage whose map is used (TransT: 3 = ``layer3``; VLT_TT: 4).
        template_size, search_size: crop sides in pixels (128 / 256).
        stride: total stride of that stage (8).
    """

    def __init__(self, in_channels: int, fusion: FeatureFusionNetwork, head: TransTHead, stage: int,
                 template_size: int = 128, search_size: int = 256, stride: int = 8):
        super().__init__()
        d = fusion.d_model
        self.input_proj = nn.Conv2d(int(in_channels), d, 1)
        self.position = SinePositionEncoding(d)
        self.fusion = fusion
        self.head = head
        self.stage = int(stage)
        self.template_size = int(template_size)
        self.search_size = int(search_size)
        self.stride = int(stride)
        self.template_map_size = feature_size(self.template_size)
        self.map_size = feature_size(self.search_size)
        if self.map_size < 1 or self.template_map_size < 1:
            raise ArchitectureError(f"crop sizes {template_size}/{search_size} give empty feature maps")

    # -- geometry ---------------------------------------------------------------------------------------------------
    def locations(self, size: Optional[int] = None, device: Optional[torch.device] = None) -> torch.Tensor:
        """Search-crop pixels ``(x, y)`` of the ``L×L`` map locations, row-major (location ``c`` at ``stride·c``)."""
        return score_locations(size or self.map_size, self.stride, 0.0, device)

    def _tokens(self, feats: Sequence[torch.Tensor], branch: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """The used stage's map -> projected tokens ``B×N×d`` and their position encodings ``B×N×d``."""
        if len(feats) < self.stage:
            raise ArchitectureError(f"backbone gave {len(feats)} stage maps, the model uses stage {self.stage}")
        x = feats[self.stage - 1]
        expected = self.template_map_size if branch == "template" else self.map_size
        if x.shape[-1] != expected or x.shape[-2] != expected:
            size = self.template_size if branch == "template" else self.search_size
            raise ArchitectureError(
                f"{branch} map is {x.shape[-2]}x{x.shape[-1]} cells, expected {expected}x{expected} for a {size} crop "
                f"at stride {self.stride} (check model.template_size / model.search_size and the crops)")
        x = self.input_proj(x)
        return flatten_map(x), flatten_map(self.position(x))

    def _predict(self, z: torch.Tensor, pos_z: torch.Tensor, x: torch.Tensor, pos_x: torch.Tensor
                 ) -> Dict[str, torch.Tensor]:
        return self.head(self.fusion(z, x, pos_z, pos_x))

    # -- head part (see :class:`SiameseTrackerModel`) ---------------------------------------------------------------
    def embed_template(self, zf: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The template's projected tokens and their position encodings."""
        z, pos_z = self._tokens(zf, "template")
        return {"tokens": z, "pos": pos_z}

    def predict(self, embedded: Mapping[str, Any], xf: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``{'logits': B×N×2, 'boxes': B×N×4}`` (N = L², class 0 = foreground, boxes normalised ``cx, cy, w, h``):
        fusion of the template tokens with the search tokens, then the heads."""
        x, pos_x = self._tokens(xf, "search")
        return self._predict(embedded["tokens"], embedded["pos"], x, pos_x)


class TransT(SharedBackboneMixin, TransTBase):
    """The vision-only TransT baseline: one ResNet-50 cut after ``layer3`` for both crops; language is ignored.

    Args:
        backbone: a :class:`~trackers.backbones.resnet.ResNet` (its ``layer3`` map is used).
        fusion, head, template_size, search_size: as :class:`TransTBase`.
    """

    def __init__(self, backbone: nn.Module, fusion: FeatureFusionNetwork, head: TransTHead,
                 template_size: int = 128, search_size: int = 256):
        super().__init__(backbone.channels[2], fusion, head, 3, template_size, search_size,
                         stride=getattr(backbone, "stride", 8))
        self.backbone = backbone


class VLTTT(VLTBackboneMixin, TransTBase):
    """VLT_TT: TransT on the VLT supernet or subnet (last stage, ``640·width`` channels).

    Args:
        backbone: a ``VLTSupernet`` (genome per call) or ``VLTSubnet`` (genome fixed), or anything with the same
            ``forward`` / ``forward_template`` / ``forward_search`` interface, ``channels`` and ``stride``.
        fusion, head, template_size, search_size: as :class:`TransTBase`.
        language_dim: width of the language vector (read from ``backbone.config`` when omitted).
    """

    def __init__(self, backbone: nn.Module, fusion: FeatureFusionNetwork, head: TransTHead,
                 template_size: int = 128, search_size: int = 256, language_dim: Optional[int] = None):
        channels = list(backbone.channels)
        super().__init__(channels[-1], fusion, head, len(channels), template_size, search_size,
                         stride=getattr(backbone, "stride", 8))
        self.set_vlt_backbone(backbone, language_dim)


@dataclass
class TransTModelConfig:
    """Model section of the TransT family (``name``: ``vlt_tt`` or ``transt``); defaults are TransT's.

    ``d_model``/``nhead``/``num_fusion_layers``/``dim_feedforward``/``dropout`` size the fusion network,
    ``head_layers`` the MLPs. ``supernet``/``genome``/``spos_checkpoint`` as in VLT_SCAR (vlt_tt);
    ``resnet`` (transt): ``width_mult`` and an optional local ImageNet ResNet-50 file ``pretrained``.
    """

    name: str = "vlt_tt"
    template_size: int = 128
    search_size: int = 256
    d_model: int = 256
    nhead: int = 8
    num_fusion_layers: int = 4
    dim_feedforward: int = 2048
    dropout: float = 0.1
    head_layers: int = 3
    supernet: Dict[str, Any] = field(default_factory=dict)
    genome: Optional[List[List[int]]] = None
    spos_checkpoint: Optional[str] = None
    resnet: ResNetConfig = field(default_factory=ResNetConfig)

    def __post_init__(self) -> None:
        if self.name not in ("vlt_tt", "transt"):
            raise ConfigError(f"model.name {self.name!r} is not of the TransT family (vlt_tt, transt)")
        for key in ("template_size", "search_size", "d_model", "nhead", "num_fusion_layers", "dim_feedforward",
                    "head_layers"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.d_model % self.nhead or self.d_model % 2:
            raise ConfigError(f"model.d_model ({self.d_model}) must be even and divisible by model.nhead "
                              f"({self.nhead})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        check_supernet_sizes(self)
        if self.name == "transt":
            for key in ("supernet", "genome", "spos_checkpoint"):
                if getattr(self, key):
                    raise ConfigError(f"model.{key} applies to vlt_tt only (model.name is 'transt': a ResNet-50, "
                                      "configured in model.resnet)")


# ----------------------------------------------------------------------------------------------------------------------
# builders and registry entries (see :mod:`trackers.registry`)
def _fusion_and_head(cfg: TransTModelConfig) -> Tuple[FeatureFusionNetwork, TransTHead]:
    fusion = FeatureFusionNetwork(cfg.d_model, cfg.nhead, cfg.num_fusion_layers, cfg.dim_feedforward, cfg.dropout)
    return fusion, TransTHead(cfg.d_model, cfg.head_layers)


def build_vlt_tt(cfg: TransTModelConfig, pretrained: bool = True) -> VLTTT:
    """VLT_TT from its model config: the VLT supernet (``genome: null``) or the genome's subnet, see
    :func:`trackers.registry.build_vlt_backbone`."""
    backbone = build_vlt_backbone(cfg, pretrained)
    return VLTTT(backbone, *_fusion_and_head(cfg), template_size=cfg.template_size, search_size=cfg.search_size,
                 language_dim=backbone.config.language_dim)


def build_transt(cfg: TransTModelConfig, pretrained: bool = True) -> TransT:
    """The TransT baseline from its model config (ResNet-50 cut after ``layer3``; ImageNet weights from
    ``model.resnet.pretrained`` when ``pretrained``)."""
    from trackers.backbones.resnet import resnet50

    backbone = resnet50(cfg.resnet.width_mult, cfg.resnet.pretrained if pretrained else None, num_layers=3)
    return TransT(backbone, *_fusion_and_head(cfg), template_size=cfg.template_size, search_size=cfg.search_size)


_ACTOR = Lazy("trackers.actors.transt:TransTActor")
_TRACKER = Lazy("trackers.inference.transt:TransTTracker")
VLT_TT_ENTRY = ModelEntry(TransTModelConfig, TransTLossConfig, TransTTrackerConfig, build_vlt_tt, _ACTOR, _TRACKER,
                          "supernet.language_dim", (SPOS_INIT,))
TRANST_ENTRY = ModelEntry(TransTModelConfig, TransTLossConfig, TransTTrackerConfig, build_transt, _ACTOR, _TRACKER,
                          None, (RESNET_INIT,))
