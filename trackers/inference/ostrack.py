"""OSTrack's inference policy (also VLT_OST's), on the batched lockstep base :class:`BatchedTracker`.

Per video and frame (hyperparameters in :class:`OSTrackTrackerConfig`):

1. Template (first frame, once): a square of side ``ceil(sqrt(w·h) · template_factor)`` (factor 2) around the
   box centre, resized to the template size (128); its patch tokens (and the video's language) are cached.
2. Search: a square of side ``ceil(sqrt(w·h) · search_factor)`` (factor 4) around the previous box centre, resized
   to the search size (256); the model runs template + search tokens jointly. Both sides are
   :class:`~asearch.data.crops.AreaFactorCrop`, OSTrack's ``sample_target`` rule, which the pair sampler also
   trains this family on.
3. The score map is multiplied by a Hanning window (:func:`~trackers.inference.base.hann2d` with
   ``centered=True``, OSTrack's:
   ``w_i = (1 - cos(2π (i + 1) / (n + 1))) / 2``, i = 0..n-1, outer product), the box is read at the arg-max
   cell from the size and offset maps (:func:`trackers.heads.center.decode_boxes`), mapped back to the image
   (crop geometry of :mod:`asearch.data.crops`) and clipped: ``x1`` in ``[0, W - margin]``, ``x2`` in
   ``[margin, W]``, width at least ``margin`` (OSTrack's ``clip_box`` with margin 10), the same for y.

The reported ``score`` is the window-free score at the chosen cell. Crops outside the image are padded with the
image's mean colour (the toolkit's crop convention; OSTrack pads with zeros).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from asearch.data.crops import AreaFactorCrop, box_from_crop, crop_square
from asearch.errors import ConfigError
from trackers.heads.center import decode_boxes
from trackers.inference.base import BatchedTracker, hann2d

__all__ = ["OSTrackTrackerConfig", "OSTrackTracker", "clip_box"]


@dataclass
class OSTrackTrackerConfig:
    """OSTrack tracking hyperparameters (YAML section ``tracker``)."""

    template_factor: float = 2.0
    search_factor: float = 4.0
    window: bool = True
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


def clip_box(box: np.ndarray, height: int, width: int, margin: float = 0.0) -> np.ndarray:
    """Clip an ``x, y, w, h`` box to the image the way OSTrack does (keeps at least ``margin`` pixels inside)."""
    x1, y1, w, h = (float(v) for v in box)
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0.0, x1), width - margin)
    x2 = min(max(margin, x2), float(width))
    y1 = min(max(0.0, y1), height - margin)
    y2 = min(max(margin, y2), float(height))
    return np.array([x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)])


class OSTrackTracker(BatchedTracker):
    """OSTrack / VLT_OST tracker; the policy is in the module docstring, the API in :class:`BatchedTracker`.

    Args:
        model: an :class:`~trackers.models.ostrack.OSTrack` (or :class:`VLTOST`).
        cfg: :class:`OSTrackTrackerConfig`.
        featurizer, genome, device: as :class:`BatchedTracker` (a genome for a VLT_OST supernet form).
    """

    def __init__(self, model, cfg: OSTrackTrackerConfig = None, featurizer: Any = None, genome: Any = None,
                 device: Any = None):
        super().__init__(model, featurizer, genome, device)
        self.cfg = cfg or OSTrackTrackerConfig()
        self.crops = self.cfg.crop_rule(model.template_size, model.search_size)
        n = model.feat_size
        window = hann2d(n, centered=True) if self.cfg.window else np.ones((n, n))
        self.window = torch.tensor(window, dtype=torch.float32, device=self.device).view(1, 1, n, n)

    def prepare_video(self, image: np.ndarray, box: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
        crop, tbox, _ = self.template_crop(image, box, self.crops.template_side)
        return crop, tbox, {"box": np.asarray(box, dtype=np.float64).copy()}

    def set_video_box(self, video: Dict[str, Any], box: np.ndarray) -> None:
        video["box"] = np.asarray(box, dtype=np.float64).copy()

    def search_crop(self, image: np.ndarray, video: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
        x, y, w, h = video["box"]
        center = (x + w / 2.0, y + h / 2.0)
        side = self.crops.search_side(w, h)
        crop = crop_square(image, center, side, self.model.search_size)
        return crop, {"center": center, "side": side, "image_size": image.shape[:2]}

    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        score = outputs["score_map"].float()
        response = score * self.window
        boxes = decode_boxes(response, outputs["size_map"].float(), outputs["offset_map"].float())
        idx = response.flatten(1).argmax(dim=1, keepdim=True)
        raw = score.flatten(1).gather(1, idx).squeeze(1)                 # score at the chosen cell, window-free
        boxes, raw = boxes.cpu().numpy().astype(np.float64), raw.cpu().numpy()
        s = float(self.model.search_size)
        results = []
        for i, video in enumerate(videos):
            cx, cy, bw, bh = boxes[i] * s                      # crop pixels
            crop_box = np.array([cx - bw / 2.0, cy - bh / 2.0, bw, bh])
            c = crops[i]
            image_box = box_from_crop(crop_box, c["center"], c["side"], self.model.search_size)
            height, width = c["image_size"]
            video["box"] = clip_box(image_box, height, width, self.cfg.margin)
            results.append({"box": video["box"].tolist(), "score": float(raw[i])})
        return results
