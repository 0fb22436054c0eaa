"""OPE protocols against worked examples computed by hand (tiny sequences of 3-5 frames).

Grids: success thresholds t_k = k/20 (21 points; got10k k/100, 101 points), precision 0..50 px and 0..0.5
(51 points; trackingnet 21 points 0:2.5:50 and 0:0.025:0.5). A frame with IoU v counts at every threshold t < v
(``>``) or t <= v (``>=``, trackingnet). Boxes are x, y, w, h.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asearch.errors import ConfigError, DataError
from asearch.evaluation import OPEMetric, center_error, default_protocol, iou, ope

NAN4 = [np.nan] * 4

# Sequence A (5 frames), GT box 10x10 at (10, 10) except frame 4.
#   f0: prediction NaN -> replaced by the GT (and frame 0 is set to the GT anyway): IoU 1 -> 20 of 21 thresholds
#       (at t = 1, IoU 1 > 1 is false).
#   f1: identical box: IoU 1 -> 20.
#   f2: shifted by 5 px: inter 5x10 = 50, union 150, IoU 1/3 -> t in {0, ..., 0.30}: 7; centre error 5 px;
#       normalized error 5/10 = 0.5.
#   f3: target absent (visible False), identical box.
#   f4: GT (10, 10, 0, 10) has zero width (invalid GT), visible; prediction (10, 10, 10, 10): IoU 0 (zero
#       intersection), centre error 5 px, normalized error 5/0 = inf.
GT_A = np.array([[10, 10, 10, 10], [10, 10, 10, 10], [10, 10, 10, 10], [10, 10, 10, 10], [10, 10, 0, 10]], float)
PRED_A = np.array([NAN4, [10, 10, 10, 10], [15, 10, 10, 10], [10, 10, 10, 10], [10, 10, 10, 10]], float)
VIS_A = np.array([True, True, True, False, True])

# Sequence B (4 frames), GT 20x20 at (20, 20).
#   f0: any prediction -> GT: 20 counts, errors 0.
#   f1: (25, 20, 20, 20): inter 15x20 = 300, union 500, IoU 0.6 -> t in {0, ..., 0.55}: 12; error 5 px, norm 0.25.
#   f2: NaN -> previous box (25, 20, 20, 20): 12. f3: zero width -> previous (repaired) box: 12.
GT_B = np.full((4, 4), 20.0)
PRED_B = np.array([[30, 30, 5, 5], [25, 20, 20, 20], NAN4, [1, 1, 0, 5]], float)


def test_iou_and_center_error_formulas():
    assert iou([[15, 10, 10, 10]], [[10, 10, 10, 10]])[0] == pytest.approx(1 / 3)
    assert iou([[100, 100, 5, 5]], [[10, 10, 10, 10]])[0] == 0.0
    # identical fractional boxes: the textbook min(x1+w1, x2+w2) - max(x1, x2) gives (0.1 + 0.2) - 0.1 =
    # 0.20000000000000004 (IoU > 1) or (1 + 3.02) - 1 = 3.0199999999999996 (IoU < 1); here both are exactly 1
    assert iou([[0.1, 0.1, 0.2, 0.2]], [[0.1, 0.1, 0.2, 0.2]])[0] == 1.0
    assert iou([[0.0, 1.0, 1.0, 3.02]], [[0.0, 1.0, 1.0, 3.02]])[0] == 1.0
    assert math.isnan(iou([NAN4], [[0, 0, 1, 1]])[0])
    assert center_error([[13, 14, 10, 10]], [[10, 10, 10, 10]])[0] == pytest.approx(5.0)
    # centres (18, 19) and (15, 20): offset (3, -1), divided by the GT size (10, 20): (0.3, -0.05)
    assert center_error([[13, 14, 10, 10]], [[10, 10, 10, 20]], normalized=True)[0] == pytest.approx(
        math.sqrt(0.3 ** 2 + 0.05 ** 2))


def test_lasot_protocol_worked_example():
    # absent f3 and invalid-GT f4 fail everything: success counts 20+20+7+0+0 = 47 of 5x21;
    # P@20: f0, f1, f2 -> 3/5; P_norm@0.2: f0, f1 -> 2/5.
    res = ope([PRED_A, PRED_B], [GT_A, GT_B], visible=[VIS_A, None], protocol="lasot")
    per = res["per_sequence"]
    assert per["suc"][0] == pytest.approx(47 / 105)
    assert per["prec"][0] == pytest.approx(3 / 5)
    assert per["norm_prec"][0] == pytest.approx(2 / 5)
    # B: 20+12+12+12 = 56 of 4x21; all errors <= 20 px; norm error 0.25 > 0.2 except f0.
    assert per["suc"][1] == pytest.approx(56 / 84)
    assert per["prec"][1] == pytest.approx(1.0)
    assert per["norm_prec"][1] == pytest.approx(1 / 4)
    assert res["suc"] == pytest.approx((47 / 105 + 56 / 84) / 2)
    assert res["prec"] == pytest.approx((0.6 + 1.0) / 2)
    assert res["norm_prec"] == pytest.approx((0.4 + 0.25) / 2)
    # curve of A at t = 0.30 (k = 6): f0, f1, f2 -> 3/5; at t = 0.35: 2/5; at t = 1: nobody
    assert res["success_curve"].shape == (21,)
    assert res["thresholds"]["success"][3] == 0.15
    assert res["success_curve"][-1] == 0.0
    np.testing.assert_allclose(per["iou"][0], [1, 1, 1 / 3, -1, -1])  # -1: failed frame
    assert res["precision_curve"].shape == (51,) and res["norm_precision_curve"].shape == (51,)


def test_lasot_identical_boxes_do_not_count_at_threshold_one():
    gt = np.array([[0.1, 0.1, 0.2, 0.2]] * 3)
    res = ope([gt.copy()], [gt], protocol="lasot")
    assert res["success_curve"][-1] == 0.0  # IoU clipped to 1 and 1 > 1 is false
    assert res["success_curve"][-2] == 1.0
    assert res["suc"] == pytest.approx(20 / 21)


def test_matlab_protocol_worked_example():
    # absent f3 fails everything; invalid-GT f4 fails success but is a precision success (centre error -1).
    res = ope([PRED_A], [GT_A], visible=[VIS_A], protocol="matlab")
    assert res["suc"] == pytest.approx(47 / 105)
    assert res["prec"] == pytest.approx(4 / 5)       # f0, f1, f2, f4
    assert res["norm_prec"] == pytest.approx(3 / 5)  # f0, f1, f4


def test_otb_protocol_worked_example():
    # no special handling: absent f3 is an ordinary identical box (20); f4 has IoU 0 (0 counts) and a 5 px error:
    # 20+20+7+20+0 = 67.
    res = ope([PRED_A], [GT_A], visible=[VIS_A], protocol="otb")
    assert res["suc"] == pytest.approx(67 / 105)
    assert res["prec"] == pytest.approx(1.0)
    assert res["norm_prec"] == pytest.approx(3 / 5)  # f2 (0.5) and f4 (inf) fail


def test_border_boxes_and_nan_ground_truth():
    # GT at x = y = 0 (a 0-based box touching the border) and a NaN GT in frame 1; predictions equal the GT rows.
    gt = np.array([[0, 0, 10, 10], NAN4, [0, 0, 10, 10]], float)
    pred = np.array([[0, 0, 10, 10]] * 3, float)
    # otb: the NaN frame fails every threshold (IoU and error are NaN): (20 + 0 + 20) / 63, P 2/3
    res = ope([pred], [gt], protocol="otb")
    assert res["suc"] == pytest.approx(40 / 63) and res["prec"] == pytest.approx(2 / 3)
    # lasot: x = 0 is valid (only w, h decide), the NaN frame is invalid and fails: same numbers
    res = ope([pred], [gt], protocol="lasot")
    assert res["suc"] == pytest.approx(40 / 63) and res["prec"] == pytest.approx(2 / 3)
    # matlab: every frame has a value <= 0 or NaN -> invalid: success fails, precision succeeds (error -1)
    res = ope([pred], [gt], protocol="matlab")
    assert res["suc"] == 0.0 and res["prec"] == 1.0 and res["norm_prec"] == 1.0


def test_got10k_protocol_worked_example():
    # image 100 x 50. Frame 0 excluded; cover-0 frames dropped; boxes bounded by the image as the toolkit's
    # rect_iou(bound=(W, H)): x to [0, W], then w to [0, W - x] (likewise y, h); IoUs pooled.
    gt1 = np.array([[10, 10, 20, 20], [10, 10, 20, 20], [10, 10, 20, 20], [90, 10, 20, 20]], float)
    pred1 = np.array([[0, 0, 1, 1], [20, 10, 20, 20], [10, 10, 20, 20], [95, 10, 20, 20]], float)
    vis1 = np.array([True, True, False, True])
    # f1: inter 10x20 = 200, union 600: 1/3. f3: GT clipped to (90, 10, 10, 20), prediction to (95, 10, 5, 20):
    # inter 100, union 200: 0.5 (0.6 without clipping).
    gt2 = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    # bounded to (0, 0, 20, 10), the width kept: inter 100, union 200: 0.5 (corner clipping would give IoU 1)
    pred2 = np.array([NAN4, [-10, 0, 20, 10]], float)
    res = ope([pred1, pred2], [gt1, gt2], visible=[vis1, None], protocol="got10k",
              image_sizes=[(100, 50), (100, 50)])
    assert res["ao"] == pytest.approx((1 / 3 + 0.5 + 0.5) / 3)
    assert res["sr50"] == 0.0  # 0.5 > 0.5 is false
    assert res["sr75"] == 0.0
    np.testing.assert_allclose(res["per_sequence"]["ao"], [(1 / 3 + 0.5) / 2, 0.5])
    np.testing.assert_array_equal(res["per_sequence"]["n_frames"], [2, 1])
    # 101-point curve: IoU 1/3 counts at t = 0..0.33 (34), each 0.5 at 0..0.49 (50)
    assert res["success_curve"].shape == (101,)
    assert res["suc"] == pytest.approx((34 + 50 + 50) / 303)
    assert res["n_frames"] == 3
    with pytest.raises(ConfigError, match="image_sizes"):
        ope([pred1], [gt1], protocol="got10k")


def _toolkit_rect_iou(rects1: np.ndarray, rects2: np.ndarray, bound) -> np.ndarray:
    """The GOT-10k toolkit's rect_iou with a bound, written out from its rules: x clamped to [0, W], w to
    [0, W - x] (likewise y, h) for both sets; intersection / (union + eps), clipped to [0, 1]."""
    r1, r2 = rects1.astype(float).copy(), rects2.astype(float).copy()
    for r in (r1, r2):
        r[:, 0] = np.clip(r[:, 0], 0, bound[0])
        r[:, 1] = np.clip(r[:, 1], 0, bound[1])
        r[:, 2] = np.clip(r[:, 2], 0, bound[0] - r[:, 0])
        r[:, 3] = np.clip(r[:, 3], 0, bound[1] - r[:, 1])
    x1, y1 = np.maximum(r1[:, 0], r2[:, 0]), np.maximum(r1[:, 1], r2[:, 1])
    x2 = np.minimum(r1[:, 0] + r1[:, 2], r2[:, 0] + r2[:, 2])
    y2 = np.minimum(r1[:, 1] + r1[:, 3], r2[:, 1] + r2[:, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = r1[:, 2] * r1[:, 3] + r2[:, 2] * r2[:, 3] - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def test_got10k_ao_and_sr_match_the_toolkit_rules_on_random_boxes():
    """Random sequences with boxes reaching out of the image on every side: AO, SR0.5 and SR0.75 equal the
    toolkit's rules (frame 0 left out, cover-0 frames dropped, IoUs of every sequence pooled)."""
    rng = np.random.default_rng(3)
    preds, gts, vis, sizes, pooled = [], [], [], [], []
    for _ in range(6):
        n = int(rng.integers(5, 40))
        size = (float(rng.integers(40, 200)), float(rng.integers(40, 200)))
        gt = np.column_stack([rng.uniform(-20, size[0], n), rng.uniform(-20, size[1], n),
                              rng.uniform(2, 60, (n, 2))])
        pred = gt + rng.normal(0, 8, (n, 4))
        pred[:, 2:] = np.abs(pred[:, 2:]) + 1.0
        cover = rng.random(n) > 0.2
        preds.append(pred), gts.append(gt), vis.append(cover), sizes.append(size)
        ious = _toolkit_rect_iou(pred[1:], gt[1:], size)
        pooled.append(ious[cover[1:]])
    ious = np.concatenate(pooled)
    res = ope(preds, gts, visible=vis, protocol="got10k", image_sizes=sizes)
    assert res["n_frames"] == len(ious) > 50
    assert res["ao"] == pytest.approx(float(np.mean(ious)), abs=1e-12)
    assert res["sr50"] == pytest.approx(float(np.mean(ious > 0.5)), abs=1e-12)
    assert res["sr75"] == pytest.approx(float(np.mean(ious > 0.75)), abs=1e-12)
    assert 0.0 < res["sr75"] < res["sr50"] < 1.0  # the thresholds are exercised


