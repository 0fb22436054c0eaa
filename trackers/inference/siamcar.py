"""SiamCAR's inference policy (also VLT_SCAR's): SiamFC crops, score = class probability × centerness, scale and
ratio change penalty, cosine window, size smoothing; two decoders of the maps (``tracker.decoder``).

Per frame and video (hyperparameters in :class:`TrackerConfig`); ``M`` is the score-map side (25 in SiamCAR at
127/255), ``S`` the search size, ``T`` the template size, ``s`` the crop scale:

1. Crop (:class:`~asearch.data.crops.ContextCrop`, the rule the pair sampler trains this family on): template side
   ``s_z = sqrt((w + p)(h + p))``, ``p = context_amount·(w + h)``, resized to ``T`` (scale ``s = T / s_z``); the
   search crop has side ``s_z · S / T`` around the previous centre, at the same scale.
2. Maps: ``cls`` = softmax target probability, ``cen`` = centerness, ``l, t, r, b`` at every location (search-crop
   pixels of :meth:`SiamCARBase.locations`).
3. Penalty (SiamRPN / SiamCAR): ``penalty = exp(-(r_c · s_c - 1) · penalty_k)`` with ``s_c = max(q, 1/q)``,
   ``q = sz(w, h) / sz(w', h')``, ``sz(w, h) = sqrt((w + p)(h + p))``, ``p = (w + h) / 2``, and ``r_c`` the same
   change of the aspect ratio; ``w, h = l + r, t + b`` and ``w', h'`` the previous size at crop scale.

``decoder: released`` (default): the released SiamCAR tracker (``pysot/tracker/siamcar_tracker.py`` of
ohhhyeahhh/SiamCAR, ``track`` / ``getCenter`` / ``coarse_location`` / ``accurate_location``; its config
``pysot/core/config.py``: ``SCORE_SIZE = 25``, ``STRIDE = 8``, ``REGION_S = 0.1``, ``REGION_L = 0.44``,
``hanming = True``):

R1. ``cen`` is the head's raw output (the released model applies no sigmoid before the tracker), min-max normalised
    per frame: ``(cen - min) / (max - min)``. The released code divides by ``ptp`` unguarded (a flat map gives
    0/0 = NaN); here a map whose ``max - min <= 1e-12`` (:data:`FLAT_EPS`) normalises to ones, so it leaves
    ``penalty · cls`` unchanged (a flat centerness says nothing about where the target is).
R2. On the ``M×M`` map: ``p = penalty · cls · cen`` and ``hp = (1 - window_influence)·p + window_influence·H``,
    ``H`` the ``M×M`` Hann window (``np.hanning``, :func:`~trackers.inference.base.hann2d`).
R3. ``hp``, ``p``, ``cls`` and ``ltrb`` are upsampled with bicubic interpolation to ``U = (M - 1)·stride + 1``
    (193 at M = 25): ``cv2.resize(..., INTER_CUBIC)`` in the released code, i.e. half-pixel sampling with the
    cubic kernel ``a = -0.75`` and replicated borders, which is ``F.interpolate(mode="bicubic",
    align_corners=False)``. The products are upsampled, not their factors. Upsampled index ``i`` is read as crop
    pixel ``offset + i`` (one pixel apart: ``accurate_location`` adds ``int((S - (M - 1)·8) / 2)`` = 31 at
    127/255, the model's ``location_offset`` here).
R4. Coarse location: ``(r*, c*) = argmax hp_up``; the coarse cell ``(round(r* / (U / M)), round(c* / (U / M)))``
    (round half to even, as numpy's), clipped to the map (the released code clips to ``[0, M]``, which indexes
    past the map at ``M``; here ``[0, M - 1]``), gives its coarse ``l, t, r, b``.
R5. Region (the coarse REGION_S / REGION_L mask): each distance is clipped to ``[int(region_s·T),
    int(region_l·T)]`` (fractions of the TEMPLATE size ``cfg.TRACK.EXEMPLAR_SIZE``: 12 and 55 pixels at T = 127),
    limited by the room to the map border (``c*`` on the left, ``U - c*`` on the right, the same for rows) and
    halved (``int``). The mask is rows ``r* - t' .. r* + b'`` and columns ``c* - l' .. c* + r'`` (inclusive).
R6. Fine location: the argmax of ``p_up · mask`` (the window-free score inside the region) is the new centre,
    read at the peak itself (no ``(r - l) / 2`` shift); the size is ``w = l_up + r_up``, ``h = t_up + b_up`` at the
    peak.
R7. Size smoothing: ``lr' = penalty' · cls_up(peak) · lr`` with ``penalty'`` recomputed from the new size; as
    released, ``s_c`` compares the new size in IMAGE pixels (``ave_w = (l + r) / scale_z``) with the previous size
    at CROP scale (``size · scale_z``): kept, it is what the released hyperparameters were tuned with.
    ``cls_up(peak)`` is clipped to ``[0, 1]`` here (the reported score is a probability; the released code does not
    clip bicubic overshoot, a difference in ``lr'`` of at most that overshoot, ~1e-4).

``decoder: argmax`` (the toolkit's earlier decoder): ``cen = sigmoid`` of the head's output; with
``score_upsample = f > 1`` the maps are interpolated (align_corners, bicubic for scores, bilinear for distances) to
``(M - 1)·f + 1`` locations of spacing ``stride / f``; ``pscore = penalty · cls · cen``,
``(1 - window_influence)·pscore + window_influence·H`` and the argmax location gives the box
``(x + (r - l)/2, y + (b - t)/2, l + r, t + b)``; ``lr' = penalty · cls · lr`` at that location.

Both: the new centre is the decoded one; the size moves by ``lr'`` towards the decoded size (SiamCAR). The box is
clipped: centre inside the image, sides in ``[min_size, image side]`` (the released code clips sides to
``[0, image side]``).

Defaults: SiamCAR's released hyperparameters for LaSOT (``cfg.HP_SEARCH.LaSOT`` = lr 0.33, penalty_k 0.04,
window_influence 0.3); ``experiments/vlt_scar/track_<dataset>.yaml`` holds the per-benchmark ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from asearch.data.crops import ContextCrop, crop_square
from asearch.errors import ArchitectureError, ConfigError
from trackers.heads.car import score_locations
from trackers.inference.base import BatchedTracker, clip_center_size, hann2d

__all__ = ["TrackerConfig", "SiamCARTracker", "DECODERS", "FLAT_EPS", "size_penalty", "normalise_centerness",
           "upsample_bicubic", "released_region"]

#: the decoders of ``tracker.decoder`` (module docstring)
DECODERS = ("released", "argmax")
#: a centerness map whose max - min is at most this is flat: it normalises to ones (step R1)
FLAT_EPS = 1e-12


@dataclass
class TrackerConfig:
    """SiamCAR tracking hyperparameters (YAML section ``tracker``); defaults: the released LaSOT ones."""

    context_amount: float = 0.5
    penalty_k: float = 0.04
    window_influence: float = 0.3
    lr: float = 0.33
    decoder: str = "released"
    region_s: float = 0.1
    region_l: float = 0.44
    score_upsample: int = 1
    min_size: float = 10.0

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ConfigError(f"tracker.decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.score_upsample < 1:
            raise ConfigError(f"tracker.score_upsample must be >= 1, got {self.score_upsample}")
        if self.decoder == "released" and self.score_upsample != 1:
            raise ConfigError(f"tracker.score_upsample ({self.score_upsample}) applies to decoder 'argmax' only: the "
                              "released decoder always upsamples to (M - 1)·stride + 1; leave it at 1")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ConfigError(f"tracker.window_influence must be in [0, 1], got {self.window_influence}")
        if not 0.0 <= self.lr <= 1.0:
            raise ConfigError(f"tracker.lr must be in [0, 1], got {self.lr}")
        if not 0.0 <= self.region_s <= self.region_l:
            raise ConfigError(f"tracker.region_s and region_l must satisfy 0 <= region_s <= region_l, got "
                              f"{self.region_s} and {self.region_l}")

    def crop_rule(self, template_size: int, search_size: int) -> ContextCrop:
        """The family's crop rule, for the tracker and the training pair sampler: SiamFC's context rule."""
        return ContextCrop(self.context_amount, int(template_size), int(search_size))


def _change(r: torch.Tensor) -> torch.Tensor:
    return torch.maximum(r, 1.0 / r)


def _sz(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    pad = (w + h) * 0.5
    return torch.sqrt((w + pad) * (h + pad))


def size_penalty(w: torch.Tensor, h: torch.Tensor, tw: torch.Tensor, th: torch.Tensor, k: float,
                 w_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """SiamCAR's penalty ``exp(-(r_c · s_c - 1) · k)`` of predicted sizes ``w, h`` against the previous ``tw, th``
    (module docstring, step 3). ``w_scale``: the sizes in ``s_c`` are ``w / w_scale`` (step R7's released mix)."""
    w, h = w.clamp(min=1e-6), h.clamp(min=1e-6)
    sw, sh = (w, h) if w_scale is None else (w / w_scale, h / w_scale)
    s_c = _change(_sz(sw, sh) / _sz(tw, th))
    r_c = _change((tw / th) / (w / h))
    return torch.exp(-(r_c * s_c - 1.0) * k)


def normalise_centerness(cen: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of ``B×1×M×M`` centerness (step R1); a flat map (``ptp <= FLAT_EPS``) gives
    ones."""
    flat = cen.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    ptp = flat.max(dim=1).values.view(-1, 1, 1, 1) - lo
    return torch.where(ptp > FLAT_EPS, (cen - lo) / ptp.clamp(min=FLAT_EPS), torch.ones_like(cen))


def upsample_bicubic(x: torch.Tensor, size: int) -> torch.Tensor:
    """``B×C×M×M`` -> ``B×C×size×size`` as ``cv2.resize(..., INTER_CUBIC)`` (step R3): half-pixel sampling, cubic
    kernel ``a = -0.75``, replicated borders."""
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)


def released_region(hp_up: torch.Tensor, coarse_loc: torch.Tensor, template_size: int, region_s: float,
                    region_l: float) -> torch.Tensor:
    """The released coarse mask (steps R4-R5): ``B×U×U`` booleans around the peak of the upsampled windowed score
    ``hp_up`` (``B×U×U``), sized by the coarse ``l, t, r, b`` (``coarse_loc`` ``B×4×M×M``, crop pixels) at the peak's
    coarse cell."""
    b, u = hp_up.shape[0], hp_up.shape[-1]
    m = coarse_loc.shape[-1]
    peak = hp_up.reshape(b, -1).argmax(dim=1)
    r_up, c_up = peak // u, peak % u
    scale_score = u / m                                        # the released scale_score = upsize / SCORE_SIZE
    r = torch.round(r_up.double() / scale_score).long().clamp(0, m - 1)
    c = torch.round(c_up.double() / scale_score).long().clamp(0, m - 1)
    ltrb = coarse_loc[torch.arange(b, device=hp_up.device), :, r, c].double()          # B×4
    ltrb = ltrb.clamp(int(region_s * template_size), int(region_l * template_size))
    room = torch.stack([c_up, r_up, u - c_up, u - r_up], dim=1).double()                 # to the map borders
    left, top, right, bottom = torch.floor(torch.minimum(room, ltrb) / 2.0).long().unbind(1)
    idx = torch.arange(u, device=hp_up.device).view(1, u)
    rows = (idx >= (r_up - top).view(b, 1)) & (idx <= (r_up + bottom).view(b, 1))
    cols = (idx >= (c_up - left).view(b, 1)) & (idx <= (c_up + right).view(b, 1))
    return rows[:, :, None] & cols[:, None, :]


class SiamCARTracker(BatchedTracker):
    """SiamCAR / VLT_SCAR tracker; see the module docstring for the policy and :class:`BatchedTracker` for the API.

    Args:
        model: a :class:`~trackers.models.siamcar.SiamCARBase` (``template_size``, ``search_size``, ``stride``,
            ``location_offset``, ``score_size``).
        cfg: :class:`TrackerConfig`.
        featurizer, genome, device: as :class:`BatchedTracker`.
    """

    def __init__(self, model, cfg: Optional[TrackerConfig] = None, featurizer: Any = None, genome: Any = None,
                 device: Any = None):
        super().__init__(model, featurizer, genome, device)
        self.cfg = cfg or TrackerConfig()
        self.crops = self.cfg.crop_rule(model.template_size, model.search_size)
        f = self.cfg.score_upsample
        m = model.score_size
        self.map_size = (m - 1) * f + 1           # the map the window and the argmax decoder work on
        self.locations = score_locations(self.map_size, model.stride / f, model.location_offset, self.device)
        self.window = torch.tensor(hann2d(self.map_size).reshape(-1), dtype=torch.float32, device=self.device)
        if self.cfg.decoder == "released":
            if float(model.stride) != int(model.stride):
                raise ArchitectureError(f"the released SiamCAR decoder needs an integer stride, got {model.stride}")
            self.up_size = (m - 1) * int(model.stride) + 1            # U: one crop pixel between locations
            self.up_locations = score_locations(self.up_size, 1.0, model.location_offset, self.device)

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

    def _decode_argmax(self, cls: torch.Tensor, cen: torch.Tensor, loc: torch.Tensor, tw: torch.Tensor,
                       th: torch.Tensor) -> torch.Tensor:
        """The argmax decoder (module docstring) -> ``B×7``: centre x, y, w, h (crop pixels), penalty, cls,
        pscore at the chosen location."""
        cfg = self.cfg
        cen = torch.sigmoid(cen)
        if cfg.score_upsample > 1:
            size = (self.map_size, self.map_size)
            cls = F.interpolate(cls, size=size, mode="bicubic", align_corners=True).clamp(0.0, 1.0)
            cen = F.interpolate(cen, size=size, mode="bicubic", align_corners=True).clamp(0.0, 1.0)
            loc = F.interpolate(loc, size=size, mode="bilinear", align_corners=True).clamp(min=0.0)
        b = cls.shape[0]
        cls, cen = cls.reshape(b, -1), cen.reshape(b, -1)
        l, t, r, bt = loc.reshape(b, 4, -1).unbind(1)                     # B×N each
        pw, ph = (l + r).clamp(min=1e-6), (t + bt).clamp(min=1e-6)
        penalty = size_penalty(pw, ph, tw, th, cfg.penalty_k)
        pscore = penalty * cls * cen
        hp = pscore * (1.0 - cfg.window_influence) + self.window.view(1, -1) * cfg.window_influence
        best = hp.argmax(dim=1, keepdim=True)
        pick = lambda v: v.gather(1, best).squeeze(1)                     # noqa: E731
        loc_xy = self.locations[best.squeeze(1)]                          # B×2
        return torch.stack([loc_xy[:, 0] + (pick(r) - pick(l)) / 2, loc_xy[:, 1] + (pick(bt) - pick(t)) / 2,
                            pick(pw), pick(ph), pick(penalty), pick(cls), pick(pscore)], dim=1)

    def _decode_released(self, cls: torch.Tensor, cen: torch.Tensor, loc: torch.Tensor, tw: torch.Tensor,
                         th: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The released decoder (module docstring, steps R1-R7) -> ``B×7`` as :meth:`_decode_argmax`."""
        cfg = self.cfg
        b, _, m, _ = cls.shape
        u = self.up_size
        cen = normalise_centerness(cen)                                                   # R1
        penalty = size_penalty(loc[:, 0] + loc[:, 2], loc[:, 1] + loc[:, 3], tw.view(b, 1, 1), th.view(b, 1, 1),
                               cfg.penalty_k).unsqueeze(1)                                # B×1×M×M
        p = penalty * cls * cen                                                           # R2
        hp = p * (1.0 - cfg.window_influence) + self.window.view(1, 1, m, m) * cfg.window_influence
        hp_up, p_up, cls_up = (upsample_bicubic(x, u)[:, 0] for x in (hp, p, cls))       # R3
        loc_up = upsample_bicubic(loc, u)
        mask = released_region(hp_up, loc, self.model.template_size, cfg.region_s, cfg.region_l)  # R4-R5
        best = (p_up * mask).reshape(b, -1).argmax(dim=1, keepdim=True)                   # R6
        pick = lambda v: v.reshape(b, -1).gather(1, best).squeeze(1)                      # noqa: E731
        l, t, r, bt = (pick(loc_up[:, k]) for k in range(4))
        w, h = l + r, t + bt
        xy = self.up_locations[best.squeeze(1)]
        # R7: the released lr penalty compares the new size in image pixels with the previous one at crop scale
        pen = size_penalty(w, h, tw.view(b), th.view(b), cfg.penalty_k, w_scale=scale.view(b))
        score = pick(cls_up).clamp(0.0, 1.0)           # a probability: bicubic overshoot clipped (R7)
        return torch.stack([xy[:, 0], xy[:, 1], w, h, pen, score, pick(p_up)], dim=1)

    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        cfg = self.cfg
        cls = F.softmax(outputs["cls"].float(), dim=1)[:, -1:]           # B×1×M×M target probability
        cen = outputs["cen"].float()                                      # B×1×M×M centerness logits
        loc = outputs["loc"].float()                                      # B×4×M×M (l, t, r, b)
        b = cls.shape[0]
        scale = torch.tensor([c["scale"] for c in crops], dtype=torch.float32, device=cls.device).view(b, 1)
        prev = torch.tensor(np.stack([v["size"] for v in videos]), dtype=torch.float32, device=cls.device)
        tw, th = prev[:, :1] * scale, prev[:, 1:] * scale                 # previous size at crop scale, B×1
        if cfg.decoder == "released":
            vals = self._decode_released(cls, cen, loc, tw, th, scale)
        else:
            vals = self._decode_argmax(cls, cen, loc, tw, th)
        vals = vals.cpu().numpy()
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
