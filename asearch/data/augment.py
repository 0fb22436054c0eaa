"""Photometric and geometric augmentations of template/search crops (float32 H×W×3 RGB arrays, values 0..255).

No hue jitter on purpose: colour words ("the red car") must stay true after augmentation. A horizontal flip mirrors
left and right, so the language of a flipped pair goes through :func:`flip_words`.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

__all__ = ["to_gray", "gaussian_blur", "brightness_contrast", "hflip_image", "hflip_box_xyxy", "flip_words"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 luma weights


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grey version of an RGB image, kept on three channels: ``Y = 0.299 R + 0.587 G + 0.114 B``."""
    y = image.astype(np.float32) @ _LUMA
    return np.repeat(y[..., None], 3, axis=2)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel side ``2·ceil(3σ)+1``)."""
    import cv2

    if sigma <= 0:
        return image.astype(np.float32)
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(image.astype(np.float32), (k, k), sigmaX=float(sigma), sigmaY=float(sigma))


def brightness_contrast(image: np.ndarray, brightness: float = 1.0, contrast: float = 1.0) -> np.ndarray:
    """``out = clip((b·x − m)·c + m)`` with ``m`` the mean grey level (luma) of ``b·x``: ``b`` scales the
    intensity, ``c`` blends with (``c < 1``) or moves away from (``c > 1``) the mean grey; no hue rotation."""
    x = image.astype(np.float32) * float(brightness)
    m = float((x @ _LUMA).mean())
    return np.clip((x - m) * float(contrast) + m, 0.0, 255.0)


def hflip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an H×W×C image left-right."""
    return np.ascontiguousarray(image[:, ::-1])


def hflip_box_xyxy(box: Sequence[float], width: int) -> np.ndarray:
    """Mirror an ``x1, y1, x2, y2`` box in an image of ``width`` pixels (pixel ``u`` goes to ``width − 1 − u``)."""
    x1, y1, x2, y2 = [float(v) for v in box]
    return np.array([width - 1 - x2, y1, width - 1 - x1, y2], np.float64)


_LR = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def flip_words(text: str) -> str:
    """Swap the words *left* and *right* (whole words, also inside ``top-left``; case kept) for a mirrored image."""
    def swap(m: "re.Match[str]") -> str:
        word = m.group(0)
        new = "right" if word.lower() == "left" else "left"
        if word.isupper():
            return new.upper()
        if word[0].isupper():
            return new.capitalize()
        return new

    return _LR.sub(swap, text)
