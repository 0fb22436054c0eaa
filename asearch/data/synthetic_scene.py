"""The synthetic benchmark's scene parts (:mod:`asearch.data.synthetic` builds its videos from them): the palette
(shapes, textures, colour words), drawing a textured shape, backgrounds and occluder patches, the motion curves, and
the sentence's words."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from asearch.errors import ConfigError

__all__ = ["SHAPES", "TEXTURES", "COLORS", "UNLIT", "shape_mask", "position_word"]

#: Shape names; every shape fills its bounding box exactly, so the box does not depend on the shape.
SHAPES: Tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon")
#: Texture names; textures mix the colour with a darker shade of the same hue (the colour word stays true).
TEXTURES: Tuple[str, ...] = ("solid", "stripes", "checker", "dots")
#: Colour words and their RGB values: saturated hues, far from the grey backgrounds and occluders.
COLORS: Dict[str, Tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 215, 40),
    "purple": (140, 50, 190),
    "orange": (245, 135, 25),
    "cyan": (40, 200, 210),
    "pink": (235, 60, 170),
}
#: The colour of every object under the unlit opening's colourless light (see ``SyntheticConfig.unlit_frames``).
UNLIT: Tuple[int, int, int] = (185, 185, 185)
_DARK = 0.55  # the second shade of a texture: the colour times this factor (same chromaticity)
_BACKGROUNDS = ("noise", "gradient", "stripes", "checker")


# ----------------------------------------------------------------------------------------------------------------
# shapes, textures, backgrounds


def _normalise(points: np.ndarray) -> np.ndarray:
    """Rescale a polygon so that it spans exactly [-1, 1] on both axes."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - lo) / (hi - lo) * 2.0 - 1.0


def _circle(n: int = 40, r: float = 1.0) -> np.ndarray:
    a = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _polygons(shape: str) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """(filled polygons, holes) of ``shape`` in normalised [-1, 1]² coordinates."""
    if shape == "circle":
        return [_circle()], []
    if shape == "ring":
        return [_circle()], [_circle(r=0.55)]
    if shape == "square":
        return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)], []
    if shape == "triangle":
        return [np.array([[0, -1], [1, 1], [-1, 1]], float)], []
    if shape == "diamond":
        return [np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], float)], []
    if shape == "hexagon":
        a = np.arange(6) * math.pi / 3
        return [_normalise(np.stack([np.cos(a), np.sin(a)], axis=1))], []
    if shape == "star":
        a = -math.pi / 2 + np.arange(10) * math.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return [_normalise(np.stack([r * np.cos(a), r * np.sin(a)], axis=1))], []
    if shape == "cross":
        t = 0.33
        pts = [[-t, -1], [t, -1], [t, -t], [1, -t], [1, t], [t, t], [t, 1], [-t, 1], [-t, t], [-1, t], [-1, -t], [-t, -t]]
        return [np.array(pts, float)], []
    raise ConfigError(f"unknown synthetic shape {shape!r} (known: {', '.join(SHAPES)})")


_POLY_CACHE: Dict[str, Tuple[List[np.ndarray], List[np.ndarray]]] = {}
_SHIFT = 4  # sub-pixel bits for cv2.fillPoly


def _fill(mask: np.ndarray, polys: Sequence[np.ndarray], value: int) -> None:
    import cv2

    pts = [np.round(p * (1 << _SHIFT)).astype(np.int32) for p in polys]
    cv2.fillPoly(mask, pts, value, lineType=cv2.LINE_AA, shift=_SHIFT)


def shape_mask(shape: str, cx: float, cy: float, w: float, h: float, x0: int, y0: int,
               out_w: int, out_h: int) -> np.ndarray:
    """Anti-aliased coverage (float32 in [0, 1], ``out_h``×``out_w``) of ``shape`` spanning the box centred at
    ``(cx, cy)`` with extent ``w``×``h``, drawn into a window whose top-left pixel is ``(x0, y0)``."""
    if shape not in _POLY_CACHE:
        _POLY_CACHE[shape] = _polygons(shape)
    fills, holes = _POLY_CACHE[shape]
    scale = np.array([w / 2.0, h / 2.0])
    offset = np.array([cx - x0, cy - y0])
    mask = np.zeros((out_h, out_w), np.uint8)
    _fill(mask, [p * scale + offset for p in fills], 255)
    if holes:
        _fill(mask, [p * scale + offset for p in holes], 0)
    return mask.astype(np.float32) / 255.0


