"""cAUC and mACC (asearch.evaluation.extra_metrics) and the derived attributes (asearch.evaluation.attributes),
each on a worked example computed by hand.

Complete IoU, pred [0, 0, 2, 2] vs GT [1, 0, 2, 2]: overlap 1 x 2 = 2, union 4 + 4 - 2 = 6, IoU 1/3; centres (1, 1)
and (2, 1): rho^2 = 1; enclosing box 3 x 2: c^2 = 13; same aspect: v = 0. cIoU = 1/3 - 1/13 = 10/39 = 0.256.

cAUC, one 2-frame sequence under ``lasot`` (frame 0 set to the GT): frame 0 cIoU 1 > t for 20 of the 21 thresholds
(not t = 1); frame 1 cIoU 0.256 > t for t = 0 .. 0.25 (6 thresholds). cAUC = (20 + 6) / (2 * 21) = 26/42; the IoU
1/3 of the same frame passes 7 thresholds, SUC = 27/42.

mACC, sequence A (4 frames, visible T, T, F, F): frame 0 exact (1), frame 1 IoU 1/3, frame 2 predicts 0,0,0,0 while
the target is absent (1), frame 3 predicts a box while absent (0): acc = (1 + 1/3 + 1 + 0) / 4 = 7/12. Sequence B
(2 frames, visible): IoU 1 and IoU 0 (a 0,0,0,0 row on a visible frame): acc = 1/2. mACC = (7/12 + 1/2) / 2 = 13/24.
"""
import math

import numpy as np
import pytest

from asearch.data.sequence import Sequence
from asearch.errors import ConfigError, DataError
from asearch.evaluation.attributes import (
    average_relative_speed, average_sizes, derived_attribute_flags, is_small_object, relative_speeds,
)
from asearch.evaluation.extra_metrics import (
    complete_iou, complete_success, extra_scores, mean_accuracy, sequence_accuracy,
)
from asearch.evaluation.metrics import ope


def test_complete_iou_worked_examples():
    assert complete_iou([[0, 0, 2, 2]], [[1, 0, 2, 2]])[0] == pytest.approx(10 / 39)
    # aspect term: pred 2 x 1 vs GT 1 x 1 at the origin: IoU 1/2, rho^2 = 0.25, c^2 = 5, v = 4/pi^2 (atan 1 - atan 2)^2
    v = 4 / math.pi ** 2 * (math.atan(1.0) - math.atan(2.0)) ** 2
    expected = 0.5 - 0.25 / 5 - v / (0.5 + v) * v
    assert complete_iou([[0, 0, 2, 1]], [[0, 0, 1, 1]])[0] == pytest.approx(expected)
    same = np.array([[3.1, 7.7, 10.3, 4.9]])
    assert complete_iou(same, same)[0] == 1.0  # exactly, so it does not fail threshold 1 by rounding
    far = complete_iou([[100, 100, 2, 2]], [[0, 0, 2, 2]])[0]
    assert far == 0.0  # negative cIoU clipped
    assert complete_iou([[0, 0, 0, 2]], [[0, 0, 2, 2]])[0] == 0.0
    assert np.isnan(complete_iou([[np.nan, 0, 2, 2]], [[0, 0, 2, 2]])[0])


def test_cauc_worked_example_beside_suc():
    gt = np.array([[1, 0, 2, 2], [1, 0, 2, 2]], dtype=float)
    pred = np.array([[5, 5, 1, 1], [0, 0, 2, 2]], dtype=float)  # frame 0 is replaced by the GT
    res = complete_success([pred], [gt], protocol="lasot")
    assert res["cauc"] == pytest.approx(26 / 42)
    assert res["per_sequence"][0] == pytest.approx(26 / 42)
    assert ope([pred], [gt], protocol="lasot")["suc"] == pytest.approx(27 / 42)
    # an absent frame fails every threshold under lasot, as for SUC: (20 + 0) / 42
    absent = complete_success([pred], [gt], visible=[np.array([True, False])], protocol="lasot")
    assert absent["cauc"] == pytest.approx(20 / 42)
    # perfect tracking: cAUC equals SUC (20/21 under the 21-point '>' rule)
    assert complete_success([gt], [gt])["cauc"] == pytest.approx(20 / 21)


