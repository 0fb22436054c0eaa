"""Precise RoI Pooling (PrRoI Pooling; Jiang et al., "Acquisition of Localization Confidence for Accurate Object
Detection", ECCV 2018, IoU-Net), in pure PyTorch.

Each output bin is the exact integral of the bilinearly interpolated feature map over the bin, divided by the bin's
area; there is no sampling grid, so the result is continuous in the box coordinates and differentiable with respect
to both the features and the boxes (CTRTNL, paper 004 §3.2, pools its proposals with it).

Closed form. The bilinear interpolant is ``f(x, y) = Σ_{j,i} F[j, i] · h(x - i) · h(y - j)`` with the hat function
``h(t) = max(0, 1 - |t|)``, so it is separable and the integral over ``[x1, x2] × [y1, y2]`` is
``Σ_{j,i} F[j, i] · Ix(i) · Iy(j)``, ``Ix(i) = ∫_{x1}^{x2} h(x - i) dx = G(x2 - i) - G(x1 - i)`` with ``G`` the
antiderivative of ``h`` (:func:`hat_integral`). Pooling is then two small matrix products per RoI.

Conventions (the reference CUDA implementation's, ``vacancy/PreciseRoIPooling``):

* Coordinates: feature pixel ``(j, i)`` sits at the point ``(x = i, y = j)`` (no half-pixel offset); a RoI
  ``(x1, y1, x2, y2)`` is multiplied by ``spatial_scale`` first (e.g. ``1/8`` for image boxes on a stride-8 map).
* Outside the map the features are zero: only the grid points ``0..W-1`` and ``0..H-1`` carry hat functions, so
  the interpolant fades linearly to 0 between the last pixel and one pixel beyond it, and is 0 further out. A bin
  that lies partly outside is still divided by its whole area (it is not clipped to the map), as the reference does.
* A RoI with ``x2 <= x1`` (or ``y2 <= y1``) has zero-area bins, and zero-area bins give 0 (with zero gradient).
"""
from __future__ import annotations

from typing import Tuple, Union

import torch

__all__ = ["prroi_pool2d", "hat_integral"]


def hat_integral(t: torch.Tensor) -> torch.Tensor:
    """``G(t) = ∫_{-∞}^{t} max(0, 1 - |s|) ds``: 0 below -1, ``(t+1)²/2`` on [-1, 0], ``1 - (1-t)²/2`` on [0, 1],
    1 above 1."""
    t = t.clamp(-1.0, 1.0)
    return torch.where(t < 0, 0.5 * (t + 1) ** 2, 1 - 0.5 * (1 - t) ** 2)


def _bin_weights(start: torch.Tensor, end: torch.Tensor, bins: int, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per RoI, per bin, per grid point ``∫_bin h(x - i) dx`` (``K×bins×size``) and the bins' widths (``K×bins``)."""
    width = (end - start).clamp(min=0) / bins                                  # K
    steps = torch.arange(bins + 1, dtype=start.dtype, device=start.device)
    edges = start[:, None] + steps[None, :] * width[:, None]                   # K × (bins+1)
    grid = torch.arange(size, dtype=start.dtype, device=start.device)
    g = hat_integral(edges[:, :, None] - grid[None, None, :])                  # K × (bins+1) × size
    return g[:, 1:] - g[:, :-1], width


def prroi_pool2d(features: torch.Tensor, rois: torch.Tensor, output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0) -> torch.Tensor:
    """Precise RoI pooling of ``features`` (``B×C×H×W``) over ``rois`` (``K×5``: batch index, x1, y1, x2, y2).

    Returns ``K×C×h×w`` with ``(h, w) = output_size``: bin ``(p, q)`` of RoI ``k`` is the integral of the bilinear
    interpolant of ``features[b_k]`` over the bin divided by the bin area (0 for a zero-area bin). Coordinates are
    scaled by ``spatial_scale``; see the module docstring for the pixel and border conventions. Differentiable with
    respect to ``features`` and the box coordinates of ``rois``.
    """
    if features.dim() != 4:
        raise ValueError(f"prroi_pool2d: features must be B×C×H×W, got shape {tuple(features.shape)}")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"prroi_pool2d: rois must be K×5 (batch index, x1, y1, x2, y2), got {tuple(rois.shape)}")
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if oh < 1 or ow < 1:
        raise ValueError(f"prroi_pool2d: output_size must be positive, got {(oh, ow)}")
    b, c, h, w = features.shape
    k = rois.shape[0]
    out = features.new_zeros(k, c, oh, ow)
    if k == 0:
        return out
    index = rois[:, 0].detach()
    if not torch.equal(index, index.round()) or index.min() < 0 or index.max() >= b:
        raise ValueError(f"prroi_pool2d: roi batch indices must be integers in [0, {b - 1}], got {index.tolist()}")
    index = index.long()
    box = rois[:, 1:].to(features.dtype) * spatial_scale
    wx, bw = _bin_weights(box[:, 0], box[:, 2], ow, w)                         # K×ow×W, K
    wy, bh = _bin_weights(box[:, 1], box[:, 3], oh, h)                         # K×oh×H, K
    area = bh * bw                                                             # every bin of a RoI has the same area
    scale = torch.where(area > 0, 1.0 / area.clamp(min=torch.finfo(area.dtype).tiny), torch.zeros_like(area))
    pieces = []
    for i in range(b):                                                         # one batched product per image
        sel = (index == i).nonzero(as_tuple=True)[0]
        if sel.numel():
            pooled = torch.einsum("chw,kph,kqw->kcpq", features[i], wy[sel], wx[sel])
            pieces.append((sel, pooled * scale[sel, None, None, None]))
    order = torch.cat([s for s, _ in pieces])
    return out.index_copy(0, order, torch.cat([p for _, p in pieces]))
