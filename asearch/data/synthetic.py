"""The synthetic vision-language tracking benchmark: generated videos in the LaSOT layout, with language.

Every video shows a coloured target and ``distractors`` other objects moving smoothly over a textured grey
background, with scale change, occluder patches (partial and full occlusion) and out-of-view episodes. The language
carries information the first-frame template does not (SPEC §8):

* the target's appearance (shape and texture) changes over the video, while its colour stays the one named by the
  colour word and the sentence;
* the distractors look like the initial template (the target's first shape and texture) but have other colours;
* optionally (``unlit_frames``), every video opens under colourless light: for its first frames every object is
  rendered in the same neutral grey (its texture and shape kept), and the colours fade in over ``fade_frames``.
  The first-frame template then cannot tell the target from the distractors (they share its first look); only the
  colour word can.

So a tracker that only matches the first-frame template drifts to a distractor once the target changes shape (or,
with an unlit opening, has nothing but its motion prior to keep it on the target), while the colour word keeps
pointing at the target. Everything is deterministic from the seed: video ``i`` is drawn from
``numpy.random.default_rng([seed, i])``.

On-disk layout (the LaSOT layout, read by ``asearch.data.registry.build_dataset("synthetic", root, split)``)::

    DIR/<class>/<class>-<n>/img/00000001.jpg ...
    DIR/<class>/<class>-<n>/groundtruth.txt        x,y,w,h integers, one row per frame (0,0,0,0 when out of view)
    DIR/<class>/<class>-<n>/full_occlusion.txt     one comma-separated row of 0/1
    DIR/<class>/<class>-<n>/out_of_view.txt        one comma-separated row of 0/1
    DIR/<class>/<class>-<n>/nlp.txt                one sentence
    DIR/attributes.json, DIR/attributes.pth        {video: "major,root,color,position"}
    DIR/splits/{train,val,test}.txt                video names, one per line
    DIR/meta.json                                  generator parameters, seed, version and a per-video scene summary

``<class>`` is the target's initial shape (also the major-class attribute word); the root-class word is ``shape``.
A frame is *out of view* when less than 10 % of the target's box lies in the frame (or the visible part is under
2 px wide); it is *fully occluded* when the occluder patches leave at most 1 % of the rendered target visible.
Box coordinates use the pixel-centre convention of :mod:`asearch.data.crops` (pixel ``i`` is centred on ``i``).
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from asearch.config import to_dict
from asearch.data.synthetic_scene import (  # noqa: F401 (the palette and shape_mask re-exported)
    COLORS, SHAPES, TEXTURES, UNLIT, _background, _direction_phrase, _draw, _occluder_patch, _scale_curve,
    _sentence, _trajectory, _window, position_word, shape_mask,
)
from asearch.errors import ConfigError, DataError
from asearch.io import atomic_torch_save, atomic_write_json, atomic_write_text

__all__ = [
    "SyntheticConfig",
    "SyntheticVideo",
    "SHAPES",
    "TEXTURES",
    "COLORS",
    "UNLIT",
    "FORMAT_VERSION",
    "lighting",
    "synthesize_video",
    "generate_benchmark",
    "position_word",
    "shape_mask",
]

FORMAT_VERSION = 1


@dataclass
class SyntheticConfig:
    """Parameters of the synthetic benchmark (all sizes in pixels of a ``size``×``size`` frame).

    Attributes:
        videos: number of videos.
        frames: frames per video.
        size: frame side (square frames; 128 keeps CPU runs fast).
        seed: master seed; video ``i`` uses ``numpy.random.default_rng([seed, i])``.
        distractors: distractor objects per video (initial target look, other colours).
        appearance_changes: how many times the target changes shape/texture (the last shape differs from the first).
        morph_frames: frames of cross-fade at each appearance change.
        min_target, max_target: range of the target's initial side as a fraction of ``size``.
        speed: mean speed in pixels per frame at ``size`` 128 (scaled with the frame size).
        scale_change: amplitude of the log-scale oscillation of every object (0 = constant size).
        full_occlusion_prob: chance that a video has an occluder patch that fully hides the target for a while.
        partial_occlusion_prob: chance of a thin occluder bar that hides part of the target.
        out_of_view_prob: chance that the target leaves the frame for a while and comes back.
        noise: standard deviation of the per-frame pixel noise.
        unlit_frames: frames at the start of every video under colourless light (objects in :data:`UNLIT`, their
            textures kept); 0 = colours from the first frame.
        fade_frames: frames over which the colours then fade in (linearly) after the unlit opening.
        image_format: ``jpg`` or ``png`` (file names always end in ``.jpg`` for ``jpg``, ``.png`` otherwise).
        jpeg_quality: JPEG quality (chroma is not subsampled, so colours survive on small objects).
        splits: train/val/test fractions of the videos.
    """

    videos: int = 20
    frames: int = 60
    size: int = 128
    seed: int = 0
    distractors: int = 2
    appearance_changes: int = 2
    morph_frames: int = 4
    min_target: float = 0.13
    max_target: float = 0.22
    speed: float = 1.2
    scale_change: float = 0.2
    full_occlusion_prob: float = 0.5
    partial_occlusion_prob: float = 0.5
    out_of_view_prob: float = 0.4
    noise: float = 3.0
    unlit_frames: int = 0
    fade_frames: int = 6
    image_format: str = "jpg"
    jpeg_quality: int = 95
    splits: List[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])

    def validate(self) -> "SyntheticConfig":
        """Check every field; raise :class:`ConfigError` naming the bad one. Returns ``self``."""
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"synthetic config: key '{name}' {why}, got {getattr(self, name)!r}")

        if self.videos < 1:
            raise bad("videos", "must be >= 1")
        if self.frames < 2:
            raise bad("frames", "must be >= 2")
        if self.size < 32:
            raise bad("size", "must be >= 32")
        if not 0 <= self.distractors < len(COLORS):
            raise bad("distractors", f"must be in 0..{len(COLORS) - 1}")
        if self.appearance_changes < 0:
            raise bad("appearance_changes", "must be >= 0")
        if self.morph_frames < 1:
            raise bad("morph_frames", "must be >= 1")
        if not 0.02 <= self.min_target <= self.max_target <= 0.5:
            raise bad("min_target", "and max_target must satisfy 0.02 <= min_target <= max_target <= 0.5")
        if self.speed < 0:
            raise bad("speed", "must be >= 0")
        if not 0 <= self.scale_change <= 1:
            raise bad("scale_change", "must be in [0, 1]")
        for name in ("full_occlusion_prob", "partial_occlusion_prob", "out_of_view_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "must be a probability in [0, 1]")
        if self.noise < 0:
            raise bad("noise", "must be >= 0")
        if self.unlit_frames < 0:
            raise bad("unlit_frames", "must be >= 0")
        if self.fade_frames < 1:
            raise bad("fade_frames", "must be >= 1")
        if self.image_format not in ("jpg", "png"):
            raise bad("image_format", "must be 'jpg' or 'png'")
        if not 1 <= self.jpeg_quality <= 100:
            raise bad("jpeg_quality", "must be in 1..100")
        if len(self.splits) != 3 or min(self.splits) < 0 or sum(self.splits) <= 0:
            raise bad("splits", "must be three non-negative train/val/test fractions with a positive sum")
        return self


@dataclass
class SyntheticVideo:
    """One generated video in memory (what :func:`generate_benchmark` writes, plus the scene it came from).

    Attributes:
        category: the target's initial shape (the ``<class>`` folder and the major-class word).
        frames: RGB ``uint8`` frames (``size``×``size``×3).
        boxes: ``N×4`` integer ground truth ``x, y, w, h`` (clipped to the frame; zeros when out of view).
        full_occlusion, out_of_view: ``N`` bool flags.
        sentence: the sentence of ``nlp.txt``; attributes: ``[major, root, color, position]``.
        color: the target's colour word; shapes / textures: the target's dominant shape / texture per frame.
        true_boxes: ``N×4`` float unclipped target extents ``x, y, w, h`` (also while hidden).
        distractors: per distractor ``{"color", "shape", "texture", "boxes"}`` (``boxes``: ``N×4`` float extents).
        occluders: per occluder ``{"kind": "full" | "partial", "rect": [x1, y1, x2, y2]}``.
    """

    category: str
    frames: List[np.ndarray]
    boxes: np.ndarray
    full_occlusion: np.ndarray
    out_of_view: np.ndarray
    sentence: str
    attributes: List[str]
    color: str
    shapes: List[str]
    textures: List[str]
    true_boxes: np.ndarray
    distractors: List[Dict[str, object]]
    occluders: List[Dict[str, object]]
    appearance: List[Dict[str, object]]
    background: str

    @property
    def visible(self) -> np.ndarray:
        """``N`` bool: neither fully occluded nor out of view."""
        return ~(self.full_occlusion | self.out_of_view)

    def summary(self) -> Dict[str, object]:
        """JSON-able scene summary (stored per video in ``meta.json``)."""
        return {
            "category": self.category,
            "color": self.color,
            "appearance": self.appearance,
            "distractors": [{k: d[k] for k in ("color", "shape", "texture")} for d in self.distractors],
            "occluders": self.occluders,
            "background": self.background,
            "full_occlusion_frames": int(self.full_occlusion.sum()),
            "out_of_view_frames": int(self.out_of_view.sum()),
            "sentence": self.sentence,
            "attributes": ",".join(self.attributes),
        }


# ----------------------------------------------------------------------------------------------------------------
# one video


def lighting(t: int, unlit_frames: int, fade_frames: int) -> float:
    """How much of the objects' own colour frame ``t`` shows: 0 during the unlit opening (``t < unlit_frames``),
    rising linearly to 1 over the next ``fade_frames`` frames, 1 afterwards (and always 1 when ``unlit_frames`` is 0)."""
    if unlit_frames <= 0 or t >= unlit_frames + fade_frames:
        return 1.0
    return max(0.0, (t - unlit_frames + 1) / (fade_frames + 1))


def _lit(color: Tuple[int, int, int], light: float) -> Tuple[float, float, float]:
    """``color`` as seen under ``light`` (see :func:`lighting`): a blend from :data:`UNLIT` to the colour."""
    return tuple(u + (c - u) * light for u, c in zip(UNLIT, color))  # type: ignore[return-value]


def _appearance_schedule(rng: np.random.Generator, cfg: SyntheticConfig, first_shape: str, first_tex: str
                         ) -> List[Dict[str, object]]:
    """Segments ``[{"start", "shape", "texture"}]``; the final shape differs from the first one."""
    n = cfg.frames
    segs: List[Dict[str, object]] = [{"start": 0, "shape": first_shape, "texture": first_tex}]
    k = cfg.appearance_changes
    lo, hi = max(1, int(0.2 * n)), max(1, int(0.8 * n))
    if k == 0 or hi - lo < k:
        return segs
    edges = np.linspace(lo, hi, k + 1)  # one change per equal bin, away from the bin edges: changes stay apart
    starts = [int(round(rng.uniform(a + 0.2 * (b - a), b - 0.2 * (b - a)))) for a, b in zip(edges[:-1], edges[1:])]
    for i, s in enumerate(starts):
        cur = str(segs[-1]["shape"])
        banned = {cur} | ({first_shape} if i == k - 1 else set())
        shape = str(rng.choice([x for x in SHAPES if x not in banned]))
        tex = str(rng.choice(TEXTURES))
        segs.append({"start": s, "shape": shape, "texture": tex})
    return segs


def synthesize_video(cfg: SyntheticConfig, index: int) -> SyntheticVideo:
    """Render video ``index`` of the benchmark described by ``cfg`` (deterministic from ``(cfg.seed, index)``)."""
    cfg.validate()
    rng = np.random.default_rng([int(cfg.seed), int(index)])
    n, size = cfg.frames, cfg.size
    px = size / 128.0

    # --- target: colour, first look, size, motion
    color_names = list(COLORS)
    color = str(rng.choice(color_names))
    first_shape, first_tex = str(rng.choice(SHAPES)), str(rng.choice(TEXTURES))
    side = rng.uniform(cfg.min_target, cfg.max_target) * size
    aspect = math.exp(rng.uniform(-0.3, 0.3))
    wh0 = np.array([side * math.sqrt(aspect), side / math.sqrt(aspect)])
    wh = wh0[None, :] * _scale_curve(rng, n, cfg.scale_change)[:, None]
    start = rng.uniform(wh0 / 2 + 2, size - 1 - wh0 / 2 - 2)
    speed = cfg.speed * px * rng.uniform(0.6, 1.4)
    centers = _trajectory(rng, start, n, speed, wh / 2, size)

    # --- out-of-view episode: push the centre beyond the nearest border, smoothly, and back
    ramp = max(3.0, 0.08 * n)
    leaves = False
    if n >= 24 and rng.random() < cfg.out_of_view_prob:
        plateau = rng.uniform(0.04, 0.1) * n
        tc = rng.uniform(0.35 * n, n - 2 - plateau - ramp)
        if tc - plateau - ramp >= 2:
            bump = _window(n, tc, plateau, ramp)
            c = centers[int(round(tc))]
            dists = [c[0], size - 1 - c[0], c[1], size - 1 - c[1]]  # left, right, top, bottom
            side_idx = int(np.argmin(dists))
            axis, sign = side_idx // 2, (-1.0 if side_idx % 2 == 0 else 1.0)
            if sign > 0:
                need = (size - 1) - centers[:, axis] + wh[:, axis] / 2 + 3
            else:
                need = centers[:, axis] + wh[:, axis] / 2 + 3
            centers[:, axis] += sign * bump * need
            leaves = True
    true_xyxy = np.concatenate([centers - wh / 2, centers + wh / 2], axis=1)

    # --- occluders: static patches placed on the target's path (never over frames 0..2)
    occluders: List[Dict[str, object]] = []
    patches: List[Tuple[List[int], np.ndarray]] = []
    for kind, prob in (("full", cfg.full_occlusion_prob), ("partial", cfg.partial_occlusion_prob)):
        if n < 12 or rng.random() >= prob:
            continue
        margin = 2.5 * speed + 2.0 * px
        vertical = rng.random() < 0.5
        early = true_xyxy[: min(3, n)]
        chosen = None
        for t in rng.permutation(np.arange(int(0.25 * n), int(0.9 * n))):
            x1, y1, x2, y2 = true_xyxy[t]
            if min(x1, y1) < margin + 1 or max(x2, y2) > size - 2 - margin:
                continue  # the target must be well inside the view at the occlusion frame
            cx, cy = centers[t]
            w, h = wh[t]
            if kind == "full":
                rect = [x1 - margin, y1 - margin, x2 + margin, y2 + margin]
            elif vertical:
                bw = max(2.0, 0.3 * w)
                rect = [cx - bw / 2, cy - 0.8 * h, cx + bw / 2, cy + 0.8 * h]
            else:
                bw = max(2.0, 0.3 * h)
                rect = [cx - 0.8 * w, cy - bw / 2, cx + 0.8 * w, cy + bw / 2]
            r = [int(math.floor(rect[0])), int(math.floor(rect[1])), int(math.ceil(rect[2])), int(math.ceil(rect[3]))]
            if np.any((early[:, 0] < r[2] + 2) & (early[:, 2] > r[0] - 2)
                      & (early[:, 1] < r[3] + 2) & (early[:, 3] > r[1] - 2)):
                continue  # it would hide the first frames (the template)
            chosen = [max(r[0], 0), max(r[1], 0), min(r[2], size), min(r[3], size)]
            break
        if chosen is None:
            continue
        cr = chosen
        occluders.append({"kind": kind, "rect": cr})
        patches.append((cr, _occluder_patch(rng, cr[2] - cr[0], cr[3] - cr[1])))

    # --- appearance schedule of the target
    segments = _appearance_schedule(rng, cfg, first_shape, first_tex)

    # --- distractors: the target's first look in other colours, placed away from the target at frame 0
    others = [c for c in color_names if c != color]
    d_colors = [str(c) for c in rng.choice(others, size=cfg.distractors, replace=False)] if cfg.distractors else []
    distractors: List[Dict[str, object]] = []
    for dc in d_colors:
        dwh0 = wh0 * rng.uniform(0.85, 1.15)
        dwh = dwh0[None, :] * _scale_curve(rng, n, cfg.scale_change)[:, None]
        lo, hi = dwh0 / 2 + 2, size - 1 - dwh0 / 2 - 2
        dstart = rng.uniform(lo, hi)
        for _ in range(30):  # keep the template frame clean: start away from the target
            if np.all(np.abs(dstart - centers[0]) < (dwh0 + wh0) / 2 + 3):
                dstart = rng.uniform(lo, hi)
            else:
                break
        dcent = _trajectory(rng, dstart, n, cfg.speed * px * rng.uniform(0.6, 1.4), dwh / 2, size)
        distractors.append({"color": dc, "shape": first_shape, "texture": first_tex,
                            "boxes": np.concatenate([dcent - dwh / 2, dwh], axis=1), "_c": dcent, "_wh": dwh})

    # --- render
    bg_kind, bg = _background(rng, size)
    frames: List[np.ndarray] = []
    shapes: List[str] = []
    textures: List[str] = []
    morph = cfg.morph_frames
    occluded = np.zeros((size, size), bool)
    for rect, _ in patches:
        occluded[rect[1]:rect[3], rect[0]:rect[2]] = True
    seen = np.zeros(n)   # target coverage left visible by the occluders, per frame
    drawn = np.zeros(n)  # target coverage inside the frame, per frame
    for t in range(n):
        frame = bg.copy()
        if cfg.noise > 0:
            frame += rng.normal(0.0, cfg.noise, size=frame.shape).astype(np.float32)
        light = lighting(t, cfg.unlit_frames, cfg.fade_frames)
        target_rgb = _lit(COLORS[color], light)
        for d in distractors:
            (dcx, dcy), (dw, dh) = d["_c"][t], d["_wh"][t]
            _draw(frame, first_shape, first_tex, _lit(COLORS[d["color"]], light), dcx, dcy, dw, dh)
        seg_i = max(i for i, s in enumerate(segments) if int(s["start"]) <= t)
        seg = segments[seg_i]
        cx, cy = centers[t]
        w, h = wh[t]
        progress = (t - int(seg["start"])) / morph if seg_i > 0 else 1.0
        if progress < 1.0:  # cross-fade between the frame with the previous look and the frame with the new one
            prev = segments[seg_i - 1]
            before = frame.copy()
            cover_a, _, _ = _draw(before, str(prev["shape"]), str(prev["texture"]), target_rgb, cx, cy, w, h)
            cover, x0, y0 = _draw(frame, str(seg["shape"]), str(seg["texture"]), target_rgb, cx, cy, w, h)
            cover = np.maximum(cover, cover_a)
            frame = before * np.float32(1.0 - progress) + frame * np.float32(progress)
            dominant = prev if progress < 0.5 else seg
        else:
            cover, x0, y0 = _draw(frame, str(seg["shape"]), str(seg["texture"]), target_rgb, cx, cy, w, h)
            dominant = seg
        drawn[t] = cover.sum()
        seen[t] = (cover * ~occluded[y0:y0 + cover.shape[0], x0:x0 + cover.shape[1]]).sum()
        shapes.append(str(dominant["shape"]))
        textures.append(str(dominant["texture"]))
        for rect, patch in patches:
            frame[rect[1]:rect[3], rect[0]:rect[2]] = patch
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))

    # --- annotation: clipped integer boxes, occlusion and out-of-view flags
    boxes = np.zeros((n, 4), np.int64)
    full_occ = np.zeros(n, bool)
    oov = np.zeros(n, bool)
    for t in range(n):
        x1, y1, x2, y2 = true_xyxy[t]
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, size - 1.0), min(y2, size - 1.0)
        area = (x2 - x1) * (y2 - y1)
        inside = max(cx2 - cx1, 0.0) * max(cy2 - cy1, 0.0)
        ix1, iy1, ix2, iy2 = (int(round(v)) for v in (cx1, cy1, cx2, cy2))
        if inside < 0.1 * area or ix2 - ix1 < 2 or iy2 - iy1 < 2:  # gone, or a sliver at the border
            oov[t] = True
            continue
        boxes[t] = [ix1, iy1, ix2 - ix1, iy2 - iy1]
        full_occ[t] = seen[t] <= 0.01 * drawn[t]  # what the occluders leave of the rendered target: ~nothing

    pos = position_word(centers[0][0], centers[0][1], size, size)
    k = min(n - 1, max(5, n // 4))
    direction = _direction_phrase(*(centers[k] - centers[0]), size)
    last_shape = str(segments[-1]["shape"])
    sentence = _sentence(rng, color, pos, direction, first_shape, last_shape, leaves)
    for d in distractors:
        d.pop("_c")
        d.pop("_wh")
    return SyntheticVideo(
        category=first_shape, frames=frames, boxes=boxes, full_occlusion=full_occ, out_of_view=oov,
        sentence=sentence, attributes=[first_shape, "shape", color, pos], color=color, shapes=shapes,
        textures=textures, true_boxes=np.concatenate([centers - wh / 2, wh], axis=1), distractors=distractors,
        occluders=occluders, appearance=segments, background=bg_kind,
    )


# ----------------------------------------------------------------------------------------------------------------
# writing


def _split_counts(n: int, fractions: Sequence[float]) -> Tuple[int, int, int]:
    total = float(sum(fractions))
    n_val = int(round(n * fractions[1] / total))
    n_test = int(round(n * fractions[2] / total))
    n_train = n - n_val - n_test
    while n_train < 0:  # rounding overshoot on tiny benchmarks
        if n_test > n_val:
            n_test -= 1
        else:
            n_val -= 1
        n_train = n - n_val - n_test
    return n_train, n_val, n_test


def _encode(image: np.ndarray, cfg: SyntheticConfig) -> bytes:
    import cv2

    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if cfg.image_format == "jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(cfg.jpeg_quality)]
        if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR"):
            params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
        ok, buf = cv2.imencode(".jpg", bgr, params)
    else:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise DataError(f"OpenCV could not encode a {cfg.image_format} image")
    return buf.tobytes()


def _write_video(video: SyntheticVideo, folder: Path, cfg: SyntheticConfig) -> None:
    """Write one video into a temporary sibling folder, then rename it onto ``folder``."""
    tmp = folder.parent / f".{folder.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "img").mkdir(parents=True)
    ext = "jpg" if cfg.image_format == "jpg" else "png"
    for i, img in enumerate(video.frames):
        (tmp / "img" / f"{i + 1:08d}.{ext}").write_bytes(_encode(img, cfg))
    (tmp / "groundtruth.txt").write_text("".join(",".join(str(int(v)) for v in b) + "\n" for b in video.boxes))
    (tmp / "full_occlusion.txt").write_text(",".join(str(int(v)) for v in video.full_occlusion) + "\n")
    (tmp / "out_of_view.txt").write_text(",".join(str(int(v)) for v in video.out_of_view) + "\n")
    (tmp / "nlp.txt").write_text(video.sentence + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


_MARKER = ".synthetic-in-progress"  # present while a generation runs; a folder left with it was interrupted


def _clear_previous(out: Path, overwrite: bool) -> None:
    """Make ``out`` ready: empty, or a previous benchmark (``meta.json``) replaced when ``overwrite`` is set, or the
    leftovers of an interrupted generation (the marker file) removed. Anything else is refused."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"synthetic benchmark: output path {out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    meta_path = out / "meta.json"
    if meta_path.is_file() and not overwrite:
        raise ConfigError(f"synthetic benchmark: {out} already holds a benchmark ({meta_path}); pass "
                          "overwrite=True (CLI: --overwrite) to replace it")
    if not meta_path.is_file() and not (out / _MARKER).is_file():
        raise ConfigError(f"synthetic benchmark: output folder {out} is not empty and holds no meta.json of a "
                          "previous synthetic benchmark; choose an empty or new folder")
    # only what the generator writes: the shape-class folders, the language and split files, meta and the marker
    for shape in SHAPES:
        if (out / shape).is_dir():
            shutil.rmtree(out / shape)
    if (out / "splits").is_dir():
        shutil.rmtree(out / "splits")
    for fname in ("attributes.json", "attributes.pth", "meta.json", _MARKER):
        if (out / fname).is_file():
            (out / fname).unlink()


def generate_benchmark(out_dir: Union[str, os.PathLike], videos: Optional[int] = None, frames: Optional[int] = None,
                       size: Optional[int] = None, seed: Optional[int] = None, distractors: Optional[int] = None,
                       config: Optional[SyntheticConfig] = None, overwrite: bool = False,
                       progress: Optional[Callable[[int, int, str], None]] = None) -> Path:
    """Generate the synthetic benchmark into ``out_dir`` (LaSOT layout, see the module docstring); return its path.

    Keyword arguments override the matching fields of ``config`` (default :class:`SyntheticConfig`).
    ``progress(done, total, video_name)`` is called after each video. Each video folder appears by an atomic
    rename and ``meta.json`` is written last; the leftovers of an interrupted run (marked by a hidden marker file)
    are cleared by the next run. An existing complete benchmark is replaced only with ``overwrite=True``.
    """
    from asearch import __version__

    cfg = config if config is not None else SyntheticConfig()
    overrides = {"videos": videos, "frames": frames, "size": size, "seed": seed, "distractors": distractors}
    cfg = SyntheticConfig(**{**to_dict(cfg), **{k: v for k, v in overrides.items() if v is not None}})
    cfg.validate()
    out = Path(out_dir)
    _clear_previous(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / _MARKER, {"config": to_dict(cfg)})

    counters: Dict[str, int] = {}
    names: List[str] = []
    attributes: Dict[str, str] = {}
    summaries: Dict[str, Dict[str, object]] = {}
    for i in range(cfg.videos):
        video = synthesize_video(cfg, i)
        counters[video.category] = counters.get(video.category, 0) + 1
        name = f"{video.category}-{counters[video.category]}"
        _write_video(video, out / video.category / name, cfg)
        names.append(name)
        attributes[name] = ",".join(video.attributes)
        summaries[name] = video.summary()
        if progress is not None:
            progress(i + 1, cfg.videos, name)

    order = [names[j] for j in np.random.default_rng([int(cfg.seed), 7919]).permutation(len(names))]
    n_train, n_val, _ = _split_counts(len(order), cfg.splits)
    split_names = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    for split, members in split_names.items():
        atomic_write_text(out / "splits" / f"{split}.txt", "".join(f"{m}\n" for m in sorted(members)))
    atomic_write_json(out / "attributes.json", attributes)
    atomic_torch_save(dict(attributes), out / "attributes.pth")
    atomic_write_json(out / "meta.json", {
        "generator": "asearch.data.synthetic",
        "format_version": FORMAT_VERSION,
        "toolkit_version": __version__,
        "layout": "lasot",
        "config": to_dict(cfg),
        "splits": {k: len(v) for k, v in split_names.items()},
        "videos": summaries,
    })
    (out / _MARKER).unlink()
    return out