def _texture(texture: str, color: Sequence[float], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """RGB float texture on normalised object coordinates ``u, v`` (both in [-1, 1] over the object's box)."""
    c = np.asarray(color, np.float32)
    if texture == "solid":
        dark = np.zeros_like(u, dtype=bool)
    elif texture == "stripes":
        dark = np.floor((u + v) * 2.0).astype(np.int64) % 2 == 1
    elif texture == "checker":
        dark = (np.floor((u + 1) * 2.0) + np.floor((v + 1) * 2.0)).astype(np.int64) % 2 == 1
    elif texture == "dots":
        fu, fv = (u + 1) * 2.0 % 1.0 - 0.5, (v + 1) * 2.0 % 1.0 - 0.5
        dark = fu * fu + fv * fv < 0.09
    else:
        raise ConfigError(f"unknown synthetic texture {texture!r} (known: {', '.join(TEXTURES)})")
    return np.where(dark[..., None], c * _DARK, c)


def _draw(frame: np.ndarray, shape: str, texture: str, color: Sequence[float],
          cx: float, cy: float, w: float, h: float) -> Tuple[np.ndarray, int, int]:
    """Composite a textured, anti-aliased shape onto ``frame`` (float32 H×W×3) in place.

    Returns the shape's coverage (float32 in [0, 1]) and the top-left pixel ``(x0, y0)`` of its window.
    """
    size_h, size_w = frame.shape[:2]
    x0, y0 = max(int(math.floor(cx - w / 2)) - 1, 0), max(int(math.floor(cy - h / 2)) - 1, 0)
    x1, y1 = min(int(math.ceil(cx + w / 2)) + 2, size_w), min(int(math.ceil(cy + h / 2)) + 2, size_h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.float32), 0, 0
    cover = shape_mask(shape, cx, cy, w, h, x0, y0, x1 - x0, y1 - y0)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    tex = _texture(texture, color, (xs - cx) / (w / 2.0), (ys - cy) / (h / 2.0))
    roi = frame[y0:y1, x0:x1]
    roi += (tex - roi) * cover[..., None]
    return cover, x0, y0


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    import cv2

    grid = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, size: int) -> Tuple[str, np.ndarray]:
    """A textured, low-saturation background (float32 size×size×3) and its kind."""
    kind = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    base = rng.uniform(80.0, 160.0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    if kind == "noise":
        gray = base + 35.0 * _smooth_noise(rng, size, int(rng.integers(4, 10)))
    elif kind == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        t = (xs * math.cos(a) + ys * math.sin(a)) / size
        gray = base + rng.uniform(30.0, 60.0) * (t - t.mean())
    elif kind == "stripes":
        a, period = rng.uniform(0, math.pi), rng.uniform(6.0, 20.0) * size / 128.0
        gray = base + rng.uniform(15.0, 30.0) * np.sin(2 * math.pi * (xs * math.cos(a) + ys * math.sin(a)) / period)
    else:
        cell = max(2, int(rng.integers(8, 20) * size / 128))
        gray = base + rng.uniform(12.0, 25.0) * (((xs // cell + ys // cell) % 2) * 2.0 - 1.0)
    gray = gray + 8.0 * _smooth_noise(rng, size, 24)
    tint = rng.uniform(-8.0, 8.0, size=3).astype(np.float32)
    return kind, np.clip(gray[..., None] + tint, 0, 255).astype(np.float32)


def _occluder_patch(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A grey, textured patch (float32 h×w×3) that reads as an object in front of the scene."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.choice([rng.uniform(30.0, 70.0), rng.uniform(180.0, 225.0)])
    period = rng.uniform(3.0, 7.0)
    gray = base + 18.0 * np.sin(2 * math.pi * (xs + ys * rng.uniform(-1, 1)) / period)
    gray = gray + rng.normal(0.0, 5.0, size=(h, w))
    return np.repeat(np.clip(gray, 0, 255)[..., None], 3, axis=2).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# motion


def _scale_curve(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """Smooth multiplicative size factor per frame, 1 at frame 0."""
    t = np.arange(n, dtype=np.float64)
    period = rng.uniform(0.6, 1.6) * max(n, 8)
    phase = rng.uniform(0, 2 * math.pi)
    amp = rng.uniform(0.3, 1.0) * amplitude
    log_s = amp * (np.sin(2 * math.pi * t / period + phase) - math.sin(phase))
    return np.exp(log_s)


def _trajectory(rng: np.random.Generator, start: np.ndarray, n: int, speed: float,
                half: np.ndarray, size: int) -> np.ndarray:
    """Smooth path of centres (``n``×2): heading drifts slowly, the object bounces off the frame borders.

    ``half`` is the per-frame half extent (``n``×2) used for bouncing.
    """
    pos = np.empty((n, 2))
    p = np.array(start, dtype=np.float64)
    heading = rng.uniform(0, 2 * math.pi)
    turn = 0.0
    for t in range(n):
        pos[t] = p
        turn = 0.8 * turn + rng.normal(0.0, 0.08)
        heading += turn
        v = speed * np.array([math.cos(heading), math.sin(heading)])
        p = p + v
        for k in range(2):
            lo, hi = half[min(t + 1, n - 1), k] + 1.0, size - 1.0 - half[min(t + 1, n - 1), k]
            if lo >= hi:
                p[k] = size / 2.0
                continue
            if p[k] < lo:
                p[k] = min(2 * lo - p[k], hi)
                heading = math.pi - heading if k == 0 else -heading
            elif p[k] > hi:
                p[k] = max(2 * hi - p[k], lo)
                heading = math.pi - heading if k == 0 else -heading
    return pos


def _window(n: int, center: float, plateau: float, ramp: float) -> np.ndarray:
    """Raised-cosine bump: 1 on ``|t - center| <= plateau``, falling to 0 over ``ramp`` frames."""
    d = np.abs(np.arange(n) - center) - plateau
    return np.where(d <= 0, 1.0, np.where(d >= ramp, 0.0, 0.5 * (1 + np.cos(math.pi * np.clip(d, 0, ramp) / ramp))))


# ----------------------------------------------------------------------------------------------------------------
# language


def position_word(cx: float, cy: float, width: int, height: int) -> str:
    """Initial-position word from the frame thirds: ``top-left``, ``top``, ..., ``center``, ..., ``bottom-right``."""
    col = "left" if cx < width / 3 else ("right" if cx > 2 * width / 3 else "")
    row = "top" if cy < height / 3 else ("bottom" if cy > 2 * height / 3 else "")
    if row and col:
        return f"{row}-{col}"
    return row or col or "center"


def _direction_phrase(dx: float, dy: float, size: int) -> str:
    """Words for a displacement in image coordinates (y down)."""
    if math.hypot(dx, dy) < 0.06 * size:
        return "slowly"
    ang = math.degrees(math.atan2(-dy, dx)) % 360  # counter-clockwise from "right", y up
    names = ["to the right", "to the top-right", "upward", "to the top-left",
             "to the left", "to the bottom-left", "downward", "to the bottom-right"]
    return names[int(((ang + 22.5) % 360) // 45)]


def _sentence(rng: np.random.Generator, color: str, pos: str, direction: str, first: str, last: str,
              leaves: bool) -> str:
    where = "the center" if pos == "center" else f"the {pos}"
    kind = int(rng.integers(3))
    if kind == 0:
        s = f"the {color} object starting at {where} and moving {direction}"
    elif kind == 1:
        s = f"the {color} {first} at {where} that later turns into a {last}"
    else:
        article = "an" if color[0] in "aeiou" else "a"
        s = f"{article} {color} object moving {direction} from {where}, changing its shape over time"
    if leaves:
        s += ", briefly leaving the view"
    return s
