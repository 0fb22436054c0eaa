"""CTRTNL's local / global switch (paper 004, Algorithm 1 lines 6-23), without a model: plain python and torch.

Per frame, the local tracker (SiamRPN++ keeping its top-G proposals) gives boxes ``C_1..C_G`` and AdaRS scores
them (``S^vl``, Eq. 19). :class:`AdaptiveRetrievalSwitch` then

* takes ``id = argmax_j S_j^vl`` (line 16; the AdaRS score, not the RPN score, picks the proposal);
* keeps the local result ``C_id`` when ``S_id^vl > T^ars`` (line 17: strictly greater), otherwise calls the
  target-specific retrieval (line 21, ``B_i <- TSR(I_i)``, e.g. :meth:`~trackers.models.ctrtnl_tsr.ProposalSelector
  .retrieve`) through a callable, so TSR runs only on the frames that need it;
* re-centres the local search on the result (§3.3: the global result "guides the local tracker to search in the
  region that contains the target in the subsequent frames"): :attr:`search_box` is the frame's output box.

Choices where the paper is silent:

* ``T^ars`` has no value in the paper; it is a required argument (Eq. 19 lies in ``[-2, 2]``).
* The RPN score of the chosen proposal is recorded in the info dict but takes no part in the decision (Alg. 1 uses
  only ``S^vl``).
* No proposals, or a NaN best score, count as "not above the threshold": retrieval.
* The windows of TSR are sized from :attr:`target_size`, the size of the last box AdaRS accepted (or the initial
  box), not of the last TSR result, so repeated retrievals cannot drift in scale.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch

__all__ = ["AdaptiveRetrievalSwitch"]

Box = Tuple[float, float, float, float]
Retrieve = Callable[[Tuple[float, float]], Tuple[Sequence[float], Optional[float]]]


def _box(b: Any) -> Box:
    """A 4-vector (sequence or tensor) as a tuple of floats, ``x1, y1, x2, y2``."""
    v = [float(x) for x in (b.tolist() if isinstance(b, torch.Tensor) else b)]
    if len(v) != 4:
        raise ValueError(f"a box must have 4 coordinates (x1, y1, x2, y2), got {len(v)}")
    return v[0], v[1], v[2], v[3]


class AdaptiveRetrievalSwitch:
    """Algorithm 1's switch for one video: :meth:`initialize` with the first box, then :meth:`step` per frame.

    ``step(proposals G×4, adars_scores G, retrieve, rpn_scores=None) -> (box, info)`` where ``retrieve(target_size)``
    returns ``(box, score)`` of the global search (``score`` may be None). ``info`` records ``mode`` (``'local'``
    or ``'global'``), ``adars_score`` (best ``S^vl``, NaN without proposals), ``proposal`` (its index, -1 when
    none), ``rpn_score``, ``threshold``, ``tsr_score`` and ``search_box``.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.search_box: Optional[Box] = None
        self.target_size: Optional[Tuple[float, float]] = None

    def initialize(self, box: Any) -> None:
        """Start a video from its first box (xyxy): the local search is centred on it."""
        self.search_box = _box(box)
        x1, y1, x2, y2 = self.search_box
        self.target_size = (x2 - x1, y2 - y1)

    @property
    def search_center(self) -> Tuple[float, float]:
        """Centre of the region the local tracker searches next."""
        if self.search_box is None:
            raise RuntimeError("AdaptiveRetrievalSwitch: call initialize(box) first")
        x1, y1, x2, y2 = self.search_box
        return 0.5 * (x1 + x2), 0.5 * (y1 + y2)

    def decide(self, adars_scores: torch.Tensor) -> Tuple[bool, int, float]:
        """Lines 16-17: ``(local, id, S_id)``; ``local`` iff ``S_id > T^ars``; ``(False, -1, nan)`` without
        proposals."""
        s = torch.as_tensor(adars_scores).reshape(-1)
        if s.numel() == 0:
            return False, -1, math.nan
        idx = int(s.argmax())
        best = float(s[idx])
        return best > self.threshold, idx, best                              # NaN > T is False: retrieval

    def step(self, proposals: Any, adars_scores: Any, retrieve: Retrieve,
             rpn_scores: Optional[Any] = None) -> Tuple[Box, Dict[str, Any]]:
        """One frame of Algorithm 1 (lines 16-23); updates :attr:`search_box` (and :attr:`target_size` on a local
        result)."""
        if self.search_box is None or self.target_size is None:
            raise RuntimeError("AdaptiveRetrievalSwitch: call initialize(box) first")
        proposals = torch.as_tensor(proposals, dtype=torch.float64).reshape(-1, 4)
        scores = torch.as_tensor(adars_scores).reshape(-1)
        if scores.numel() != proposals.shape[0]:
            raise ValueError(f"AdaptiveRetrievalSwitch: {proposals.shape[0]} proposals but {scores.numel()} scores")
        local, idx, best = self.decide(scores)
        info: Dict[str, Any] = {"adars_score": best, "proposal": idx, "threshold": self.threshold,
                                "rpn_score": None, "tsr_score": None}
        if rpn_scores is not None and idx >= 0:
            info["rpn_score"] = float(torch.as_tensor(rpn_scores).reshape(-1)[idx])
        if local:
            box = _box(proposals[idx])                                        # line 18: B_i <- C_id
            self.target_size = (box[2] - box[0], box[3] - box[1])
            info["mode"] = "local"
        else:
            found, tsr_score = retrieve(self.target_size)                     # line 21: B_i <- TSR(I_i)
            box = _box(found)
            info["mode"] = "global"
            info["tsr_score"] = None if tsr_score is None else float(tsr_score)
        self.search_box = box                                                 # re-centre the local search
        info["search_box"] = box
        return box, info
