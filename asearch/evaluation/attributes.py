"""Per-attribute breakdown (e.g. LaSOT's 14 per-video flags): a score averaged over the videos having each flag;
and the attributes COST (paper 003, §3) derives from the ground truth: small object, relative speed (Eq. 1)."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence as Seq, Tuple

import numpy as np
import pandas as pd

from asearch.errors import ConfigError, DataError

__all__ = [
    "attribute_names", "attribute_table", "DERIVED_ATTRIBUTES", "relative_speeds", "average_relative_speed",
    "average_sizes", "is_small_object", "derived_attribute_flags",
]


def attribute_names(flags: Seq[Optional[Mapping[str, bool]]]) -> List[str]:
    """Every attribute name present in ``flags`` (one dict or None per sequence), in first-seen order."""
    names: List[str] = []
    for f in flags:
        for k in (f or {}):
            if k not in names:
                names.append(k)
    return names


def attribute_table(results: Mapping[str, Mapping[str, object]], flags: Seq[Optional[Mapping[str, bool]]],
                    metric: str = "suc") -> pd.DataFrame:
    """Mean per-sequence ``metric`` (in %) of each tracker over the sequences flagged with each attribute.

    Args:
        results: tracker name -> :func:`asearch.evaluation.ope` dict (sequences in the same order as ``flags``).
        flags: per sequence, attribute name -> bool (None: the sequence has no attribute annotation).
        metric: a ``per_sequence`` key: ``suc``, ``prec`` or ``norm_prec`` (``ao`` for got10k).

    Returns:
        A DataFrame indexed by attribute, with column ``n`` (number of flagged sequences) and one column per
        tracker; empty when no sequence has attributes.
    """
    names = attribute_names(flags)
    rows: Dict[str, Dict[str, float]] = {}
    for attr in names:
        mask = np.array([bool((f or {}).get(attr, False)) for f in flags], dtype=bool)
        row: Dict[str, float] = {"n": int(mask.sum())}
        for tracker, res in results.items():
            values = np.asarray(res["per_sequence"][metric], dtype=np.float64)
            if len(values) != len(mask):
                raise ValueError(f"tracker '{tracker}' has {len(values)} sequences but {len(mask)} attribute rows")
            sel = values[mask]
            sel = sel[np.isfinite(sel)]
            row[tracker] = float(100.0 * sel.mean()) if len(sel) else float("nan")
        rows[attr] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["n", *results.keys()])
    table.index.name = "attribute"
    if len(table):
        table["n"] = table["n"].astype(int)
    return table


# -- attributes derived from the ground truth (COST, paper 003, §3) ---------------------------------------------------
#: Names accepted by ``asearch evaluate --derived-attributes``.
DERIVED_ATTRIBUTES: Tuple[str, ...] = ("small_object", "relative_speed")

#: COST §3: a small object has an average relative size < 1 % and an average absolute size < 22 px.
SMALL_RELATIVE_SIZE = 0.01
SMALL_ABSOLUTE_SIZE = 22.0


def _usable(boxes: np.ndarray, visible: Optional[np.ndarray]) -> np.ndarray:
    """Frames whose box can be measured: visible (when flags are given), finite, positive width and height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if visible is not None:
        ok &= np.asarray(visible, dtype=bool).reshape(-1)
    return ok


def relative_speeds(boxes: np.ndarray, visible: Optional[np.ndarray] = None, fps: float = 30.0) -> np.ndarray:
    """COST Eq. 1 for each pair of consecutive usable frames ``t - 1, t``:
    ``Delta_t = ||p_t - p_{t-1}||_2 / (sqrt(s_{t-1} s_t) (T_t - T_{t-1}))`` with ``s_t = sqrt(w_t h_t)``, ``p_t`` the
    box centre and ``T_t = t / fps`` in seconds (a pair with an unusable frame, absent or zero-size, is skipped)."""
    if not fps > 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ok = _usable(boxes, visible)
    pair = ok[1:] & ok[:-1]
    centre = boxes[:, :2] + 0.5 * boxes[:, 2:]
    size = np.sqrt(np.where(ok, boxes[:, 2] * boxes[:, 3], np.nan))
    dist = np.linalg.norm(centre[1:] - centre[:-1], axis=1)
    with np.errstate(invalid="ignore"):
        speed = dist / (np.sqrt(size[1:] * size[:-1]) * (1.0 / fps))
    return speed[pair]


