"""Training items of the visual grounding model: (a frame of a video with a sentence, the sentence, its box).

:class:`GroundingDataset` draws, for each index, a source (by ratio) and a video of it that has a sentence (videos
without one are skipped: a grounding model learns nothing from a box without its description), then its first frame
(``frame: first``, the NL setting's frame: paper 004 initialises from the grounded first frame) or any frame with a
visible target (``frame: any``). Referring expressions (the ``refcoco`` reader: RefCOCO / RefCOCO+ / RefCOCOg, one
one-frame sequence per expression) come through the same path as a video's first frame. The whole frame is
letterboxed to ``image_size`` (:func:`letterbox`, TransVG's resize of the long side and padding) and its box
normalised to ``cx, cy, w, h`` in ``[0, 1]`` of that square.
Augmentation (TransVG §4.2 uses colour jitter and a horizontal flip that swaps *left* / *right* in the sentence):
``brightness`` / ``contrast`` factors and ``flip_prob`` with :func:`~asearch.data.augment.flip_words`.

Items are deterministic for ``(seed, epoch, index)`` (``numpy.random.default_rng([seed, epoch, index])``), as those of
:class:`~asearch.data.sampler.PairDataset`, and batch with :func:`~asearch.data.sampler.collate_pairs`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence as Seq, Tuple

import numpy as np
import torch

from asearch.data.augment import brightness_contrast, flip_words, hflip_image
from asearch.data.crops import channel_mean
from asearch.data.sampler import valid_frames
from asearch.errors import ConfigError, DataError

__all__ = ["GroundingSamplerConfig", "GroundingDataset", "letterbox", "build_grounding_dataset", "FRAMES"]

FRAMES = ("first", "any")


def letterbox(image: np.ndarray, size: int) -> Tuple[np.ndarray, float]:
    """The image scaled so that its long side is ``size`` and padded right / bottom (its mean colour) to
    ``size``×``size``, float32; and the scale (an image box ``x, y, w, h`` times it is the box in the square)."""
    import cv2

    h, w = image.shape[:2]
    scale = float(size) / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    out = np.empty((size, size, 3), dtype=np.float32)
    out[:] = np.asarray(channel_mean(image), dtype=np.float32)
    out[:nh, :nw] = cv2.resize(image.astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, scale


@dataclass
class GroundingSamplerConfig:
    """Section ``data.sampler`` of a grounding experiment. ``frame``: ``first`` (default) | ``any``;
    ``flip_prob``, ``brightness``, ``contrast``: augmentation; ``max_tries``: videos tried before giving up."""

    frame: str = "first"
    flip_prob: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    max_tries: int = 50

    def __post_init__(self) -> None:
        if self.frame not in FRAMES:
            raise ConfigError(f"data.sampler.frame must be one of {', '.join(FRAMES)}, got {self.frame!r}")
        for key in ("flip_prob", "brightness", "contrast"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"data.sampler.{key} must be in [0, 1], got {getattr(self, key)}")
        if self.max_tries < 1:
            raise ConfigError(f"data.sampler.max_tries must be >= 1, got {self.max_tries}")


class GroundingDataset(torch.utils.data.Dataset):
    """(frame, sentence, box) items from sequence datasets with sentences (module docstring).

    Args:
        sources: ``(dataset, ratio)`` pairs of sequence readers (``__len__``, ``__getitem__ -> Sequence``).
        cfg: :class:`GroundingSamplerConfig`; image_size: the model's input side; seed, length: as PairDataset.
        language_strategy: ``language.missing`` (recorded per item for :func:`~asearch.language.prepare_texts`).
    """

    def __init__(self, sources: Seq[Tuple[Any, float]], cfg: GroundingSamplerConfig, image_size: int,
                 seed: int = 0, length: Optional[int] = None, language_strategy: str = "zero") -> None:
        if not sources:
            raise ConfigError("GroundingDataset needs at least one source dataset (field: sources)")
        self.sources = [ds for ds, _ in sources]
        ratios = np.array([float(r) for _, r in sources])
        if (ratios < 0).any() or ratios.sum() <= 0:
            raise ConfigError(f"grounding sources: ratios must be >= 0 with a positive sum, got {ratios.tolist()}")
        for ds in self.sources:
            if len(ds) == 0:
                raise DataError(f"source '{getattr(ds, 'name', type(ds).__name__)}' holds no videos", field="sources")
        self.ratios = ratios / ratios.sum()
        self.cfg = cfg
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.epoch = 0
        self.length = int(length) if length is not None else int(sum(len(ds) for ds in self.sources))
        self.language_strategy = language_strategy

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (item ``i`` of epoch ``e`` is drawn from ``default_rng([seed, e, i])``)."""
        self.epoch = int(epoch)

    def _pick(self, rng: np.random.Generator) -> Tuple[Any, int]:
        """A video with a sentence and a usable frame, and that frame's index."""
        for _ in range(self.cfg.max_tries):
            src = int(rng.choice(len(self.sources), p=self.ratios))
            seq = self.sources[src][int(rng.integers(len(self.sources[src])))]
            if not (seq.sentence or "").strip():
                continue
            valid = valid_frames(seq)
            if self.cfg.frame == "first":
                if len(valid) and valid[0] == 0:
                    return seq, 0
            elif len(valid):
                return seq, int(rng.choice(valid))
        names = ", ".join(str(getattr(ds, "name", type(ds).__name__)) for ds in self.sources)
        raise DataError(f"no video with a sentence and a visible {self.cfg.frame}-frame target found in "
                        f"{self.cfg.max_tries} tries (sources: {names}); the grounding model trains on videos with "
                        "sentences only", field="sentence")

    def __getitem__(self, index: int) -> Dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"item {index} out of range for {self.length} items")
        cfg = self.cfg
        rng = np.random.default_rng([self.seed, self.epoch, index])
        seq, frame = self._pick(rng)
        image, scale = letterbox(seq.frame(frame), self.image_size)
        x, y, w, h = (np.asarray(seq.boxes[frame], dtype=np.float64) * scale).tolist()
        sentence = seq.sentence.strip()
        b, c = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness), rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
        if cfg.brightness or cfg.contrast:
            image = brightness_contrast(image, b, c)
        if rng.random() < cfg.flip_prob:  # the flip mirrors the whole square (padding included)
            image = hflip_image(image)
            x = self.image_size - x - w
            sentence = flip_words(sentence)
        s = float(self.image_size)
        box = torch.tensor([(x + w / 2) / s, (y + h / 2) / s, w / s, h / s], dtype=torch.float32).clamp(0.0, 1.0)
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)),
                "box": box, "sentence": sentence, "attributes": ["", "", "", ""], "has_language": True,
                "language_strategy": self.language_strategy, "video": seq.name, "frame": int(frame)}


def build_grounding_dataset(sources: Seq[Any], ratios: Seq[float], sampler: Mapping[str, Any], model_cfg: Any,
                            language: Any, seed: int, length: int) -> GroundingDataset:
    """The registry's ``build_dataset`` of ``grounding`` (:class:`trackers.registry.ModelEntry`): readers without
    any sentence (``has_language`` false, e.g. COCO, GOT-10k) are a ``ConfigError``, since no item can come from
    them."""
    from asearch.config import from_dict

    for ds in sources:
        if not getattr(ds, "has_language", True):
            raise ConfigError(f"data.datasets: '{getattr(ds, 'name', type(ds).__name__)}' has no sentences; the "
                              "grounding model trains on readers with sentences only (refcoco, lasot, tnl2k, "
                              "otb99_lang, synthetic, ...)")
    cfg = from_dict(GroundingSamplerConfig, dict(sampler), source="data.sampler", prefix="data.sampler.")
    return GroundingDataset(list(zip(sources, ratios)), cfg, model_cfg.image_size, seed=seed, length=length,
                            language_strategy=language.missing)
