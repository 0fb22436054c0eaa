"""SiamRPN++'s inference policy (also VLT_RPN++'s): SiamFC crops, anchor scores and boxes, scale and ratio change
penalty, cosine window, size smoothing; batched over videos like every tracker of :class:`BatchedTracker`.

Per frame and video (pysot ``pysot/tracker/siamrpn_tracker.py``; hyperparameters in :class:`RPNTrackerConfig`):

1. Crops as SiamCAR's tracker (:class:`~trackers.inference.siamcar.SiamCARTracker`, whose crop, state and smoothing
   code this class inherits): the template side ``s_z = sqrt((w + p)(h + p))``, ``p = context_amount·(w + h)``, the
   search side ``s_z · S / T`` around the previous centre.
2. ``score`` = softmax target probability of every anchor; ``boxes`` = the anchors' decoded deltas
   (:func:`trackers.heads.rpn.decode_boxes`, search-crop ``cx, cy, w, h``).
3. ``penalty = exp(-(r_c · s_c - 1) · penalty_k)`` (:func:`~trackers.inference.siamcar.size_penalty`) and
   ``pscore = penalty · score``.
4. Window: the Hanning window ``np.outer(np.hanning(M), np.hanning(M))`` (SiamCAR's tracker builds it; pysot's
   ``np.tile(window.flatten(), anchor_num)``: the same cell weight for every anchor shape), ``(1 - window_influence)
   · pscore + window_influence · H``; the argmax anchor gives the box.
5. Smoothing: new centre = the chosen box's centre; the size moves by ``lr' = penalty · score · lr`` towards the
   chosen size; clipped to the image (centre inside it, sides in ``[min_size, image side]``; pysot: 10).

The ``topk`` proposals of every frame, the boxes with the highest ``pscore`` (after the penalty, before the window)
in image ``x, y, w, h`` with those scores, are in the result dict under ``proposals`` and ``proposal_scores``, and
in search-crop ``x1, y1, x2, y2`` under ``proposal_crop_boxes``: the input of CTRTNL's retrieval switch (paper 004).

Defaults: pysot's released ``siamrpn_r50_l234_dwxcorr`` values (VOT: penalty_k 0.05, window_influence 0.42, lr
0.38); ``experiments/siamrpnpp/track*.yaml`` hold the per-benchmark sets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from asearch.data.crops import ContextCrop
from asearch.errors import ConfigError
from trackers.heads.rpn import anchor_deltas, anchor_logits, decode_boxes
from trackers.inference.siamcar import SiamCARTracker, TrackerConfig, size_penalty

__all__ = ["RPNTrackerConfig", "RPNTracker"]


@dataclass
class RPNTrackerConfig:
    """SiamRPN++ tracking hyperparameters (YAML section ``tracker``)."""

    context_amount: float = 0.5
    penalty_k: float = 0.05
    window_influence: float = 0.42
    lr: float = 0.38
    min_size: float = 10.0
    topk: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.window_influence <= 1.0:
            raise ConfigError(f"tracker.window_influence must be in [0, 1], got {self.window_influence}")
        if not 0.0 <= self.lr <= 1.0:
            raise ConfigError(f"tracker.lr must be in [0, 1], got {self.lr}")
        if self.topk < 0:
            raise ConfigError(f"tracker.topk must be >= 0, got {self.topk}")

    def crop_rule(self, template_size: int, search_size: int) -> ContextCrop:
        """The family's crop rule, for the tracker and the training pair sampler: SiamFC's context rule."""
        return ContextCrop(self.context_amount, int(template_size), int(search_size))

    def siamcar(self) -> TrackerConfig:
        """The same settings as a SiamCAR tracker config (what the inherited crop and smoothing code reads)."""
        return TrackerConfig(context_amount=self.context_amount, penalty_k=self.penalty_k,
                             window_influence=self.window_influence, lr=self.lr, decoder="argmax",
                             min_size=self.min_size)


class RPNTracker(SiamCARTracker):
    """SiamRPN++ / VLT_RPN++ tracker; see the module docstring for the policy and :class:`BatchedTracker` for the API.

    Args:
        model: a :class:`~trackers.models.rpn.SiamRPNPPBase` (``anchors()``, ``anchor_num``, the crop sizes).
        cfg: :class:`RPNTrackerConfig`.
        featurizer, genome, device: as :class:`BatchedTracker`.
    """

    def __init__(self, model, cfg: Optional[RPNTrackerConfig] = None, featurizer: Any = None, genome: Any = None,
                 device: Any = None):
        self.rpn_cfg = cfg or RPNTrackerConfig()
        super().__init__(model, self.rpn_cfg.siamcar(), featurizer, genome, device)
        self.anchors = model.anchors(device=self.device)                       # (K·M·M)×4 cxcywh
        self.anchor_window = self.window.repeat(model.anchor_num)              # anchor k*M*M + p -> window[p]

    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        cfg = self.rpn_cfg
        k = self.model.anchor_num
        score = F.softmax(anchor_logits(outputs["cls"].float(), k), dim=1)[:, 1]     # B×A
        boxes = decode_boxes(anchor_deltas(outputs["loc"].float(), k), self.anchors)  # B×A×4 crop cxcywh
        b = score.shape[0]
        scale = torch.tensor([c["scale"] for c in crops], dtype=torch.float32, device=score.device).view(b, 1)
        prev = torch.tensor(np.stack([v["size"] for v in videos]), dtype=torch.float32, device=score.device)
        pw, ph = boxes[..., 2].clamp(min=1e-6), boxes[..., 3].clamp(min=1e-6)
        penalty = size_penalty(pw, ph, prev[:, :1] * scale, prev[:, 1:] * scale, cfg.penalty_k)
        pscore = penalty * score
        hp = pscore * (1.0 - cfg.window_influence) + self.anchor_window.view(1, -1) * cfg.window_influence
        best = hp.argmax(dim=1)
        rows = torch.arange(b, device=score.device)
        chosen = torch.cat([boxes[rows, best], torch.stack([penalty[rows, best], score[rows, best],
                                                            pscore[rows, best]], dim=1)], dim=1).cpu().numpy()
        n_top = min(cfg.topk, pscore.shape[1])
        top_scores, top_idx = pscore.topk(n_top, dim=1) if n_top else (pscore[:, :0], best[:, None][:, :0])
        top_boxes = boxes.gather(1, top_idx.unsqueeze(-1).expand(b, n_top, 4)).cpu().numpy()
        top_scores = top_scores.cpu().numpy()
        results = []
        for i, video in enumerate(videos):
            cx_c, cy_c, w_c, h_c, pen, sc, ps = (float(v) for v in chosen[i])
            proposals = self.to_image(video, crops[i], top_boxes[i])           # before the state moves
            proposals[:, :2] -= proposals[:, 2:] / 2
            box = self.move(video, crops[i], (cx_c, cy_c, w_c, h_c), pen * sc * cfg.lr)
            crop_xyxy = np.concatenate([top_boxes[i][:, :2] - top_boxes[i][:, 2:] / 2,
                                        top_boxes[i][:, :2] + top_boxes[i][:, 2:] / 2], axis=1)
            results.append({"box": box, "score": sc, "pscore": ps, "proposals": proposals.tolist(),
                            "proposal_scores": top_scores[i].tolist(), "proposal_crop_boxes": crop_xyxy.tolist()})
        return results