def test_macc_worked_example():
    gt_a = np.array([[0, 0, 2, 2], [1, 0, 2, 2], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    pred_a = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 0, 0], [4, 4, 2, 2]], dtype=float)
    vis_a = np.array([True, True, False, False])
    assert sequence_accuracy(pred_a, gt_a, vis_a) == pytest.approx(7 / 12)
    gt_b = np.array([[0, 0, 2, 2], [0, 0, 2, 2]], dtype=float)
    pred_b = np.array([[0, 0, 2, 2], [0, 0, 0, 0]], dtype=float)
    res = mean_accuracy([pred_a, pred_b], [gt_a, gt_b], [vis_a, None])
    assert res["per_sequence"] == pytest.approx([7 / 12, 1 / 2])
    assert res["macc"] == pytest.approx(13 / 24)
    # NaN also reports absence
    assert sequence_accuracy([[np.nan] * 4], [[0, 0, 1, 1]], [False]) == 1.0


def test_extra_scores_and_bad_input():
    gt = np.array([[0, 0, 2, 2]], dtype=float)
    out = extra_scores(["cauc", "macc"], [gt], [gt])
    assert set(out) == {"cauc", "macc"} and out["macc"]["macc"] == 1.0
    with pytest.raises(ConfigError, match="unknown metric"):
        extra_scores(["bogus"], [gt], [gt])
    with pytest.raises(DataError, match="sequence #0: 2 predicted boxes for 1"):
        mean_accuracy([np.zeros((2, 4))], [gt])
    with pytest.raises(ConfigError, match="image_sizes"):
        complete_success([gt], [gt], protocol="got10k")


def test_relative_speed_eq1_worked_example():
    # centres (2, 2) -> (5, 6): distance 5, sizes 4 and 4 -> 5 / 4 per frame; (5, 6) -> (5, 14): distance 8,
    # sizes 4 and 1 -> 8 / sqrt(4 * 1) = 4 per frame. At 1 fps these are per second; the mean is 2.625.
    boxes = np.array([[0, 0, 4, 4], [3, 4, 4, 4], [4.5, 13.5, 1, 1]], dtype=float)
    assert relative_speeds(boxes, fps=1.0) == pytest.approx([1.25, 4.0])
    assert average_relative_speed(boxes, fps=1.0) == pytest.approx(2.625)
    assert average_relative_speed(boxes, fps=30.0) == pytest.approx(2.625 * 30)
    # an absent middle frame breaks both pairs
    assert np.isnan(average_relative_speed(boxes, visible=[True, False, True]))
    with pytest.raises(ConfigError, match="fps"):
        relative_speeds(boxes, fps=0)


def test_small_object_rule_worked_examples():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 30, 30]], dtype=float)  # sqrt(wh): 10 and 30 -> mean 20 px
    # image 1000 x 4000: sqrt(WH) = 2000, relative size 20 / 2000 = 1 % exactly -> not < 1 %: not small
    assert average_sizes(boxes, (1000, 4000)) == pytest.approx((20.0, 0.01))
    assert not is_small_object(boxes, (1000, 4000))
    assert is_small_object(boxes, (2000, 4000))  # relative 20 / 2828 = 0.71 %
    big = np.array([[0, 0, 24, 24]], dtype=float)  # 24 px >= 22 px: not small in any image
    assert not is_small_object(big, (10000, 10000))
    # absent frames are left out of the averages
    assert average_sizes(np.vstack([boxes, [[0, 0, 500, 500]]]), (2000, 4000),
                         visible=[True, True, False])[0] == pytest.approx(20.0)


def test_derived_attribute_flags():
    def seq(name, boxes):
        return Sequence(name=name, frames=[f"{name}/{i}.jpg" for i in range(len(boxes))], boxes=boxes,
                        visible=[True] * len(boxes))

    slow = seq("slow", [[0, 0, 10, 10], [1, 0, 10, 10]])       # 1 / 10 per frame
    fast = seq("fast", [[0, 0, 10, 10], [10, 0, 10, 10]])      # 10 / 10 per frame
    mid = seq("mid", [[0, 0, 10, 10], [5, 0, 10, 10]])         # 5 / 10 per frame
    flags, values = derived_attribute_flags([slow, fast, mid], ["small_object", "relative_speed"],
                                            image_sizes=[(2000, 2000)] * 3, fps=1.0)
    assert values["relative_speed"] == pytest.approx([0.1, 1.0, 0.5])
    assert values["relative_speed_threshold"] == pytest.approx([0.5])  # the median
    assert [f["high_relative_speed"] for f in flags] == [False, True, False]
    assert all(f["small_object"] for f in flags)  # 10 px, 0.5 %
    flags, _ = derived_attribute_flags([slow, fast, mid], ["relative_speed"], fps=1.0, speed_threshold=0.05)
    assert [f["high_relative_speed"] for f in flags] == [True, True, True]
    with pytest.raises(ConfigError, match="unknown derived attribute"):
        derived_attribute_flags([slow], ["speed"])
    with pytest.raises(ConfigError, match="image size"):
        derived_attribute_flags([slow], ["small_object"])
