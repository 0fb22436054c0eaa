"""SiamCAR (Guo et al., CVPR 2020): Siamese backbone, adjust neck, depthwise correlation and the CAR head.

:class:`SiamCARBase` holds everything the vision-only :class:`SiamCAR` and the vision-language
:class:`trackers.models.vlt_scar.VLTSCAR` share: the neck, the head, the crop geometry and the split into
:meth:`SiamCARBase.template` (once per video, cached by the tracker) and :meth:`SiamCARBase.track` (every frame),
the last two from :class:`~trackers.models.base.SiameseTrackerModel`. Subclasses only say how their backbone is
called.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from asearch.errors import ArchitectureError
from trackers.heads.car import SiamCARHead, location_offset, score_locations, score_size
from trackers.models.base import SharedBackboneMixin, SiameseTrackerModel
from trackers.necks import AdjustNeck, feature_size

__all__ = ["SiamCARBase", "SiamCAR"]


class SiamCARBase(SiameseTrackerModel):
    """Neck + head + geometry of the SiamCAR family; see :meth:`forward`, :meth:`template`, :meth:`track`.

    Args:
        neck: :class:`AdjustNeck` over the used stages.
        head: :class:`SiamCARHead`.
        stages: 1-based backbone stages fed to the neck (all at ``stride``; SiamCAR / VLT_SCAR: 2, 3, 4).
        template_size, search_size: crop sides in pixels (127 / 255).
        stride: total stride of the used stages (8).
    """

    def __init__(self, neck: AdjustNeck, head: SiamCARHead, stages: Sequence[int] = (2, 3, 4),
                 template_size: int = 127, search_size: int = 255, stride: int = 8):
        super().__init__()
        self.neck = neck
        self.head = head
        self.stages = [int(s) for s in stages]
        self.template_size = int(template_size)
        self.search_size = int(search_size)
        self.stride = int(stride)
        self.template_map_size = feature_size(self.template_size)
        self.location_offset = location_offset(self.template_size, self.stride, neck.center_size)
        self.score_size = score_size(self.template_size, self.search_size, neck.center_size)
        if self.score_size < 1:
            raise ArchitectureError(f"search_size {search_size} is too small for template_size {template_size}")

    # -- geometry ---------------------------------------------------------------------------------------------------
    def locations(self, size: Optional[int] = None, device: Optional[torch.device] = None) -> torch.Tensor:
        """Search-crop pixels ``(x, y)`` of the score-map locations (row-major), see :func:`location_offset`."""
        return score_locations(size or self.score_size, self.stride, self.location_offset, device)

    def _select(self, feats: Sequence[torch.Tensor], branch: str) -> List[torch.Tensor]:
        if len(feats) < max(self.stages):
            raise ArchitectureError(f"backbone gave {len(feats)} stage maps, model.stages asks for {self.stages}")
        out = [feats[s - 1] for s in self.stages]
        if branch == "template" and out[0].shape[-1] != self.template_map_size:
            raise ArchitectureError(
                f"template map is {out[0].shape[-1]} cells wide, expected {self.template_map_size} for a "
                f"{self.template_size} crop at stride {self.stride}: the location mapping would be wrong "
                "(check model.template_size and the backbone's strides)")
        return out

    # -- head part (see :class:`SiameseTrackerModel`) ---------------------------------------------------------------
    def embed_template(self, zf: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The template's correlation kernels (neck output, centre-cropped)."""
        return {"kernels": self.neck(self._select(zf, "template"), crop=True)}

    def predict(self, embedded: Mapping[str, Any], xf: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``{'cls': B×2×M×M, 'cen': B×1×M×M, 'loc': B×4×M×M}`` from the kernels and the search maps."""
        return self.head(embedded["kernels"], self.neck(self._select(xf, "search")))

    def recalibration_forward(self, template: torch.Tensor, search: torch.Tensor,
                              language: Optional[torch.Tensor] = None, genome: Any = None,
                              template_box: Optional[torch.Tensor] = None,
                              use_template_language: Optional[torch.Tensor] = None) -> None:
        """BatchNorm recalibration: backbone and neck of both crops; the CAR head (cross-correlation, GroupNorm
        towers) is left out unless it holds a BatchNorm."""
        zf, xf, _ = self.backbone_pair(template, search, language, genome, template_box, None, use_template_language)
        kernels = self.embed_template(zf)["kernels"]
        search_maps = self.neck(self._select(xf, "search"))
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.head.modules()):
            self.head(kernels, search_maps)


class SiamCAR(SharedBackboneMixin, SiamCARBase):
    """The vision-only SiamCAR baseline: one ResNet-50 (shared by both crops); language arguments are ignored."""

    def __init__(self, backbone: nn.Module, neck: AdjustNeck, head: SiamCARHead, stages: Sequence[int] = (2, 3, 4),
                 template_size: int = 127, search_size: int = 255):
        super().__init__(neck, head, stages, template_size, search_size, stride=getattr(backbone, "stride", 8))
        self.backbone = backbone
