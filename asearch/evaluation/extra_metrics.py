"""The metrics COST (paper 003) reports beside SUC / P / P_norm: complete success rate (cAUC) and mean accuracy (mACC).

``cauc`` — complete success rate (WebUAV-3M, Zhang et al., TPAMI 2023, arXiv 2201.07425; COST's reference [5])
    The success curve and its area computed with the *complete IoU* (CIoU, Zheng et al., AAAI 2020) in place of the
    IoU, so that a box that overlaps as much but sits off-centre, or has the wrong shape, scores lower::

        cIoU = IoU - rho^2(b_p, b_g) / c^2 - alpha * v
        v     = 4 / pi^2 * (arctan(w_g / h_g) - arctan(w_p / h_p))^2
        alpha = v / ((1 - IoU) + v)            (0 when v = 0)

    ``rho``: distance between the box centres; ``c``: diagonal of the smallest box enclosing both. The value is
    clipped to ``[0, 1]`` before thresholding (it can be negative). Source of the exact form: the WebUAV-3M
    authors' released evaluation toolkit (MMOT_Evaluation_Toolkit, ``rect_iou_complete``: the full CIoU with the
    aspect term, clipped to ``[0, 1]``; the complete success curve uses the same 21 thresholds ``linspace(0, 1,
    21)`` with ``>`` and is averaged over sequences like SUC). The paper's own text was not reachable with the
    search tool; its README names the complete success plot beside the success plot.
    **Choice**: every other rule follows the chosen protocol exactly as SUC does (first frame set to the GT,
    absent / invalid frames failing under ``lasot``, NaN / zero-size predictions repaired, thresholds, ``>`` or
    ``>=``, trapezoid areas under ``trackingnet``, frames pooled under ``got10k``); only the overlap differs.

``macc`` — mean accuracy (Anti-UAV, Jiang et al., IEEE TMM 2023; COST's reference [115])
    Per sequence of ``T`` frames, ``acc = 1/T * sum_t [IoU_t * d(v_t) + p_t * (1 - d(v_t))]`` with ``d(v_t) = 1``
    when the target is visible in frame ``t``; ``p_t = 1`` when the tracker reports the target absent in an absent
    frame, else 0. ``mACC`` = mean of ``acc`` over sequences. So a visible frame scores its IoU and an absent
    frame scores 1 only when the tracker says "absent".
    **Choices**: visibility is the reader's ``visible`` flag; a prediction *reports absence* when a value is
    NaN / infinite or its width or height is ``<= 0`` (an ``0,0,0,0`` row); such a prediction on a visible frame
    scores IoU 0 (it is not repaired as for SUC). Every frame counts as given, frame 0 included (the Anti-UAV
    measure has no first-frame rule; trackers write the initial box there), whatever the protocol.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence as Seq, Tuple

import numpy as np

from asearch.errors import ConfigError, DataError
from asearch.evaluation.metrics import (
    check_protocol, threshold_curves, sequence_errors, protocol_thresholds, trapezoid_unit, iou,
)

__all__ = ["EXTRA_METRICS", "complete_iou", "complete_success", "sequence_accuracy", "mean_accuracy",
           "extra_scores"]

#: Names accepted by ``asearch evaluate --metrics``, with their table column.
EXTRA_METRICS: Dict[str, str] = {"cauc": "cAUC", "macc": "mACC"}


def complete_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-row complete IoU of ``x, y, w, h`` boxes (module doc), clipped to ``[0, 1]``.

    Identical boxes give exactly 1; a zero-size box gives 0; a non-finite input gives NaN (fails every threshold).
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    base = iou(pred, gt)  # exact 1 for identical boxes, NaN for non-finite rows
    out = base.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        sized = (pred[:, 2:] > 0).all(axis=1) & (gt[:, 2:] > 0).all(axis=1) & np.isfinite(base)
        p, g, u = pred[sized], gt[sized], base[sized]
        rho2 = (((p[:, :2] + 0.5 * p[:, 2:]) - (g[:, :2] + 0.5 * g[:, 2:])) ** 2).sum(axis=1)
        lo = np.minimum(p[:, :2], g[:, :2])
        hi = np.maximum(p[:, :2] + p[:, 2:], g[:, :2] + g[:, 2:])
        c2 = ((hi - lo) ** 2).sum(axis=1)  # > 0: both boxes have a positive size
        v = 4.0 / np.pi ** 2 * (np.arctan(g[:, 2] / g[:, 3]) - np.arctan(p[:, 2] / p[:, 3])) ** 2
        denom = (1.0 - u) + v
        alpha = np.where(v > 0, v / np.where(denom > 0, denom, 1.0), 0.0)
        out[sized] = u - rho2 / c2 - alpha * v
    out[~sized & np.isfinite(base)] = 0.0
    return np.clip(out, 0.0, 1.0)


def complete_success(predictions: Seq[np.ndarray], ground_truths: Seq[np.ndarray],
                     visible: Optional[Seq[np.ndarray]] = None, protocol: str = "lasot",
                     image_sizes: Optional[Seq[Tuple[float, float]]] = None, first_frame: str = "gt"
                     ) -> Dict[str, object]:
    """cAUC: the success score of :func:`~asearch.evaluation.metrics.ope` with :func:`complete_iou` as overlap.

    Returns ``{"cauc": float, "curve": mean complete success curve, "per_sequence": per-sequence scores}``
    (fractions in ``[0, 1]``; frames pooled for ``got10k`` as its SUC is).
    """
    check_protocol(protocol)
    preds, gts, vis = _checked(predictions, ground_truths, visible)
    if protocol == "got10k" and (image_sizes is None or len(image_sizes) != len(preds)):
        raise ConfigError("protocol 'got10k' clips boxes to the image: pass image_sizes, one (W, H) per sequence")
    thr = protocol_thresholds(protocol)
    ge = protocol == "trackingnet"
    curves: List[np.ndarray] = []
    per: List[float] = []
    pooled: List[np.ndarray] = []
    for i, (pred, gt, v) in enumerate(zip(preds, gts, vis)):
        size = None if image_sizes is None else tuple(image_sizes[i])
        ious, errs, nerrs, n = sequence_errors(protocol, pred, gt, v, size, overlap=complete_iou,
                                               first_frame=first_frame)
        succ = threshold_curves(ious, errs, nerrs, thr, ge, n)[0]
        curves.append(succ)
        pooled.append(ious)
        per.append(_success_score(protocol, succ) if n > 0 else float("nan"))
    if protocol == "got10k":
        ious = np.concatenate(pooled)
        curve = threshold_curves(ious, ious, ious, thr, False, len(ious))[0]
    else:
        curve = np.mean(curves, axis=0)
    score = _success_score(protocol, curve) if np.isfinite(curve).all() else float("nan")
    return {"cauc": float(score), "curve": curve, "per_sequence": np.asarray(per, dtype=np.float64)}


def _success_score(protocol: str, curve: np.ndarray) -> float:
    """The area of a success curve as the protocol scores SUC: trapezoid for ``trackingnet``, else the mean."""
    return trapezoid_unit(curve) if protocol == "trackingnet" else float(np.mean(curve))


def _reports_absent(pred: np.ndarray) -> np.ndarray:
    """Rows where the tracker says "absent": a non-finite value, or a width or height ``<= 0``."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(pred).all(axis=1) | ~(pred[:, 2] > 0) | ~(pred[:, 3] > 0)