def test_trackingnet_protocol_worked_example():
    # coordinates rounded (half to even), frame 0 set to the rounded GT, IoU >= t, trapezoid areas.
    gt = np.array([[10.4, 10.6, 9.5, 10.5], [10, 10, 10, 10], [10, 10, 10, 10]], float)
    pred = np.array([[50, 50, 3, 3], [15.4, 10, 10, 10], [10, 10, 10, 10]], float)
    res = ope([pred], [gt], protocol="trackingnet")
    # f1 rounds to (15, 10, 10, 10): IoU exactly 1/3 -> counts at t <= 0.30 (k <= 6) (unrounded 0.2987 would stop at
    # k = 5); f0 and f2 count at all 21 thresholds including t = 1 (>=).
    curve = np.where(np.arange(21) <= 6, 1.0, 2 / 3)
    np.testing.assert_allclose(res["success_curve"], curve)
    # trapezoid on x = k/20: 0.05 * (sum - (y0 + y20) / 2) = 0.05 * (7 + 14 * 2/3 - 5/6) = 0.775
    assert res["suc"] == pytest.approx(0.775)
    # precision: error 5 px counts from threshold 5.0 (k = 2): 0.05 * (2 * 2/3 + 19 - 5/6) = 0.975
    assert res["prec"] == pytest.approx(0.975)
    # normalized: 0.5 counts only at k = 20: 0.05 * (20 * 2/3 + 1 - 5/6) = 0.675
    assert res["norm_prec"] == pytest.approx(0.675)
    assert len(res["thresholds"]["precision"]) == 21 and res["thresholds"]["precision"][2] == 5.0


