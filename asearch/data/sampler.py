"""Template/search training pairs for Siamese and one-stream trackers, with the language of the video.

:class:`PairDataset` draws, for each index: a source dataset (by ratio), a video, a template frame and a search
frame within ``max_gap`` frames of it (only frames with a visible target and a valid box), then crops squares
around the target with :mod:`asearch.data.crops`. The sides come from the tracker family's crop rule
(:class:`~asearch.data.crops.CropRule`, handed in by the recipe; the one its tracker crops with), jittered around:

* template side ``s_z = rule.template_side(w, h)``, scale jitter ``s_z · (1 + U(−template_scale, template_scale))``
  and a centre shift of up to ``template_shift · s_z`` per axis;
* search side ``s_x = rule.search_side(w, h)``, likewise with ``search_scale`` and ``search_shift``.

Without a rule: :class:`~asearch.data.crops.ContextCrop` (SiamFC / SiamCAR) with ``context`` and the crop sizes,
``s_z = sqrt((w + p)(h + p))``, ``p = context·(w + h)``, ``s_x = s_z · search_size / template_size``.

Augmentations: grey (whole pair), horizontal flip (whole pair, and *left*/*right* swapped in the sentence and the
attribute words, so the position word stays true), brightness/contrast and blur (per crop). No hue jitter: colour
words carry meaning. A share ``neg_prob`` of pairs are negatives: the search crop comes from another video (label 0;
its box is that video's target, to be ignored by regression losses).

Items are deterministic for ``(seed, epoch, index)`` whatever the worker or order: every random draw of an item
comes from ``numpy.random.default_rng([seed, epoch, index])``.

Language per item (see :mod:`asearch.language.features`, which consumes these fields):
``sentence`` (``""`` when absent), ``attributes`` (four words; ``["", "", "", ""]`` when absent, except for the
``attribute`` strategy: ``["<category or none>", "object", "none", "none"]``, paper 000 Alg. 1), ``has_language``
and ``language_strategy`` (the configured strategy for missing language: ``zero`` | ``template`` | ``attribute``);
``language_mask``: True for a positive pair whose video has language of its own, the pairs that enter the contrastive
loss (paper 000 Eq. 2-4: a negative pair's search crop shows another target, and a fallback is no caption of it).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence as Seq, Tuple, Union

import numpy as np
import torch

from asearch.data.augment import brightness_contrast, flip_words, gaussian_blur, hflip_box_xyxy, hflip_image, to_gray
from asearch.data.crops import ContextCrop, CropRule, box_to_crop, crop_square, xywh_to_xyxy
from asearch.data.sequence import Sequence
from asearch.errors import ConfigError, DataError

__all__ = ["SamplerConfig", "PairDataset", "collate_pairs", "valid_frames", "LANGUAGE_STRATEGIES"]

LANGUAGE_STRATEGIES = ("zero", "template", "attribute")


@dataclass
class SamplerConfig:
    """Pair sampling and augmentation (defaults: SiamCAR's crops and jitter; TransT-style: 128/256).

    Attributes:
        template_size, search_size: output sides of the template and search crops in pixels.
        context: context amount of the default crop rule (SiamFC ``sqrt((w+p)(h+p))``, ``p = context·(w+h)``),
            used when the dataset is given no ``crop_rule``.
        max_gap: largest frame distance between the template and the search frame.
        template_shift, search_shift: largest centre shift, as a fraction of the crop side (SiamCAR: 4/127, 64/255).
        template_scale, search_scale: largest relative change of the crop side (SiamCAR: 0.05, 0.18).
        gray_prob: probability that the pair is turned grey.
        blur_prob: probability, per crop, of a Gaussian blur with σ drawn from ``blur_sigma``.
        blur_sigma: range of the blur's σ in crop pixels.
        flip_prob: probability that the pair is mirrored left-right (language mirrored too).
        brightness, contrast: per crop, factors drawn from ``[1 − b, 1 + b]`` and ``[1 − c, 1 + c]``.
        neg_prob: share of negative pairs (search frame from another video, label 0).
        language_strategy: for data without language: ``zero`` | ``template`` | ``attribute`` (paper 000 Alg. 1;
            ``zero`` is its default setting without sentence annotation).
        max_tries: videos tried before giving up on finding one with a visible target.
        cache_size: parsed sequences kept in memory per worker.
    """

    template_size: int = 127
    search_size: int = 255
    context: float = 0.5
    max_gap: int = 100
    template_shift: float = 0.03
    template_scale: float = 0.05
    search_shift: float = 0.25
    search_scale: float = 0.18
    gray_prob: float = 0.0
    blur_prob: float = 0.0
    blur_sigma: Tuple[float, float] = (0.5, 1.5)
    flip_prob: float = 0.0
    brightness: float = 0.2
    contrast: float = 0.2
    neg_prob: float = 0.0
    language_strategy: str = "zero"
    max_tries: int = 20
    cache_size: int = 256

    def validate(self) -> "SamplerConfig":
        """Check every field; raise :class:`ConfigError` naming the bad one. Returns ``self``."""
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"sampler config: key '{name}' {why}, got {getattr(self, name)!r}")

        for name in ("template_size", "search_size", "max_tries"):
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        if self.max_gap < 0:
            raise bad("max_gap", "must be >= 0")
        if self.cache_size < 0:
            raise bad("cache_size", "must be >= 0")
        if self.context < 0:
            raise bad("context", "must be >= 0")
        for name in ("template_shift", "search_shift", "brightness", "contrast"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "must be in [0, 1]")
        for name in ("template_scale", "search_scale"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise bad(name, "must be in [0, 1)")
        for name in ("gray_prob", "blur_prob", "flip_prob", "neg_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "must be a probability in [0, 1]")
        if len(self.blur_sigma) != 2 or not 0 <= self.blur_sigma[0] <= self.blur_sigma[1]:
            raise bad("blur_sigma", "must be a range [low, high] with 0 <= low <= high")
        if self.language_strategy not in LANGUAGE_STRATEGIES:
            raise bad("language_strategy", f"must be one of {', '.join(LANGUAGE_STRATEGIES)}")
        return self


def valid_frames(seq: Sequence) -> np.ndarray:
    """Indices of the frames whose target is visible with a finite box of positive width and height."""
    b = seq.boxes
    ok = seq.visible & np.isfinite(b).all(axis=1) & (b[:, 2] > 0) & (b[:, 3] > 0)
    return np.flatnonzero(ok)


def _dataset_name(ds: Any) -> str:
    return str(getattr(ds, "name", None) or getattr(ds, "dataset_name", None) or type(ds).__name__)


class PairDataset(torch.utils.data.Dataset):
    """Template/search pairs drawn from one or more sequence datasets (see the module docstring).

    Args:
        sources: datasets, or ``(dataset, ratio)`` pairs; a dataset is any object with ``__len__``,
            ``__getitem__(i) -> Sequence`` and a ``name``. Sources are drawn with probability ∝ ratio (default 1).
        cfg: :class:`SamplerConfig` (validated here).
        seed: base seed; item ``i`` of epoch ``e`` uses ``default_rng([seed, e, i])``.
        length: pairs per epoch (default: the total number of videos).
        crop_rule: the sides of the template and search squares (the tracker family's rule); default
            ``ContextCrop(cfg.context, cfg.template_size, cfg.search_size)``.
    """

    def __init__(self, sources: Seq[Union[Any, Tuple[Any, float]]], cfg: Optional[SamplerConfig] = None,
                 seed: int = 0, length: Optional[int] = None, crop_rule: Optional[CropRule] = None) -> None:
        self.cfg = (cfg or SamplerConfig()).validate()
        if crop_rule is not None and not isinstance(crop_rule, CropRule):
            raise ConfigError(f"crop_rule must be an asearch.data.crops.CropRule, got {type(crop_rule).__name__}")
        self.crop_rule: CropRule = (crop_rule if crop_rule is not None
                                    else ContextCrop(self.cfg.context, self.cfg.template_size, self.cfg.search_size))
        if not sources:
            raise ConfigError("PairDataset needs at least one source dataset (field: sources)")
        self.sources: List[Any] = []
        ratios: List[float] = []
        for k, src in enumerate(sources):
            ds, ratio = (src if isinstance(src, tuple) else (src, 1.0))
            if not hasattr(ds, "__len__") or not hasattr(ds, "__getitem__"):
                raise ConfigError(f"source {k} ({type(ds).__name__}) is not a dataset with __len__ and "
                                  "__getitem__ (field: sources)")
            if len(ds) == 0:
                raise DataError(f"source {k} ('{_dataset_name(ds)}') holds no videos", field="sources")
            if not float(ratio) >= 0:
                raise ConfigError(f"source {k} ('{_dataset_name(ds)}'): ratio must be >= 0, got {ratio!r} "
                                  "(field: sources)")
            self.sources.append(ds)
            ratios.append(float(ratio))
        total = sum(ratios)
        if total <= 0:
            raise ConfigError("the ratios of the sources sum to 0 (field: sources)")
        self.ratios = np.array(ratios) / total
        self.seed = int(seed)
        self.epoch = 0
        self.length = int(length) if length is not None else int(sum(len(ds) for ds in self.sources))
        if self.length < 1:
            raise ConfigError(f"PairDataset length must be >= 1, got {self.length} (field: length)")
        self._reachable_videos = int(sum(len(ds) for ds, r in zip(self.sources, self.ratios) if r > 0))
        self._cache: "OrderedDict[Tuple[int, int], Sequence]" = OrderedDict()

    # -- bookkeeping
    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch: item ``i`` of epoch ``e`` is drawn from ``default_rng([seed, e, i])``."""
        self.epoch = int(epoch)

    def _sequence(self, src: int, vid: int) -> Sequence:
        key = (src, vid)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        seq = self.sources[src][vid]
        if not isinstance(seq, Sequence):
            raise DataError(f"source '{_dataset_name(self.sources[src])}' item {vid} is a {type(seq).__name__}, "
                            "not a Sequence", field="sources")
        if self.cfg.cache_size:
            self._cache[key] = seq
            while len(self._cache) > self.cfg.cache_size:
                self._cache.popitem(last=False)
        return seq

    def _pick_video(self, rng: np.random.Generator, exclude: Optional[Tuple[int, int]] = None
                    ) -> Tuple[int, int, Sequence, np.ndarray]:
        """A random (source, video, sequence, valid frame indices), avoiding ``exclude``."""
        for _ in range(self.cfg.max_tries):
            src = int(rng.choice(len(self.sources), p=self.ratios))
            vid = int(rng.integers(len(self.sources[src])))
            if exclude is not None and (src, vid) == exclude:
                continue
            seq = self._sequence(src, vid)
            valid = valid_frames(seq)
            if len(valid):
                return src, vid, seq, valid
        names = ", ".join(_dataset_name(ds) for ds in self.sources)
        raise DataError(f"no video with a visible target and a valid box found in {self.cfg.max_tries} tries "
                        f"(sources: {names})", field="visible")

    def _crop(self, rng: np.random.Generator, image: np.ndarray, box: np.ndarray, base_side: float,
              out_size: int, shift: float, scale: float) -> Tuple[np.ndarray, np.ndarray]:
        """Jittered square crop around ``box`` (x, y, w, h) and the box in crop pixels (x1, y1, x2, y2)."""
        side = base_side * (1.0 + rng.uniform(-scale, scale))
        cx = box[0] + box[2] / 2.0 + rng.uniform(-shift, shift) * side
        cy = box[1] + box[3] / 2.0 + rng.uniform(-shift, shift) * side
        crop = crop_square(image, (cx, cy), side, out_size)
        return crop, xywh_to_xyxy(box_to_crop(box, (cx, cy), side, out_size))

    def _photometric(self, rng: np.random.Generator, crop: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        b = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
        c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
        if cfg.brightness or cfg.contrast:
            crop = brightness_contrast(crop, b, c)
        if rng.random() < cfg.blur_prob:
            crop = gaussian_blur(crop, rng.uniform(*cfg.blur_sigma))
        return crop

    def _language(self, seq: Sequence) -> Tuple[str, List[str], bool]:
        strategy = self.cfg.language_strategy
        sentence = (seq.sentence or "").strip()
        if seq.attributes is not None:
            words = ["none" if w is None or not str(w).strip() else str(w).strip() for w in seq.attributes]
            if len(words) != 4:
                raise DataError(f"video '{seq.name}' has {len(words)} attribute words, expected 4 "
                                "[major, root, color, position]", field="attributes")
        elif strategy == "attribute":
            words = [seq.category or "none", "object", "none", "none"]  # paper 000 Alg. 1 / §4.4.1
        else:
            words = ["", "", "", ""]
        return sentence, words, seq.has_language

    # -- the item
    def __getitem__(self, index: int) -> Dict[str, Any]:
        if not -self.length <= index < self.length:
            raise IndexError(f"pair index {index} out of range for {self.length} pairs")
        index = index % self.length
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, self.epoch, index])

        src, vid, seq, valid = self._pick_video(rng)
        t_idx = int(rng.choice(valid))
        negative = rng.random() < cfg.neg_prob and self._reachable_videos > 1
        if negative:
            _, _, s_seq, s_valid = self._pick_video(rng, exclude=(src, vid))
            s_idx = int(rng.choice(s_valid))
        else:
            s_seq = seq
            near = valid[np.abs(valid - t_idx) <= cfg.max_gap]
            s_idx = int(rng.choice(near))

        t_box = seq.boxes[t_idx]
        s_box = s_seq.boxes[s_idx]
        t_img = seq.frame(t_idx)
        s_img = t_img if (s_seq is seq and s_idx == t_idx) else s_seq.frame(s_idx)

        zt = self.crop_rule.template_side(t_box[2], t_box[3])
        template, t_xyxy = self._crop(rng, t_img, t_box, zt, cfg.template_size, cfg.template_shift,
                                      cfg.template_scale)
        zs = self.crop_rule.search_side(s_box[2], s_box[3])
        search, s_xyxy = self._crop(rng, s_img, s_box, zs, cfg.search_size, cfg.search_shift, cfg.search_scale)

        if rng.random() < cfg.gray_prob:
            template, search = to_gray(template), to_gray(search)
        template = self._photometric(rng, template)
        search = self._photometric(rng, search)

        sentence, words, has_language = self._language(seq)
        if rng.random() < cfg.flip_prob:
            template, search = hflip_image(template), hflip_image(search)
            t_xyxy = hflip_box_xyxy(t_xyxy, cfg.template_size)
            s_xyxy = hflip_box_xyxy(s_xyxy, cfg.search_size)
            sentence = flip_words(sentence)
            words = [flip_words(w) for w in words]

        def chw(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))

        return {
            "template": chw(template),
            "search": chw(search),
            "template_box": torch.tensor(t_xyxy, dtype=torch.float32),
            "search_box": torch.tensor(s_xyxy, dtype=torch.float32),
            "label": 0 if negative else 1,
            # the pairs of the contrastive loss (Eq. 2-4): a positive pair with the video's own language; a negative
            # pair's search crop shows another target and a fallback (zero, template, attribute phrase) is no caption
            "language_mask": bool(has_language) and not negative,
            "sentence": sentence,
            "attributes": words,
            "has_language": bool(has_language),
            "language_strategy": cfg.language_strategy,
            "video": seq.name,
            "search_video": s_seq.name,
            "dataset": seq.dataset or _dataset_name(self.sources[src]),
            "template_frame": t_idx,
            "search_frame": s_idx,
        }


def collate_pairs(items: Seq[Dict[str, Any]]) -> Dict[str, Any]:
    """Batch items of :class:`PairDataset`: tensors stacked, ``label``/frame indices as ``long`` tensors,
    ``has_language`` as a ``bool`` tensor, strings (and attribute-word lists) kept as lists."""
    if not items:
        raise DataError("collate_pairs got an empty batch", field="batch")
    out: Dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        first = values[0]
        if torch.is_tensor(first):
            out[key] = torch.stack(values)
        elif isinstance(first, bool):
            out[key] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(first, int):
            out[key] = torch.tensor(values, dtype=torch.long)
        else:
            out[key] = list(values)
    return out
