"""SiamCAR's inference policy (also VLT_SCAR's): SiamFC crops, score = class probability × centerness, scale and
ratio change penalty, cosine window, size smoothing.

Per frame and video (hyperparameters in :class:`TrackerConfig`):

1. Crop (:class:`~asearch.data.crops.ContextCrop`, the rule the pair sampler trains this family on): template side
   ``s_z = sqrt((w + p)(h + p))``, ``p = context_amount·(w + h)``, resized to the template size T (scale
   ``T / s_z``); the search crop has side ``s_z · S / T`` around the previous centre, at the same scale.
2. Maps: ``cls`` = softmax target probability, ``cen`` = sigmoid centerness, ``l, t, r, b`` at every location
   (search-crop pixels of :meth:`SiamCARBase.locations`). With ``score_upsample = f > 1`` the maps are interpolated
   (align_corners, bicubic for scores, bilinear for distances) to ``(M - 1)·f + 1`` locations of spacing
   ``stride / f``: the same location grid, denser.
3. Penalty (SiamRPN / SiamCAR): ``penalty = exp(-(r_c · s_c - 1) · penalty_k)`` with ``s_c = max(q, 1/q)``,
   ``q = sz(w, h) / sz(w', h')``, ``sz(w, h) = sqrt((w + p)(h + p))``, ``p = (w + h) / 2``, and ``r_c`` the same
   change of the aspect ratio; ``w', h'`` is the previous size at crop scale.
4. ``pscore = penalty · cls · cen``; with the Hanning window ``H``: ``(1 - window_influence)·pscore +
   window_influence·H``; the argmax location gives the box ``(x + (r - l)/2, y + (b - t)/2, l + r, t + b)``.
5. Smoothing: the new centre is the predicted one; the size moves by ``lr' = penalty · cls · lr`` towards the
   predicted size (SiamCAR). The box is clipped: centre inside the image, sides in ``[min_size, image side]``.

Defaults: **choice**, SiamCAR's released hyperparameters differ per benchmark; these are middle values of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from asearch.data.crops import ContextCrop, crop_square
from asearch.errors import ConfigError
from trackers.heads.car import score_locations
from trackers.inference.base import BatchedTracker, clip_center_size

__all__ = ["TrackerConfig", "SiamCARTracker", "change_penalty"]


@dataclass
class TrackerConfig:
    """SiamCAR tracking hyperparameters (YAML section ``tracker``)."""

    context_amount: float = 0.5
    penalty_k: float = 0.04
    window_influence: float = 0.44
    lr: float = 0.33
    score_upsample: int = 1
    min_size: float = 10.0

    def __post_init__(self) -> None:
        if self.score_upsample < 1:
            raise ConfigError(f"tracker.score_upsample must be >= 1, got {self.score_upsample}")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ConfigError(f"tracker.window_influence must be in [0, 1], got {self.window_influence}")
        if not 0.0 <= self.lr <= 1.0:
            raise ConfigError(f"tracker.lr must be in [0, 1], got {self.lr}")

    def crop_rule(self, template_size: int, search_size: int) -> ContextCrop:
        """The family's crop rule, for the tracker and the training pair sampler: SiamFC's context rule."""
        return ContextCrop(self.context_amount, int(template_size), int(search_size))


def _change(r: torch.Tensor) -> torch.Tensor:
    return torch.maximum(r, 1.0 / r)


def _sz(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    pad = (w + h) * 0.5
    return torch.sqrt((w + pad) * (h + pad))


def change_penalty(pw: torch.Tensor, ph: torch.Tensor, tw: torch.Tensor, th: torch.Tensor, penalty_k: float
                   ) -> torch.Tensor:
    """SiamRPN's scale and ratio change penalty ``exp(-(r_c · s_c - 1) · penalty_k)`` (step 3 of the module
    docstring) of predicted sizes ``pw, ph`` against the previous size ``tw, th`` at crop scale (broadcast)."""
    s_c = _change(_sz(pw, ph) / _sz(tw, th))
    r_c = _change((tw / th) / (pw / ph))
    return torch.exp(-(r_c * s_c - 1.0) * penalty_k)


class SiamCARTracker(BatchedTracker):
    """SiamCAR / VLT_SCAR tracker; see the module docstring for the policy and :class:`BatchedTracker` for the API.

    Args:
        model: a :class:`~trackers.models.siamcar.SiamCARBase` (``template_size``, ``search_size``, ``stride``,
            ``location_offset``, ``score_size``).
        cfg: :class:`TrackerConfig`.
        featurizer, genome, device: as :class:`BatchedTracker`.
    """

    def __init__(self, model, cfg: TrackerConfig = None, featurizer: Any = None, genome: Any = None,
                 device: Any = None):
        super().__init__(model, featurizer, genome, device)
        self.cfg = cfg or TrackerConfig()
        self.crops = self.cfg.crop_rule(model.template_size, model.search_size)
        f = self.cfg.score_upsample
        m = model.score_size
        self.map_size = (m - 1) * f + 1
        self.locations = score_locations(self.map_size, model.stride / f, model.location_offset, self.device)
        hann = np.hanning(self.map_size)
        self.window = torch.tensor(np.outer(hann, hann).reshape(-1), dtype=torch.float32, device=self.device)

    def prepare_video(self, image: np.ndarray, box: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
        crop, tbox, center = self.template_crop(image, box, self.crops.template_side)
        video = {"center": np.array(center, dtype=np.float64), "size": np.array(box[2:4], dtype=np.float64),
                 "image_size": image.shape[:2]}
        return crop, tbox, video

    def search_crop(self, image: np.ndarray, video: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
        w, h = video["size"]
        scale = self.model.template_size / self.crops.template_side(w, h)
        side_x = self.crops.search_side(w, h)
        crop = crop_square(image, tuple(video["center"]), side_x, self.model.search_size)
        return crop, {"scale": scale, "image_size": image.shape[:2]}

    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        cfg = self.cfg
        cls = F.softmax(outputs["cls"].float(), dim=1)[:, -1:]           # B×1×M×M target probability
        cen = torch.sigmoid(outputs["cen"].float())                       # B×1×M×M
        loc = outputs["loc"].float()                                      # B×4×M×M (l, t, r, b)
        if cfg.score_upsample > 1:
            size = (self.map_size, self.map_size)
            cls = F.interpolate(cls, size=size, mode="bicubic", align_corners=True).clamp(0.0, 1.0)
            cen = F.interpolate(cen, size=size, mode="bicubic", align_corners=True).clamp(0.0, 1.0)
            loc = F.interpolate(loc, size=size, mode="bilinear", align_corners=True).clamp(min=0.0)
        b = cls.shape[0]
        cls, cen = cls.reshape(b, -1), cen.reshape(b, -1)
        l, t, r, bt = loc.reshape(b, 4, -1).unbind(1)                     # B×N each
        scale = torch.tensor([c["scale"] for c in crops], dtype=torch.float32, device=cls.device).view(b, 1)
        prev = torch.tensor(np.stack([v["size"] for v in videos]), dtype=torch.float32, device=cls.device)
        tw, th = prev[:, :1] * scale, prev[:, 1:] * scale                 # previous size at crop scale
        pw, ph = (l + r).clamp(min=1e-6), (t + bt).clamp(min=1e-6)
        penalty = change_penalty(pw, ph, tw, th, cfg.penalty_k)
        pscore = penalty * cls * cen
        hp = pscore * (1.0 - cfg.window_influence) + self.window.view(1, -1) * cfg.window_influence
        best = hp.argmax(dim=1, keepdim=True)
        pick = lambda v: v.gather(1, best).squeeze(1)                     # noqa: E731
        loc_xy = self.locations[best.squeeze(1)]                          # B×2
        vals = torch.stack([loc_xy[:, 0] + (pick(r) - pick(l)) / 2, loc_xy[:, 1] + (pick(bt) - pick(t)) / 2,
                            pick(pw), pick(ph), pick(penalty), pick(cls), pick(pscore)], dim=1).cpu().numpy()
        results = []
        for i, video in enumerate(videos):
            cx_c, cy_c, w_c, h_c, pen, score, ps = (float(v) for v in vals[i])
            box = self.move(video, crops[i], (cx_c, cy_c, w_c, h_c), pen * score * cfg.lr)
            results.append({"box": box, "score": score, "pscore": ps})
        return results

    def to_image(self, video: Dict[str, Any], crop: Dict[str, Any], boxes: np.ndarray) -> np.ndarray:
        """Search-crop ``cx, cy, w, h`` boxes (``...×4``) -> image ``cx, cy, w, h`` (the crop is centred on the
        video's previous centre at ``crop['scale']``)."""
        boxes = np.asarray(boxes, dtype=np.float64)
        half, s = (self.model.search_size - 1) / 2.0, crop["scale"]
        return np.concatenate([video["center"] + (boxes[..., :2] - half) / s, boxes[..., 2:] / s], axis=-1)

    def move(self, video: Dict[str, Any], crop: Dict[str, Any], box: Tuple[float, float, float, float],
             lr: float) -> List[float]:
        """Step 5 of the module docstring: the video's new state from the chosen crop box ``cx, cy, w, h`` and the
        size rate ``lr``; returns the box ``x, y, w, h`` in the image."""
        cx, cy, w_i, h_i = (float(v) for v in self.to_image(video, crop, np.array(box)))
        w = video["size"][0] * (1 - lr) + w_i * lr
        h = video["size"][1] * (1 - lr) + h_i * lr
        height, width = crop["image_size"]
        cx, cy, w, h = clip_center_size(cx, cy, w, h, height, width, self.cfg.min_size)
        video["center"] = np.array([cx, cy])
        video["size"] = np.array([w, h])
        return [cx - w / 2, cy - h / 2, w, h]
