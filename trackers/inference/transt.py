"""TransT's inference policy (also VLT_TT's): template cached once per video, per frame one search crop, score =
foreground probability with a Hanning window, the best location's box taken as is.

Per frame and video (hyperparameters in :class:`TransTTrackerConfig`):

1. Crops (:class:`~asearch.data.crops.ContextFactorCrop`, TransT's rule in its tracker and in its training
   ``sample_target`` alike, so also the rule the pair sampler trains this family on): side
   ``ceil(sqrt((w + p)(h + p)))`` with ``p = (f - 1)·(w + h) / 2`` around the previous centre,
   ``f = template_factor = 2`` for the template (first frame, resized to 128) and ``f = search_factor = 4`` for the
   search crop (resized to 256).
2. ``score = softmax(logits)[:, FOREGROUND]`` over the ``L×L`` locations; with the Hanning window ``H``
   (:func:`~trackers.inference.base.hann2d`, the outer product of ``np.hanning(L)``):
   ``pscore = (1 - window_influence)·score + window_influence·H`` (TransT: 0.49).
3. The argmax location's box (normalised ``cx, cy, w, h`` of the search crop) times the search size, mapped back to
   the image with :func:`~asearch.data.crops.box_from_crop`. No size smoothing (TransT). The box is clipped: centre
   inside the image, sides in ``[min_size, image side]`` (TransT: 10).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from asearch.data.crops import ContextFactorCrop, box_from_crop, crop_square
from asearch.errors import ConfigError, DataError
from trackers.heads.transt import FOREGROUND
from trackers.inference.base import BatchedTracker, clip_center_size, hann2d

__all__ = ["TransTTrackerConfig", "TransTTracker"]


@dataclass
class TransTTrackerConfig:
    """TransT tracking hyperparameters (YAML section ``tracker``); defaults are TransT's."""

    template_factor: float = 2.0
    search_factor: float = 4.0
    window_influence: float = 0.49
    min_size: float = 10.0

    def __post_init__(self) -> None:
        for key in ("template_factor", "search_factor"):
            if not getattr(self, key) >= 1.0:
                raise ConfigError(f"tracker.{key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ConfigError(f"tracker.window_influence must be in [0, 1], got {self.window_influence}")
        if self.min_size < 0:
            raise ConfigError(f"tracker.min_size must be >= 0, got {self.min_size}")

    def crop_rule(self, template_size: int, search_size: int) -> ContextFactorCrop:
        """The family's crop rule, for the tracker and the training pair sampler (the sizes do not enter it)."""
        return ContextFactorCrop(self.template_factor, self.search_factor)


class TransTTracker(BatchedTracker):
    """TransT / VLT_TT tracker; see the module docstring for the policy and :class:`BatchedTracker` for the API.

    Args:
        model: a :class:`~trackers.models.transt.TransTBase` (``template_size``, ``search_size``, ``map_size``).
        cfg: :class:`TransTTrackerConfig`.
        featurizer, genome, device: as :class:`BatchedTracker`.
    """

    def __init__(self, model, cfg: Optional[TransTTrackerConfig] = None, featurizer: Any = None, genome: Any = None,
                 device: Any = None):
        super().__init__(model, featurizer, genome, device)
        self.cfg = cfg or TransTTrackerConfig()
        self.crops = self.cfg.crop_rule(model.template_size, model.search_size)
        side = getattr(model, "window_size", model.map_size)   # COST: its 441 candidates as 21×21
        self.window = torch.tensor(hann2d(side).reshape(-1), dtype=torch.float32, device=self.device)

    def prepare_video(self, image: np.ndarray, box: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
        crop, tbox, center = self.template_crop(image, box, self.crops.template_side)
        video = {"center": np.array(center, dtype=np.float64), "size": np.array(box[2:4], dtype=np.float64)}
        return crop, tbox, video

    def search_crop(self, image: np.ndarray, video: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
        side = self.crops.search_side(float(video["size"][0]), float(video["size"][1]))
        crop = crop_square(image, tuple(video["center"]), side, self.model.search_size)
        return crop, {"center": tuple(video["center"]), "side": side, "image_size": image.shape[:2]}

    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        cfg = self.cfg
        score = F.softmax(outputs["logits"].float(), dim=-1)[..., FOREGROUND]           # B×N
        if score.shape[1] != self.window.numel():
            raise DataError(f"the model gave {score.shape[1]} locations, the tracker's window has "
                            f"{self.window.numel()}")
        pscore = score * (1.0 - cfg.window_influence) + self.window.view(1, -1) * cfg.window_influence
        best = pscore.argmax(dim=1)
        rows = torch.arange(score.shape[0], device=score.device)
        boxes = outputs["boxes"].float()[rows, best] * self.model.search_size          # B×4 cx, cy, w, h (crop px)
        vals = torch.cat([boxes, score[rows, best, None], pscore[rows, best, None]], dim=1).cpu().numpy()
        results = []
        for i, video in enumerate(videos):
            cx_c, cy_c, w_c, h_c, sc, ps = (float(v) for v in vals[i])
            c = crops[i]
            height, width = c["image_size"]
            x, y, w, h = box_from_crop([cx_c - w_c / 2, cy_c - h_c / 2, w_c, h_c], c["center"], c["side"],
                                       self.model.search_size)
            cx, cy = x + w / 2, y + h / 2
            cx, cy, w, h = clip_center_size(cx, cy, w, h, height, width, cfg.min_size)
            video["center"] = np.array([cx, cy])
            video["size"] = np.array([w, h])
            results.append({"box": [cx - w / 2, cy - h / 2, w, h], "score": sc, "pscore": ps})
        return results
