"""Square crops around a target, shared by the training pair sampler and the trackers at inference.

A crop is defined by a centre ``(cx, cy)`` and a side ``s`` in image pixels, resampled to ``out_size``; outside the
image it is padded with the image's mean colour (SiamFC/SiamCAR practice). Boxes map between image and crop
coordinates with :func:`box_to_crop` / :func:`box_from_crop`.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

__all__ = ["context_side", "crop_square", "channel_mean", "box_to_crop", "box_from_crop", "xywh_to_xyxy",
           "xyxy_to_xywh"]


def context_side(w: float, h: float, context_amount: float = 0.5) -> float:
    """Side of the template square: ``sqrt((w + p)(h + p))`` with ``p = context_amount * (w + h)`` (SiamFC)."""
    p = context_amount * (w + h)
    return math.sqrt(max(w + p, 1e-6) * max(h + p, 1e-6))


def crop_square(image: np.ndarray, center: Tuple[float, float], side: float, out_size: int,
                pad_value: Sequence[float] = None) -> np.ndarray:
    """Crop the square of side ``side`` centred on ``center`` and resize it to ``out_size``×``out_size``.

    Returns a float32 H×W×3 array with values in the image's range (0..255). Padding uses ``pad_value``
    (default: the image's per-channel mean).
    """
    import cv2

    cx, cy = float(center[0]), float(center[1])
    scale = out_size / max(float(side), 1e-6)
    # affine map: crop pixel u -> image pixel cx + (u - (out-1)/2) / scale
    a = scale
    bx = (out_size - 1) / 2.0 - a * cx
    by = (out_size - 1) / 2.0 - a * cy
    m = np.array([[a, 0.0, bx], [0.0, a, by]], dtype=np.float64)
    if pad_value is None:
        pad_value = channel_mean(image)
    crop = cv2.warpAffine(
        image.astype(np.float32), m, (out_size, out_size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in pad_value),
    )
    return crop


def channel_mean(image: np.ndarray) -> Tuple[float, ...]:
    """Per-channel mean of an H×W×C image. For uint8 images with C <= 4 OpenCV's vectorised sum (exact integer
    sums, the same values as numpy's, ~6x faster on a 128 px frame); other images: numpy."""
    import cv2

    c = image.shape[-1]
    if c <= 4 and image.dtype == np.uint8:
        return tuple(cv2.mean(np.ascontiguousarray(image))[:c])
    return tuple(image.reshape(-1, c).mean(axis=0))


def box_to_crop(box_xywh: Sequence[float], center: Tuple[float, float], side: float, out_size: int) -> np.ndarray:
    """Map an image box ``x, y, w, h`` into the crop's coordinates (returns ``x, y, w, h``)."""
    scale = out_size / side
    x, y, w, h = [float(v) for v in box_xywh]
    ox = (out_size - 1) / 2.0 - scale * center[0]
    oy = (out_size - 1) / 2.0 - scale * center[1]
    return np.array([x * scale + ox, y * scale + oy, w * scale, h * scale])


def box_from_crop(box_xywh: Sequence[float], center: Tuple[float, float], side: float, out_size: int) -> np.ndarray:
    """Inverse of :func:`box_to_crop`: a crop box ``x, y, w, h`` back to image coordinates."""
    scale = out_size / side
    x, y, w, h = [float(v) for v in box_xywh]
    ox = (out_size - 1) / 2.0 - scale * center[0]
    oy = (out_size - 1) / 2.0 - scale * center[1]
    return np.array([(x - ox) / scale, (y - oy) / scale, w / scale, h / scale])


def xywh_to_xyxy(box: np.ndarray) -> np.ndarray:
    """``x, y, w, h`` -> ``x1, y1, x2, y2`` (last axis)."""
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., :2] + box[..., 2:]], axis=-1)


def xyxy_to_xywh(box: np.ndarray) -> np.ndarray:
    """``x1, y1, x2, y2`` -> ``x, y, w, h`` (last axis)."""
    box = np.asarray(box, dtype=np.float64)
    return np.concatenate([box[..., :2], box[..., 2:] - box[..., :2]], axis=-1)
