"""Bilinear ROI align with plain torch ops (``grid_sample``), no torchvision.

Conventions (those of Mask R-CNN's ROI align with ``aligned=True``):

* Boxes are ``x1, y1, x2, y2`` in input pixels; ``spatial_scale`` (e.g. 1/8) maps them onto the feature map.
* Continuous feature coordinates put the edges of feature pixel ``j`` at ``j`` and ``j + 1``: its value sits at the
  pixel centre ``j + 0.5``.
* The box is cut into ``output_size`` × ``output_size`` bins and each bin takes ONE bilinear sample at its centre
  (sampling ratio 1); samples beyond the outermost pixel centres take the border value (clamped, as ROI align does
  for points within one pixel of the map).
"""
from __future__ import annotations

from typing import Tuple, Union

import torch
import torch.nn.functional as F

__all__ = ["roi_align", "roi_pool_vector"]


def _pair(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    oh, ow = size
    return int(oh), int(ow)


def roi_align(feature: torch.Tensor, boxes: torch.Tensor, output_size: Union[int, Tuple[int, int]],
              spatial_scale: float = 1.0) -> torch.Tensor:
    """ROI-align ``boxes`` on ``feature`` (B×C×H×W) -> K×C×oh×ow.

    ``boxes``: K×4 (``x1, y1, x2, y2``; box k on image k, so K = B) or K×5 (``batch_index, x1, y1, x2, y2``).
    """
    if feature.dim() != 4:
        raise ValueError(f"roi_align: feature must be B×C×H×W, got shape {tuple(feature.shape)}")
    if boxes.dim() != 2 or boxes.shape[1] not in (4, 5):
        raise ValueError(f"roi_align: boxes must be K×4 or K×5, got shape {tuple(boxes.shape)}")
    b, _, h, w = feature.shape
    boxes = boxes.to(device=feature.device, dtype=feature.dtype)
    if boxes.shape[1] == 5:
        index = boxes[:, 0].long()
        xyxy = boxes[:, 1:]
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= b):
            raise ValueError(f"roi_align: batch index outside 0..{b - 1}")
        source = feature[index]
    else:
        if boxes.shape[0] != b:
            raise ValueError(f"roi_align: {boxes.shape[0]} boxes of K×4 form for a batch of {b} (one box per image)")
        xyxy, source = boxes, feature
    oh, ow = _pair(output_size)
    x1, y1, x2, y2 = (xyxy * spatial_scale).unbind(1)
    # bin centres in continuous coordinates
    tx = (torch.arange(ow, device=feature.device, dtype=feature.dtype) + 0.5) / ow
    ty = (torch.arange(oh, device=feature.device, dtype=feature.dtype) + 0.5) / oh
    xs = x1[:, None] + tx[None, :] * (x2 - x1)[:, None]  # K×ow
    ys = y1[:, None] + ty[None, :] * (y2 - y1)[:, None]  # K×oh
    # grid_sample with align_corners=False: -1 is the left edge of pixel 0 (coordinate 0), +1 the right edge (W)
    gx = (2.0 * xs / w - 1.0)[:, None, :].expand(-1, oh, -1)
    gy = (2.0 * ys / h - 1.0)[:, :, None].expand(-1, -1, ow)
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)


def roi_pool_vector(feature: torch.Tensor, boxes: torch.Tensor, output_size: Union[int, Tuple[int, int]],
                    spatial_scale: float = 1.0) -> torch.Tensor:
    """ROI-align then average the ``output_size``² samples: one C-vector per box (K×C), e.g. e_v of Eq. 3."""
    return roi_align(feature, boxes, output_size, spatial_scale).mean(dim=(2, 3))
