"""CTRTNL's Algorithm 1 switch (trackers/inference/ctrtnl_switch.py) on hand-made scores."""
import math

import pytest
import torch

from trackers.inference.ctrtnl_switch import AdaptiveRetrievalSwitch

PROPOSALS = torch.tensor([[10., 10., 30., 40.], [12., 8., 34., 38.], [50., 50., 60., 70.]])


class FakeTSR:
    """Records the target sizes it is called with and returns a fixed global box."""

    def __init__(self, box=(100., 80., 130., 120.), score=0.8):
        self.box, self.score, self.calls = box, score, []

    def __call__(self, target_size):
        self.calls.append(target_size)
        return self.box, self.score


def _switch(threshold=0.5):
    sw = AdaptiveRetrievalSwitch(threshold)
    sw.initialize([0., 0., 20., 30.])
    return sw


def test_above_threshold_keeps_the_best_adars_proposal_not_the_best_rpn_one():
    sw, tsr = _switch(), FakeTSR()
    # AdaRS prefers proposal 1 (0.9 > 0.5); the RPN preferred proposal 0; only S^vl decides (Alg. 1 line 16).
    box, info = sw.step(PROPOSALS, [0.7, 0.9, -0.3], tsr, rpn_scores=[0.99, 0.6, 0.1])
    assert box == (12., 8., 34., 38.)
    assert info["mode"] == "local" and info["proposal"] == 1
    assert info["adars_score"] == pytest.approx(0.9) and info["rpn_score"] == pytest.approx(0.6)
    assert info["tsr_score"] is None and tsr.calls == []
    assert sw.search_box == box and sw.search_center == (23., 23.)
    assert sw.target_size == (22., 30.)                   # the accepted box's size feeds the next TSR


def test_below_or_equal_threshold_boots_tsr_and_recentres_the_local_search():
    sw, tsr = _switch(threshold=0.9), FakeTSR()
    box, info = sw.step(PROPOSALS, [0.7, 0.9, -0.3], tsr)  # best 0.9 is not > 0.9 (strict, line 17)
    assert info["mode"] == "global" and info["proposal"] == 1
    assert box == (100., 80., 130., 120.) and info["tsr_score"] == pytest.approx(0.8)
    assert tsr.calls == [(20., 30.)]                       # windows sized from the initial box
    assert sw.search_box == box and sw.search_center == (115., 100.)
    assert info["search_box"] == box
    assert sw.target_size == (20., 30.)                    # a TSR result does not resize the windows
    # next frame: a confident local proposal near the new centre is taken again
    box2, info2 = sw.step(torch.tensor([[105., 85., 125., 115.]]), torch.tensor([0.95]), tsr)
    assert info2["mode"] == "local" and box2 == (105., 85., 125., 115.)
    assert sw.target_size == (20., 30.) and len(tsr.calls) == 1


def test_no_proposals_or_nan_means_retrieval():
    sw, tsr = _switch(), FakeTSR(score=None)
    box, info = sw.step(torch.zeros(0, 4), torch.zeros(0), tsr)
    assert info["mode"] == "global" and info["proposal"] == -1 and math.isnan(info["adars_score"])
    assert info["tsr_score"] is None
    _, info = sw.step(PROPOSALS[:1], [float("nan")], tsr)
    assert info["mode"] == "global" and len(tsr.calls) == 2


def test_decide_and_errors():
    sw = AdaptiveRetrievalSwitch(0.0)
    assert sw.decide(torch.tensor([-0.2, 0.1])) == (True, 1, pytest.approx(0.1))
    assert sw.decide(torch.tensor([-0.2, -0.1]))[0] is False
    with pytest.raises(RuntimeError, match="initialize"):
        sw.step(PROPOSALS, [0.1, 0.2, 0.3], FakeTSR())
    sw.initialize((0, 0, 1, 1))
    with pytest.raises(ValueError, match="3 proposals but 2 scores"):
        sw.step(PROPOSALS, [0.1, 0.2], FakeTSR())
    with pytest.raises(ValueError, match="4 coordinates"):
        sw.initialize([0, 0, 1])
