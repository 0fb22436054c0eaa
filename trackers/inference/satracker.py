"""SATracker's inference policy: STARK's crops and the corner head's box (paper 002 §4.1 follows STARK).

Per video and frame (hyperparameters in :class:`SATrackerTrackerConfig`):

1. Template (first frame, once): a square of side ``ceil(sqrt(w·h) · 2)`` around the box centre, resized to 128;
   the template side of every stage (keys and values of each TEM), the text stream and SAM's channel selectors are
   computed from it and the video's text ONCE (:meth:`~trackers.models.satracker.SATracker.template`): the template
   never attends to the search region, so none of it changes per frame.
2. Search: a square of side ``ceil(sqrt(w·h) · 5)`` around the previous box centre, resized to 320 (STARK's factor
   5; 320 / 128 = 5 / 2), run through the search side of the stages and the corner head.
3. The box is the corner head's soft-argmax box (no window, no score map: a corner head has none), mapped back to
   the image and clipped as OSTrack's ``clip_box`` (:func:`~trackers.inference.ostrack.clip_box`, margin 10).
   The reported ``score`` is the corner head's ``corner_score`` (the geometric mean of the two corner maps' peak
   probabilities; **choice**, STARK's base tracker reports none).

The crops, the video state and the search crop are :class:`~trackers.inference.ostrack.OSTrackTracker`'s (the same
:class:`~asearch.data.crops.AreaFactorCrop` rule, which the pair sampler also trains this family on); OSTrack's
Hanning window is not built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from asearch.data.crops import AreaFactorCrop, box_from_crop
from asearch.errors import ConfigError
from trackers.inference.base import BatchedTracker, TokenLanguageMixin
from trackers.inference.ostrack import OSTrackTracker, clip_box

__all__ = ["SATrackerTrackerConfig", "SATrackerTracker"]


@dataclass
class SATrackerTrackerConfig:
    """SATracker tracking hyperparameters (YAML section ``tracker``): STARK's crop factors 2 / 5 and the clip
    margin."""

    template_factor: float = 2.0
    search_factor: float = 5.0
    margin: float = 10.0

    def __post_init__(self) -> None:
        for key in ("template_factor", "search_factor"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"tracker.{key} must be > 0, got {getattr(self, key)}")
        if self.margin < 0:
            raise ConfigError(f"tracker.margin must be >= 0, got {self.margin}")

    def crop_rule(self, template_size: int, search_size: int) -> AreaFactorCrop:
        """The family's crop rule, for the tracker and the training pair sampler (the sizes do not enter it)."""
        return AreaFactorCrop(self.template_factor, self.search_factor)


class SATrackerTracker(TokenLanguageMixin, OSTrackTracker):
    """SATracker tracker (module docstring); ``featurizer`` only gives ``language.missing`` (``None``: no
    language). Texts are not padded: the words become per-video state when the video is added."""

    pad_texts = False

    def __init__(self, model, cfg: Optional[SATrackerTrackerConfig] = None, featurizer: Any = None,
                 genome: Any = None, device: Any = None):
        BatchedTracker.__init__(self, model, featurizer, genome, device)   # no Hanning window (OSTrack's __init__)
        self.cfg = cfg or SATrackerTrackerConfig()
        self.crops = self.cfg.crop_rule(model.template_size, model.search_size)

    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        boxes = outputs["pred_boxes"].float().cpu().numpy().astype(np.float64)
        scores = outputs["corner_score"].float().cpu().numpy()
        s = float(self.model.search_size)
        results = []
        for i, video in enumerate(videos):
            cx, cy, bw, bh = boxes[i] * s                      # crop pixels
            crop_box = np.array([cx - bw / 2.0, cy - bh / 2.0, bw, bh])
            c = crops[i]
            image_box = box_from_crop(crop_box, c["center"], c["side"], self.model.search_size)
            height, width = c["image_size"]
            video["box"] = clip_box(image_box, height, width, self.cfg.margin)
            results.append({"box": video["box"].tolist(), "score": float(scores[i])})
        return results