def test_errors_and_defaults():
    with pytest.raises(ConfigError, match="unknown evaluation protocol 'vot'"):
        ope([GT_B], [GT_B], protocol="vot")
    with pytest.raises(DataError, match="sequence 'bike-1': 3 predicted boxes for 4"):
        ope([GT_B[:3]], [GT_B], names=["bike-1"])
    assert default_protocol("LaSOT") == "lasot" and default_protocol("tnl2k") == "lasot"
    assert default_protocol("otb99_lang") == "otb" and default_protocol("got10k") == "got10k"
    assert default_protocol("trackingnet") == "trackingnet" and default_protocol("synthetic") == "lasot"


def test_opemetric_accumulates_like_ope():
    metric = OPEMetric("lasot")
    metric.process(PRED_A, GT_A, VIS_A, name="a")
    metric.process(PRED_B, GT_B)
    out = metric.compute()
    ref = ope([PRED_A, PRED_B], [GT_A, GT_B], visible=[VIS_A, None])
    assert out["suc"] == pytest.approx(ref["suc"]) and out["prec"] == pytest.approx(ref["prec"])
    assert out["per_sequence"]["name"] == ["a", "#1"]
    metric.reset()
    assert metric.results == []


def test_repair_chain_uses_repaired_previous_box():
    from asearch.evaluation.metrics import repair_predictions

    gt = np.array([[1, 1, 4, 4]] * 4, float)
    pred = np.array([[0, 0, 0, 3], [np.inf, 0, 1, 1], [2, 2, 5, 5], [3, 3, 5, -1]], float)
    np.testing.assert_array_equal(repair_predictions(pred, gt), [[1, 1, 4, 4], [1, 1, 4, 4], [2, 2, 5, 5],
                                                                 [2, 2, 5, 5]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(0.5, 40), st.floats(0.5, 40)),
                min_size=2, max_size=2))
def test_iou_properties(boxes):
    a, b = (np.array([list(x)]) for x in boxes)
    v = iou(a, b)[0]
    assert 0.0 <= v <= 1.0 and v == iou(b, a)[0] and iou(a, a)[0] == 1.0