def average_relative_speed(boxes: np.ndarray, visible: Optional[np.ndarray] = None, fps: float = 30.0) -> float:
    """Mean of :func:`relative_speeds` over the video (NaN when no pair of consecutive usable frames exists)."""
    speeds = relative_speeds(boxes, visible, fps)
    return float(speeds.mean()) if len(speeds) else float("nan")


def average_sizes(boxes: np.ndarray, image_size: Tuple[float, float],
                  visible: Optional[np.ndarray] = None) -> Tuple[float, float]:
    """(average absolute size ``sqrt(w h)`` in px, average relative size ``sqrt(w h) / sqrt(W H)``) over usable
    frames; ``image_size`` is ``(W, H)``. Relative size: the target size of COST §3 over the image's on the same
    scale (choice: the paper names the measure, not its formula). NaN when no frame is usable."""
    w_img, h_img = (float(v) for v in image_size)
    if not (w_img > 0 and h_img > 0):
        raise DataError(f"image size must be positive, got {image_size}", field="image_size")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ok = _usable(boxes, visible)
    if not ok.any():
        return float("nan"), float("nan")
    size = np.sqrt(boxes[ok, 2] * boxes[ok, 3])
    return float(size.mean()), float(size.mean() / np.sqrt(w_img * h_img))


def is_small_object(boxes: np.ndarray, image_size: Tuple[float, float], visible: Optional[np.ndarray] = None,
                    relative: float = SMALL_RELATIVE_SIZE, absolute: float = SMALL_ABSOLUTE_SIZE) -> bool:
    """COST §3's rule: average relative size ``< relative`` (1 %) and average absolute size ``< absolute`` (22 px)."""
    abs_size, rel_size = average_sizes(boxes, image_size, visible)
    return bool(rel_size < relative and abs_size < absolute)


def derived_attribute_flags(sequences: Seq[object], names: Seq[str], image_sizes: Optional[Seq[Tuple[float, float]]]
                            = None, fps: float = 30.0, speed_threshold: Optional[float] = None
                            ) -> Tuple[List[Dict[str, bool]], Dict[str, List[float]]]:
    """Per-video flags computed from the ground truth, and the values behind them.

    ``small_object`` gives flag ``small_object`` (:func:`is_small_object`; needs ``image_sizes``, one ``(W, H)``
    per sequence). ``relative_speed`` gives flag ``high_relative_speed``: average relative speed (per second, at
    ``fps``) above ``speed_threshold``; **choice**: the paper sets no threshold, so the default is the median over
    the given videos (videos without a measurable pair are never flagged).

    Returns ``(flags, values)``: one dict per sequence, and ``values`` with ``relative_speed`` and / or
    ``absolute_size`` and ``relative_size`` lists (one float per sequence).
    """
    unknown = [n for n in names if n not in DERIVED_ATTRIBUTES]
    if unknown:
        raise ConfigError(f"unknown derived attribute(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(DERIVED_ATTRIBUTES)}")
    flags: List[Dict[str, bool]] = [{} for _ in sequences]
    values: Dict[str, List[float]] = {}
    if "small_object" in names:
        if image_sizes is None or len(image_sizes) != len(sequences):
            raise ConfigError("the small_object attribute needs one image size (W, H) per sequence")
        sizes = [average_sizes(s.boxes, wh, s.visible) for s, wh in zip(sequences, image_sizes)]
        values["absolute_size"] = [a for a, _ in sizes]
        values["relative_size"] = [r for _, r in sizes]
        for f, (a, r) in zip(flags, sizes):
            f["small_object"] = bool(r < SMALL_RELATIVE_SIZE and a < SMALL_ABSOLUTE_SIZE)
    if "relative_speed" in names:
        speeds = [average_relative_speed(s.boxes, s.visible, fps) for s in sequences]
        values["relative_speed"] = speeds
        finite = [v for v in speeds if np.isfinite(v)]
        threshold = speed_threshold if speed_threshold is not None else (
            float(np.median(finite)) if finite else float("nan"))
        values["relative_speed_threshold"] = [threshold]
        for f, v in zip(flags, speeds):
            f["high_relative_speed"] = bool(np.isfinite(v) and v > threshold)
    return flags, values
