"""One-pass evaluation (OPE): success, precision and normalized precision under named protocols.

The reference toolkits agree on the IoU and centre formulas (the "+1" pixel variants give the same numbers, because
``min(x1 + w1 - 1, x2 + w2 - 1) - max(x1, x2) + 1 == min(x1 + w1, x2 + w2) - max(x1, x2)`` and the ``-1`` cancels
in centre differences) but disagree on what changes results, so each policy is a named protocol:

``lasot`` (pytracking ``lasot``)
    Frame 0 is set to the ground truth and counted. A frame is *invalid* when the ground-truth width or height is
    ``<= 0`` (or any value is not finite), or the target is flagged absent; invalid frames fail success, precision
    and normalized precision. Denominator: all frames. Success thresholds ``0:0.05:1`` (21 points) with IoU ``>`` t;
    precision thresholds 0..50 px and normalized 0..0.5 with distances ``<=`` t; P = curve at 20 px, P_norm = curve
    at 0.20. **Choice**: like pytracking, only the size decides validity here; the MATLAB rule "any value ``<= 0``"
    (``matlab`` below) would fail every visible frame whose 0-based box touches the left or top image border
    (``x = 0``), as the boxes of the synthetic benchmark do.
``matlab`` (LaSOT / TNL2K official MATLAB toolkits)
    As ``lasot``, but only absent frames fail everything; invalid-GT frames (any of ``x, y, w, h`` ``<= 0``, the
    toolkit's ``sum(rect_anno > 0, 2) == 4`` test) fail success and count as precision (and normalized precision)
    successes, because the toolkit gives them a centre error of -1.
``otb`` (got10k ``ExperimentOTB``)
    Frame 0 set to the ground truth; no special handling of absent or invalid frames (a NaN ground truth fails
    every threshold); thresholds ``linspace(0, 1, 21)`` with ``>``; P at 20 px.
``got10k``
    Frame 0 excluded; frames with cover 0 (``visible`` False) or a non-finite ground truth dropped; prediction and
    ground truth bounded by the image as the toolkit's ``rect_iou(bound=(W, H))``: ``x`` clamped to ``[0, W]``, then
    ``w`` to ``[0, W - x]`` (likewise ``y``, ``h``; a box left of the image keeps its width); IoUs pooled over
    all frames of all sequences: AO = mean IoU, SR@0.5 / SR@0.75 = fraction of IoU ``>`` 0.5 / 0.75; success
    curve on 101 points.
``trackingnet`` (TrackingNet devkit)
    All coordinates rounded (``numpy.round``, half to even), frame 0 set to the rounded ground truth; no special
    handling; 21 points per curve (IoU ``>=`` t on ``0:0.05:1``, distances ``<=`` t on ``0:2.5:50`` px and
    ``0:0.025:0.5``); each score is the trapezoid area under its curve with the thresholds mapped onto ``[0, 1]``.

Common to every protocol: the IoU is computed so that identical boxes give exactly 1 and is clipped to ``[0, 1]``
(float rounding must not make a frame count at threshold 1 under ``>``, nor miss it under ``>=``); a NaN / infinite or zero-size (``w <= 0`` or ``h <= 0``) prediction is replaced by
the previous (already repaired) prediction, the first frame's by the ground truth. Thresholds are computed as
``k / n`` so that, e.g., the 0.15 threshold is exactly ``0.15``.

First frame (``first_frame``, :data:`FIRST_FRAME`): ``gt`` (default, every protocol above: the tracker was given
the ground truth there) or ``predicted``, the NL setting (paper 004: the first box comes from a grounding model,
``asearch track --init language``): frame 0 keeps the tracker's own first row and counts as any frame, under
``got10k`` too (it is then kept, not excluded). An unusable predicted first box (NaN / zero size) fails frame 0
(it is not replaced by the ground truth; the later frames' repair falls back to the ground truth as before).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence as Seq, Tuple

import numpy as np

from asearch.errors import ConfigError, DataError

__all__ = [
    "PROTOCOLS", "DEFAULT_PROTOCOLS", "default_protocol", "iou", "center_error", "repair_predictions",
    "ope", "OPEMetric", "check_protocol", "protocol_thresholds", "threshold_curves", "trapezoid_unit",
    "sequence_errors", "FIRST_FRAME",
]

PROTOCOLS = ("lasot", "matlab", "otb", "got10k", "trackingnet")

#: how frame 0 is scored: ``gt`` (set to the ground truth, or excluded by got10k) | ``predicted`` (NL setting)
FIRST_FRAME = ("gt", "predicted")

DEFAULT_PROTOCOLS: Dict[str, str] = {
    "lasot": "lasot", "lasot_ext": "lasot", "tnl2k": "lasot", "synthetic": "lasot",
    "otb99_lang": "otb", "otb": "otb", "got10k": "got10k", "trackingnet": "trackingnet",
}


def default_protocol(dataset: str) -> str:
    """The protocol used for ``dataset`` when none is given (SPEC table); unknown datasets get ``lasot``."""
    key = dataset.strip().lower().replace("-", "_")
    return DEFAULT_PROTOCOLS.get(key, "lasot")


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of :data:`PROTOCOLS`, else a ConfigError naming the choices."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-row IoU of ``x, y, w, h`` boxes, clipped to ``[0, 1]``.

    A zero union gives 0; a non-finite input gives NaN (which fails every threshold comparison).
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        # overlap of [a, a + s] and [b, b + t] = min(s, t, (a - b) + s, (b - a) + t), clipped at 0: the same value as
        # min(a + s, b + t) - max(a, b), but exact for identical boxes ((a - a) + s == s), so their IoU is exactly 1
        d = pred[:, :2] - gt[:, :2]
        overlap = np.minimum(np.minimum(pred[:, 2:], gt[:, 2:]), np.minimum(d + pred[:, 2:], gt[:, 2:] - d))
        overlap = np.clip(overlap, 0.0, None)
        inter = overlap[:, 0] * overlap[:, 1]
        union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
        out = np.zeros(len(pred), dtype=np.float64)
        ok = union > 0
        out[ok] = inter[ok] / union[ok]
    finite = np.isfinite(pred).all(axis=1) & np.isfinite(gt).all(axis=1)
    out[~finite] = np.nan
    return np.clip(out, 0.0, 1.0)


def center_error(pred: np.ndarray, gt: np.ndarray, normalized: bool = False) -> np.ndarray:
    """Per-row distance between box centres in pixels, or in units of the ground-truth size when ``normalized``.

    ``normalized``: ``sqrt(((cx_p - cx_g) / w_g)^2 + ((cy_p - cy_g) / h_g)^2)`` (TrackingNet's P_norm); a zero-size
    ground truth gives ``inf`` or NaN, which fails every threshold.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    d = (pred[:, :2] + 0.5 * pred[:, 2:]) - (gt[:, :2] + 0.5 * gt[:, 2:])
    with np.errstate(divide="ignore", invalid="ignore"):
        if normalized:
            d = d / gt[:, 2:]
        return np.sqrt((d ** 2).sum(axis=1))


def repair_predictions(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Replace each NaN/inf or zero-size prediction by the previous (repaired) one; frame 0 falls back to the GT."""
    pred = np.array(pred, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(pred).all(axis=1) | ~(pred[:, 2] > 0) | ~(pred[:, 3] > 0)
    for i in np.flatnonzero(bad):  # ascending: pred[i - 1] is already repaired
        pred[i] = pred[i - 1] if i > 0 else np.asarray(gt, dtype=np.float64).reshape(-1, 4)[0]
    return pred


def _clip_to_image(boxes: np.ndarray, size: Tuple[float, float]) -> np.ndarray:
    """Bound ``x, y, w, h`` boxes by the image as the GOT-10k toolkit's ``rect_iou(..., bound=(W, H))`` does:
    ``x`` clamped to ``[0, W]``, then ``w`` to ``[0, W - x]`` (the same for ``y``, ``h``). The left / top edge is
    moved, not cut: ``[-10, 0, 20, 10]`` becomes ``[0, 0, 20, 10]``, not ``[0, 0, 10, 10]``."""
    w_img, h_img = float(size[0]), float(size[1])
    x = np.clip(boxes[:, 0], 0.0, w_img)
    y = np.clip(boxes[:, 1], 0.0, h_img)
    w = np.clip(boxes[:, 2], 0.0, w_img - x)
    h = np.clip(boxes[:, 3], 0.0, h_img - y)
    return np.stack([x, y, w, h], axis=1)


def protocol_thresholds(protocol: str) -> Dict[str, np.ndarray]:
    """Threshold grids (computed as ``k / n`` so that grid values are exact decimals)."""
    if protocol == "trackingnet":
        k = np.arange(21, dtype=np.float64)
        return {"success": k / 20.0, "precision": k * 50.0 / 20.0, "norm_precision": k / 40.0}
    k = np.arange(51, dtype=np.float64)
    n_success = 101 if protocol == "got10k" else 21
    return {"success": np.arange(n_success, dtype=np.float64) / (n_success - 1),
            "precision": k, "norm_precision": k / 100.0}


def threshold_curves(ious: np.ndarray, errs: np.ndarray, nerrs: np.ndarray, thr: Dict[str, np.ndarray],
                     success_ge: bool, n: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Success (``>`` or ``>=``), precision and normalized precision (``<=``) curves with denominator ``n``."""
    if n == 0:
        return tuple(np.full(len(thr[k]), np.nan) for k in ("success", "precision", "norm_precision"))
    with np.errstate(invalid="ignore"):
        cmp = np.greater_equal if success_ge else np.greater
        succ = cmp(ious[:, None], thr["success"][None, :]).sum(axis=0) / n
        prec = np.less_equal(errs[:, None], thr["precision"][None, :]).sum(axis=0) / n
        nprec = np.less_equal(nerrs[:, None], thr["norm_precision"][None, :]).sum(axis=0) / n
    return succ, prec, nprec


def trapezoid_unit(curve: np.ndarray) -> float:
    """Trapezoid area under ``curve`` sampled on an even grid mapped onto ``[0, 1]`` (TrackingNet's scores)."""
    dx = 1.0 / (len(curve) - 1)
    return float(np.sum((curve[1:] + curve[:-1]) * 0.5) * dx)


def _scores(protocol: str, succ: np.ndarray, prec: np.ndarray, nprec: np.ndarray) -> Tuple[float, float, float]:
    """(SUC, P, P_norm) of one set of curves under ``protocol``."""
    if protocol == "trackingnet":
        return trapezoid_unit(succ), trapezoid_unit(prec), trapezoid_unit(nprec)
    # SUC = mean of the success curve (the AUC of the OPE success plot); P at 20 px, P_norm at 0.20 (index 20).
    return float(np.mean(succ)), float(prec[20]), float(nprec[20])


def sequence_errors(protocol: str, pred: np.ndarray, gt: np.ndarray, visible: np.ndarray,
                    size: Optional[Tuple[float, float]],
                    overlap: Callable[[np.ndarray, np.ndarray], np.ndarray] = iou, first_frame: str = "gt"
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per-frame (overlap, centre error, normalized centre error) under ``protocol`` and the frame denominator.

    ``overlap`` is :func:`iou` (SUC) or another per-row overlap in ``[0, 1]`` (the complete IoU of cAUC, in
    :mod:`asearch.evaluation.extra_metrics`). Failed frames get overlap -1 and centre errors ``inf``; frames
    counted as precision successes get error -1. For ``got10k`` only the kept frames are returned.
    ``first_frame``: ``gt`` or ``predicted`` (module docstring).
    """
    if first_frame not in FIRST_FRAME:
        raise ConfigError(f"first_frame must be one of {', '.join(FIRST_FRAME)}, got {first_frame!r}")
    predicted = first_frame == "predicted"
    raw0 = np.asarray(pred, dtype=np.float64).reshape(-1, 4)[:1]
    with np.errstate(invalid="ignore"):
        bad0 = predicted and len(raw0) > 0 and not (np.isfinite(raw0).all() and raw0[0, 2] > 0 and raw0[0, 3] > 0)
    pred = repair_predictions(pred, gt)
    gt = gt.copy()
    if protocol == "trackingnet":
        pred, gt = np.round(pred), np.round(gt)
    if protocol != "got10k" and not predicted:
        pred[0] = gt[0]
    if protocol == "got10k":
        keep = visible.copy()
        keep[0] = keep[0] and predicted
        keep &= np.isfinite(gt).all(axis=1)
        pred, gt = _clip_to_image(pred[keep], size), _clip_to_image(gt[keep], size)
        ious = overlap(pred, gt)
        errs, nerrs = center_error(pred, gt), center_error(pred, gt, normalized=True)
        if bad0 and keep[0]:  # an unusable predicted first box: IoU 0 in AO, never the ground truth
            ious[0], errs[0], nerrs[0] = 0.0, np.inf, np.inf
        return ious, errs, nerrs, int(keep.sum())
    ious = overlap(pred, gt)
    errs = center_error(pred, gt)
    nerrs = center_error(pred, gt, normalized=True)
    if bad0:  # an unusable predicted first box fails frame 0 (the repair put the ground truth there)
        ious[0], errs[0], nerrs[0] = -1.0, np.inf, np.inf
    if protocol in ("lasot", "matlab"):
        with np.errstate(invalid="ignore"):  # NaN compares False: unknown boxes are invalid too
            valid_gt = (gt > 0).all(axis=1) if protocol == "matlab" else (
                (gt[:, 2:] > 0).all(axis=1) & np.isfinite(gt).all(axis=1))
        ious[~valid_gt] = -1.0
        if protocol == "lasot":
            errs[~valid_gt] = np.inf
            nerrs[~valid_gt] = np.inf
        else:  # MATLAB toolkit: errCenter(~idx) = -1, i.e. a precision success at every threshold
            errs[~valid_gt] = -1.0
            nerrs[~valid_gt] = -1.0
        ious[~visible] = -1.0
        errs[~visible] = np.inf
        nerrs[~visible] = np.inf
    return ious, errs, nerrs, len(gt)


def ope(predictions: Seq[np.ndarray], ground_truths: Seq[np.ndarray], visible: Optional[Seq[np.ndarray]] = None,
        protocol: str = "lasot", image_sizes: Optional[Seq[Tuple[float, float]]] = None,
        names: Optional[Seq[str]] = None, first_frame: str = "gt") -> Dict[str, object]:
    """One-pass evaluation of a tracker over sequences.

    Args:
        predictions: one ``N_i x 4`` array of predicted ``x, y, w, h`` per sequence.
        ground_truths: one ``N_i x 4`` ground-truth array per sequence (NaN where unknown).
        visible: one ``N_i`` bool array per sequence (False where the target is absent); None: all visible.
        protocol: one of :data:`PROTOCOLS` (see the module docstring).
        image_sizes: one ``(W, H)`` per sequence; required by ``got10k`` (boxes are clipped to the image).
        names: sequence names, used only in error messages and ``per_sequence["name"]``.
        first_frame: ``gt`` (default) or ``predicted`` (the NL setting; module docstring).

    Returns:
        A dict with ``suc``, ``prec``, ``norm_prec`` (fractions in ``[0, 1]``), ``success_curve``,
        ``precision_curve``, ``norm_precision_curve`` (means over sequences; pooled frames for ``got10k``),
        ``thresholds`` (``success`` / ``precision`` / ``norm_precision`` grids), ``per_sequence`` (``name``,
        ``suc``, ``prec``, ``norm_prec`` arrays, ``iou`` list of per-frame overlaps with -1 for failed frames),
        ``protocol``, ``n_sequences``, ``n_frames``; for ``got10k`` also ``ao``, ``sr50``, ``sr75`` (and
        ``per_sequence["ao"]``).
    """
    check_protocol(protocol)
    n_seq = len(predictions)
    if len(ground_truths) != n_seq:
        raise DataError(f"{n_seq} prediction arrays but {len(ground_truths)} ground-truth arrays", field="predictions")
    if n_seq == 0:
        raise DataError("no sequences to evaluate", field="predictions")
    if visible is not None and len(visible) != n_seq:
        raise DataError(f"{n_seq} sequences but {len(visible)} visibility arrays", field="visible")
    if protocol == "got10k" and (image_sizes is None or len(image_sizes) != n_seq):
        raise ConfigError("protocol 'got10k' clips boxes to the image: pass image_sizes, one (W, H) per sequence")
    names = [str(n) for n in names] if names is not None else [f"#{i}" for i in range(n_seq)]
    thr = protocol_thresholds(protocol)
    ge = protocol == "trackingnet"

    seq_curves: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    per: Dict[str, list] = {"name": names, "suc": [], "prec": [], "norm_prec": [], "iou": [], "n_frames": []}
    pooled: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for i in range(n_seq):
        gt = np.asarray(ground_truths[i], dtype=np.float64).reshape(-1, 4)
        pred = np.asarray(predictions[i], dtype=np.float64).reshape(-1, 4)
        if len(gt) == 0:
            raise DataError(f"sequence '{names[i]}' has no ground-truth frames", field="ground_truths")
        if len(pred) != len(gt):
            raise DataError(f"sequence '{names[i]}': {len(pred)} predicted boxes for {len(gt)} ground-truth frames",
                            field="predictions")
        vis = (np.ones(len(gt), dtype=bool) if visible is None or visible[i] is None
               else np.asarray(visible[i], dtype=bool).reshape(-1))
        if len(vis) != len(gt):
            raise DataError(f"sequence '{names[i]}': {len(vis)} visibility flags for {len(gt)} frames",
                            field="visible")
        size = None if image_sizes is None else tuple(image_sizes[i])
        ious, errs, nerrs, n = sequence_errors(protocol, pred, gt, vis, size, first_frame=first_frame)
        curves = threshold_curves(ious, errs, nerrs, thr, ge, n)
        s, p, q = _scores(protocol, *curves) if n > 0 else (np.nan, np.nan, np.nan)
        seq_curves.append(curves)
        pooled.append((ious, errs, nerrs))
        per["suc"].append(s)
        per["prec"].append(p)
        per["norm_prec"].append(q)
        per["iou"].append(ious)
        per["n_frames"].append(n)

    out: Dict[str, object] = {"protocol": protocol, "thresholds": thr, "n_sequences": n_seq,
                              "n_frames": int(sum(per["n_frames"]))}
    if protocol == "got10k":
        ious = np.concatenate([x[0] for x in pooled])
        n = len(ious)
        succ, prec, nprec = threshold_curves(ious, np.concatenate([x[1] for x in pooled]),
                                    np.concatenate([x[2] for x in pooled]), thr, False, n)
        out["ao"] = float(np.mean(ious)) if n else float("nan")
        out["sr50"] = float(np.mean(ious > 0.5)) if n else float("nan")
        out["sr75"] = float(np.mean(ious > 0.75)) if n else float("nan")
        per["ao"] = np.array([float(np.mean(x[0])) if len(x[0]) else np.nan for x in pooled])
        suc, p20, q20 = _scores(protocol, succ, prec, nprec) if n else (np.nan, np.nan, np.nan)
    else:
        # SUC: mean over sequences of each sequence's success-curve mean == mean of the mean curve.
        succ = np.mean([c[0] for c in seq_curves], axis=0)
        prec = np.mean([c[1] for c in seq_curves], axis=0)
        nprec = np.mean([c[2] for c in seq_curves], axis=0)
        suc, p20, q20 = _scores(protocol, succ, prec, nprec)
    out.update(suc=float(suc), prec=float(p20), norm_prec=float(q20),
               success_curve=succ, precision_curve=prec, norm_precision_curve=nprec)
    for key in ("suc", "prec", "norm_prec", "n_frames"):
        per[key] = np.asarray(per[key], dtype=np.float64 if key != "n_frames" else np.int64)
    out["per_sequence"] = per
    return out


class OPEMetric:
    """Accumulating OPE metric in the mmengine style: :meth:`process` per sequence, :meth:`compute` at the end."""

    def __init__(self, protocol: str = "lasot"):
        self.protocol = check_protocol(protocol)
        self.results: List[Dict[str, object]] = []

    def reset(self) -> None:
        """Forget every processed sequence."""
        self.results = []

    def process(self, pred: np.ndarray, gt: np.ndarray, visible: Optional[np.ndarray] = None,
                image_size: Optional[Tuple[float, float]] = None, name: Optional[str] = None) -> None:
        """Add one sequence: predicted and ground-truth ``N x 4`` boxes, visibility, image ``(W, H)``."""
        self.results.append({"pred": np.asarray(pred, dtype=np.float64).reshape(-1, 4),
                             "gt": np.asarray(gt, dtype=np.float64).reshape(-1, 4),
                             "visible": None if visible is None else np.asarray(visible, dtype=bool),
                             "image_size": image_size,
                             "name": name if name is not None else f"#{len(self.results)}"})

    def compute(self) -> Dict[str, object]:
        """:func:`ope` over every processed sequence."""
        sizes = [r["image_size"] for r in self.results]
        return ope([r["pred"] for r in self.results], [r["gt"] for r in self.results],
                   visible=[r["visible"] for r in self.results], protocol=self.protocol,
                   image_sizes=None if any(s is None for s in sizes) else sizes,
                   names=[r["name"] for r in self.results])