def sequence_accuracy(pred: np.ndarray, gt: np.ndarray, visible: Optional[np.ndarray] = None) -> float:
    """Anti-UAV accuracy of one sequence (module doc): mean over frames of the IoU where the target is visible
    and of "reported absent" (1 / 0) where it is not."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    vis = np.ones(len(gt), dtype=bool) if visible is None else np.asarray(visible, dtype=bool).reshape(-1)
    absent_pred = _reports_absent(pred)
    overlap = np.nan_to_num(iou(pred, gt), nan=0.0)
    overlap[absent_pred] = 0.0
    score = np.where(vis, overlap, absent_pred.astype(np.float64))
    return float(score.mean())


def mean_accuracy(predictions: Seq[np.ndarray], ground_truths: Seq[np.ndarray],
                  visible: Optional[Seq[np.ndarray]] = None) -> Dict[str, object]:
    """mACC: ``{"macc": mean of the per-sequence accuracies, "per_sequence": array}``."""
    preds, gts, vis = _checked(predictions, ground_truths, visible)
    per = np.asarray([sequence_accuracy(p, g, v) for p, g, v in zip(preds, gts, vis)], dtype=np.float64)
    return {"macc": float(per.mean()), "per_sequence": per}


def extra_scores(metrics: Seq[str], predictions: Seq[np.ndarray], ground_truths: Seq[np.ndarray],
                 visible: Optional[Seq[np.ndarray]] = None, protocol: str = "lasot",
                 image_sizes: Optional[Seq[Tuple[float, float]]] = None, first_frame: str = "gt"
                 ) -> Dict[str, Dict[str, object]]:
    """Each requested metric (``cauc``, ``macc``) -> its result dict; an unknown name is a ConfigError.
    ``first_frame``: how cAUC scores frame 0 (:data:`~asearch.evaluation.metrics.FIRST_FRAME`); mACC counts every
    frame as given already."""
    unknown = [m for m in metrics if m not in EXTRA_METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(EXTRA_METRICS)}")
    out: Dict[str, Dict[str, object]] = {}
    for m in metrics:
        if m == "cauc":
            out[m] = complete_success(predictions, ground_truths, visible, protocol, image_sizes, first_frame)
        else:
            out[m] = mean_accuracy(predictions, ground_truths, visible)
    return out


def _checked(predictions: Seq[np.ndarray], ground_truths: Seq[np.ndarray], visible: Optional[Seq[np.ndarray]]
             ) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray]]:
    """Arrays per sequence with matching lengths; a mismatch is a DataError naming the sequence index."""
    if len(predictions) != len(ground_truths):
        raise DataError(f"{len(predictions)} prediction arrays but {len(ground_truths)} ground-truth arrays",
                        field="predictions")
    if not predictions:
        raise DataError("no sequences to evaluate", field="predictions")
    if visible is not None and len(visible) != len(predictions):
        raise DataError(f"{len(predictions)} sequences but {len(visible)} visibility arrays", field="visible")
    preds, gts, vis = [], [], []
    for i, (p, g) in enumerate(zip(predictions, ground_truths)):
        p = np.asarray(p, dtype=np.float64).reshape(-1, 4)
        g = np.asarray(g, dtype=np.float64).reshape(-1, 4)
        if len(p) != len(g) or len(g) == 0:
            raise DataError(f"sequence #{i}: {len(p)} predicted boxes for {len(g)} ground-truth frames",
                            field="predictions")
        v = (np.ones(len(g), dtype=bool) if visible is None or visible[i] is None
             else np.asarray(visible[i], dtype=bool).reshape(-1))
        if len(v) != len(g):
            raise DataError(f"sequence #{i}: {len(v)} visibility flags for {len(g)} frames", field="visible")
        preds.append(p)
        gts.append(g)
        vis.append(v)
    return preds, gts, vis
