"""CTRTNL's inference policy (paper 004, Algorithm 1), batched over videos like every :class:`BatchedTracker`.

Per frame and video:

1. SiamRPN++ (:class:`~trackers.inference.rpn.RPNTracker`: crops, scores, penalty, window, smoothing) runs on the
   local search region of the whole batch at once and keeps its ``tracker.topk`` proposals ``C_1..C_G`` (line 6);
2. the proposals, mapped back to search-crop pixels, are PrRoI-pooled from the search features and scored by AdaRS
   against the video's sentence (lines 8-15; :meth:`~trackers.models.ctrtnl.CTRTNL.score_proposals`; the text side,
   lines 1-3, was encoded once when the video was added);
3. :class:`~trackers.inference.ctrtnl_switch.AdaptiveRetrievalSwitch` (one per video) keeps ``C_id`` when its AdaRS
   score is strictly above ``tracker.threshold`` = T^ars (lines 16-18), else TSR runs on the whole frame of that
   video (line 21: backbone and neck on the frame, the selector over the sliding windows, the mean of the top
   ``tsr_topk`` windows);
4. the frame's box re-centres the local search: the video's centre and size become that box (clipped to the image
   as SiamRPN++'s, sides at least ``min_size``).

Each result dict holds ``box`` (``x, y, w, h``), ``score`` (SiamRPN++'s), SiamRPN++'s ``proposals`` /
``proposal_scores`` and the switch's record: ``mode`` (``'local'`` / ``'global'``), ``adars_score``,
``adars_scores`` (every proposal's), ``proposal``, ``rpn_score``, ``threshold``, ``tsr_score``, ``search_box``.

Choices: the output of a local frame is the proposal itself (Alg. 1 line 18, ``B_i <- C_id``), so SiamRPN++'s size
smoothing does not carry over to the next frame; T^ars has no value in the paper (``tracker.threshold`` is
required); TSR runs one video at a time (its windows depend on each video's frame and target).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from asearch.errors import ConfigError
from trackers.inference.base import TokenLanguageMixin, clip_center_size
from trackers.inference.ctrtnl_switch import AdaptiveRetrievalSwitch
from trackers.inference.rpn import RPNTracker, RPNTrackerConfig

__all__ = ["CTRTNLTrackerConfig", "CTRTNLTracker"]


@dataclass
class CTRTNLTrackerConfig(RPNTrackerConfig):
    """SiamRPN++'s tracking keys (:class:`RPNTrackerConfig`; ``topk`` = G proposals, >= 1) plus ``threshold``
    T^ars (required: the paper gives none; Eq. 19 lies in [-2, 2]), ``tsr_topk`` (k = 3 windows averaged) and
    ``tsr_chunk`` (windows scored at once)."""

    threshold: Optional[float] = None
    tsr_topk: int = 3
    tsr_chunk: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.threshold is None:
            raise ConfigError("tracker.threshold (T_ars of Algorithm 1) is required: the paper gives no value "
                              "(AdaRS scores, Eq. 19, lie in [-2, 2])")
        if self.topk < 1:
            raise ConfigError(f"tracker.topk (G proposals for AdaRS) must be >= 1, got {self.topk}")
        if self.tsr_topk < 1 or self.tsr_chunk < 1:
            raise ConfigError(f"tracker.tsr_topk and tracker.tsr_chunk must be >= 1, got {self.tsr_topk}, "
                              f"{self.tsr_chunk}")


class CTRTNLTracker(TokenLanguageMixin, RPNTracker):
    """CTRTNL tracker (module docstring); ``featurizer`` only gives ``language.missing`` (``None``: no language).
    ``asearch track`` keeps each frame's switch record in ``<video>_info.json`` (:attr:`frame_info_keys`), which
    :func:`asearch.evaluation.plots.plot_switch` draws over the video.

    Args:
        model: a :class:`~trackers.models.ctrtnl.CTRTNL`.
        cfg: :class:`CTRTNLTrackerConfig`.
        featurizer, genome, device: as :class:`~trackers.inference.base.BatchedTracker`.
    """

    frame_info_keys = ("mode", "adars_score", "threshold", "proposal", "rpn_score", "tsr_score")

    def __init__(self, model, cfg: CTRTNLTrackerConfig, featurizer: Any = None, genome: Any = None,
                 device: Any = None):
        if not isinstance(cfg, CTRTNLTrackerConfig):
            raise ConfigError("CTRTNLTracker needs a CTRTNLTrackerConfig (tracker.threshold included)")
        self.ctr_cfg = cfg
        self._frames: Optional[List[np.ndarray]] = None
        super().__init__(model, cfg, featurizer, genome, device)

    def prepare_video(self, image: np.ndarray, box: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
        crop, tbox, video = super().prepare_video(image, box)
        switch = AdaptiveRetrievalSwitch(float(self.ctr_cfg.threshold))
        switch.initialize([box[0], box[1], box[0] + box[2], box[1] + box[3]])
        video["switch"] = switch
        return crop, tbox, video

    def track_batch(self, images: Sequence[np.ndarray]) -> List[Dict[str, Any]]:
        self._frames = list(images)                 # TSR reads the whole frame of the videos it runs on
        try:
            return super().track_batch(images)
        finally:
            self._frames = None

    def _retrieve(self, i: int, video: Dict[str, Any], target_size: Tuple[float, float]) -> Tuple[Any, float]:
        """Line 21 for video ``i`` of the batch: TSR on its whole frame."""
        frame = self._frames[i]
        features = self.model.frame_features(self._to_tensor([frame.astype(np.float32)]))
        out = self.model.retrieve(features, (float(frame.shape[1]), float(frame.shape[0])), target_size,
                                  video["template_state"], self.ctr_cfg.tsr_topk, self.ctr_cfg.tsr_chunk)
        return out["box"], float(out["score"])

    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        results = super().postprocess(outputs, crops, videos)
        image_xyxy = []
        for r in results:
            p = np.asarray(r["proposals"], dtype=np.float64).reshape(-1, 4)    # image x, y, w, h
            image_xyxy.append(np.concatenate([p[:, :2], p[:, :2] + p[:, 2:]], 1))
        boxes = torch.tensor(np.stack([np.asarray(r["proposal_crop_boxes"], dtype=np.float64).reshape(-1, 4)
                                       for r in results]), dtype=torch.float32, device=self.device)
        scores = self.model.score_proposals(outputs["features"].float(), boxes,
                                            self._batched_state["text"])["scores"].float().cpu()
        for i, (r, video, crop) in enumerate(zip(results, videos, crops)):
            box, info = video["switch"].step(image_xyxy[i], scores[i], partial(self._retrieve, i, video),
                                             rpn_scores=r["proposal_scores"])
            x1, y1, x2, y2 = box
            height, width = crop["image_size"]
            cx, cy, w, h = clip_center_size((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, height, width,
                                            self.cfg.min_size)
            video["center"], video["size"] = np.array([cx, cy]), np.array([w, h])
            r.update(info, box=[cx - w / 2, cy - h / 2, w, h], adars_scores=scores[i].tolist())
        return results
