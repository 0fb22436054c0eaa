"""The batched tracker base: B videos tracked in lockstep as one batch, and the one-video API on top of it.

A tracker is the inference policy around a model (pytracking / OSTrack style): it crops, calls the model and
turns the model's maps into boxes. This base class owns what every family shares:

* language: each video's text is encoded ONCE, when the video is added, through the
  :class:`~asearch.language.LanguageFeaturizer` (its missing-language strategy applies to videos without text);
* the template branch: run once per video (batched over the videos added together) and cached;
* the lockstep batch: :meth:`track_batch` crops every active video's frame, runs the search branch once for the
  whole batch and post-processes per video. Videos can be added (:meth:`add_videos`) and removed (:meth:`keep`) at
  any time, so a runner can track videos of different lengths and refill the batch as videos end.

The cached template states are split per video and concatenated again when the set of videos changes. Contract
for models: every tensor (``ndim >= 1``) in the state returned by ``model.template`` is batch-first; other values
(0-dim tensors, the genome, ...) are shared by all videos.

Subclasses implement :meth:`prepare_video`, :meth:`search_crop` and :meth:`postprocess`.
"""
from __future__ import annotations

import abc
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from asearch.data.crops import box_to_crop, crop_square, xywh_to_xyxy
from asearch.errors import ArchitectureError, DataError
from asearch.runtime import resolve_device

__all__ = ["BatchedTracker", "language_fields", "cat_states", "split_state", "clip_center_size", "hann2d",
           "TokenLanguageMixin"]


def hann2d(n: int, centered: bool = False) -> np.ndarray:
    """The n×n 2-D Hann window, the outer product of a 1-D one: the one home of the trackers' cosine window.

    ``centered=False``: ``np.hanning(n)``, ``w_i = (1 - cos(2π i / (n - 1))) / 2``, i = 0..n-1, zero at both
    borders (SiamFC / SiamCAR / TransT: ``np.outer(np.hanning(n), np.hanning(n))``). ``centered=True``: OSTrack's
    ``hann2d(..., centered=True)``, ``w_i = (1 - cos(2π (i + 1) / (n + 1))) / 2``, no zero at the borders.
    """
    if n < 1:
        raise ValueError(f"hann2d: the window side must be >= 1, got {n}")
    if centered:
        i = np.arange(1, n + 1, dtype=np.float64)
        w = 0.5 * (1.0 - np.cos(2.0 * np.pi * i / (n + 1)))
    else:
        w = np.hanning(n)
    return np.outer(w, w)


def language_fields(info: Any) -> Tuple[Optional[str], Optional[List[str]], bool]:
    """``(sentence, attributes, has_language)`` of a video's language: ``None``, a sentence string, a mapping with
    keys ``sentence`` / ``attributes`` / ``has_language``, or any object with those attributes (a ``Sequence``)."""
    if info is None:
        return None, None, False
    if isinstance(info, str):
        return info, None, bool(info.strip())
    get = info.get if isinstance(info, Mapping) else (lambda k, d=None: getattr(info, k, d))
    sentence = get("sentence", None)
    attributes = get("attributes", None)
    has = get("has_language", None)
    if has is None:
        has = bool(sentence and str(sentence).strip()) or attributes is not None
    return sentence, (None if attributes is None else list(attributes)), bool(has)


def split_state(state: Any, n: int) -> List[Any]:
    """Split a batched state into ``n`` states of batch 1 (tensors with ``ndim >= 1`` are split on dim 0)."""
    if isinstance(state, torch.Tensor) and state.dim() >= 1:
        if state.shape[0] != n:
            raise ArchitectureError(f"template state tensor of shape {tuple(state.shape)} is not batch-first "
                                    f"(batch {n})")
        return list(state.split(1, dim=0))
    if isinstance(state, Mapping):
        parts = {k: split_state(v, n) for k, v in state.items()}
        return [{k: parts[k][i] for k in state} for i in range(n)]
    if isinstance(state, (list, tuple)):
        parts = [split_state(v, n) for v in state]
        return [type(state)(p[i] for p in parts) if isinstance(state, list) else tuple(p[i] for p in parts)
                for i in range(n)]
    return [state] * n


def cat_states(states: Sequence[Any]) -> Any:
    """Inverse of :func:`split_state`: concatenate per-video states on dim 0 (shared values taken from the first)."""
    first = states[0]
    if isinstance(first, torch.Tensor) and first.dim() >= 1:
        return torch.cat(list(states), dim=0)
    if isinstance(first, Mapping):
        return {k: cat_states([s[k] for s in states]) for k in first}
    if isinstance(first, (list, tuple)):
        items = [cat_states([s[i] for s in states]) for i in range(len(first))]
        return items if isinstance(first, list) else tuple(items)
    return first


def clip_center_size(cx: float, cy: float, w: float, h: float, height: int, width: int, min_size: float
                     ) -> Tuple[float, float, float, float]:
    """Clip a box given by centre and size to an image: centre inside it, sides in ``[min_size, image side]``."""
    cx, cy = min(max(cx, 0.0), float(width)), min(max(cy, 0.0), float(height))
    w = min(max(w, min_size), float(width))
    h = min(max(h, min_size), float(height))
    return cx, cy, w, h


class BatchedTracker(abc.ABC):
    """Lockstep tracking of several videos with one model call per frame.

    Args:
        model: the tracker's model (``template(...)`` / ``track(...)``), put in eval mode and on ``device``.
        featurizer: language featurizer (``featurizer(sentences, attributes, has_language) -> (vectors,
            use_template)``) or ``None`` (no language: zero vectors for a language model).
        genome: the fixed path when the model is built on a supernet (``Genome`` or official list-of-lists).
        device: where the model runs (``None``: CUDA when present).

    ``channels_last_input`` (default ``False``): hand the model its crops in the channels-last layout, for a model
    stored channels-last (the search's CPU setting ``fitness.channels_last``). ``frame_info_keys`` (default none):
    the keys of each frame's result that :func:`trackers.runner.run_dataset` keeps in ``<video>_info.json`` beside
    the boxes (CTRTNL's switch decisions).
    """

    channels_last_input: bool = False
    frame_info_keys: Tuple[str, ...] = ()

    def __init__(self, model: nn.Module, featurizer: Any = None, genome: Any = None, device: Any = None):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.featurizer = featurizer
        self._videos: List[Dict[str, Any]] = []
        self._batched_state: Any = None
        self.set_genome(genome)

    def set_genome(self, genome: Any) -> None:
        """Run the supernet path ``genome`` from now on (``Genome`` or official list-of-lists; ``None`` for a fixed
        architecture) and forget every video: the search scores many genomes with one tracker."""
        if genome is not None and not hasattr(genome, "to_official"):
            from search_spaces.genome import Genome

            genome = Genome.from_official(genome)
        if getattr(self.model, "needs_genome", False) and genome is None:
            raise ArchitectureError("the model is built on a supernet: the tracker needs a genome (the path to run)")
        if not getattr(self.model, "needs_genome", False) and genome is not None:
            raise ArchitectureError("the model has a fixed architecture (a subnet or a baseline): give no genome")
        self.genome = genome
        self.reset()

    # -- video set ---------------------------------------------------------------------------------------------------
    @property
    def num_videos(self) -> int:
        """Videos currently tracked (the batch size of :meth:`track_batch`)."""
        return len(self._videos)

    def reset(self) -> None:
        """Forget every video."""
        self._videos = []
        self._batched_state = None

    def language_vectors(self, languages: Sequence[Any]) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Language vectors (``B×D`` on the device) and ``use_template`` flags of new videos, or ``(None, None)``."""
        if self.featurizer is None or not getattr(self.model, "uses_language", False):
            return None, None
        fields = [language_fields(x) for x in languages]
        vectors, use_template = self.featurizer([f[0] for f in fields], [f[1] for f in fields], [f[2] for f in fields])
        return vectors.to(self.device), use_template.to(self.device)

    @torch.no_grad()
    def add_videos(self, images: Sequence[np.ndarray], boxes: Sequence[Sequence[float]],
                   languages: Optional[Sequence[Any]] = None) -> List[int]:
        """Start tracking new videos from their first frame (RGB uint8 H×W×3) and box ``x, y, w, h``.

        The template branch runs once for all of them; returns their indices in the batch order.
        """
        if len(images) != len(boxes) or (languages is not None and len(languages) != len(images)):
            raise DataError(f"add_videos: {len(images)} images, {len(boxes)} boxes, "
                            f"{'no' if languages is None else len(languages)} languages")
        if not images:
            return []
        prepared = [self.prepare_video(img, np.asarray(box, dtype=np.float64)) for img, box in zip(images, boxes)]
        z = self._to_tensor([p[0] for p in prepared])
        tboxes = torch.tensor(np.stack([p[1] for p in prepared]), dtype=torch.float32, device=self.device)
        language, use_template = self.language_vectors(languages if languages is not None else [None] * len(images))
        any_tl = use_template is not None and bool(use_template.any())
        state = self.model.template(z, language=language, genome=self.genome,
                                    template_box=tboxes if any_tl else None,
                                    use_template_language=use_template if any_tl else None)
        start = len(self._videos)
        for (_, _, info), part in zip(prepared, split_state(state, len(prepared))):
            info["template_state"] = part
            self._videos.append(info)
        self._batched_state = None
        return list(range(start, len(self._videos)))

    def initialize_batch(self, images: Sequence[np.ndarray], boxes: Sequence[Sequence[float]],
                         languages: Optional[Sequence[Any]] = None) -> None:
        """Forget every video and start the given ones (see :meth:`add_videos`)."""
        self.reset()
        self.add_videos(images, boxes, languages)

    def keep(self, indices: Sequence[int]) -> None:
        """Keep only the videos at ``indices`` (in that order), e.g. to drop the ones that ended."""
        indices = list(indices)
        if indices != list(range(len(self._videos))):
            self._videos = [self._videos[i] for i in indices]
            self._batched_state = None

    @torch.no_grad()
    def track_batch(self, images: Sequence[np.ndarray]) -> List[Dict[str, Any]]:
        """Track one new frame of every video (in batch order): one dict per video with ``box`` (``[x, y, w, h]``)
        and ``score``."""
        if len(images) != len(self._videos):
            raise DataError(f"track_batch: {len(images)} frames for {len(self._videos)} videos")
        if not images:
            return []
        if self._batched_state is None:
            self._batched_state = cat_states([v["template_state"] for v in self._videos])
        crops = [self.search_crop(img, v) for img, v in zip(images, self._videos)]
        x = self._to_tensor([c[0] for c in crops])
        outputs = self.model.track(x, self._batched_state)
        return self.postprocess(outputs, [c[1] for c in crops], self._videos)

    def set_boxes(self, boxes: Sequence[Sequence[float]]) -> None:
        """Put every video's state at a given box ``x, y, w, h`` (batch order): the next :meth:`track_batch` crops
        around it as if the tracker had predicted it (teacher forcing, the search fitness's ``open_loop`` mode).
        The template and language of each video stay as they are."""
        if len(boxes) != len(self._videos):
            raise DataError(f"set_boxes: {len(boxes)} boxes for {len(self._videos)} videos")
        for video, box in zip(self._videos, boxes):
            box = np.asarray(box, dtype=np.float64)
            if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
                raise DataError(f"set_boxes: a box must be finite with positive size, got {box.tolist()}",
                                field="boxes")
            self.set_video_box(video, box)

    def set_video_box(self, video: Dict[str, Any], box: np.ndarray) -> None:
        """Family hook of :meth:`set_boxes`: the state of one video at box ``x, y, w, h`` (default: the ``center``
        and ``size`` that SiamCAR and TransT keep)."""
        video["center"] = np.array([box[0] + box[2] / 2.0, box[1] + box[3] / 2.0])
        video["size"] = np.array([box[2], box[3]], dtype=np.float64)

    # -- one video ---------------------------------------------------------------------------------------------------
    def initialize(self, image: np.ndarray, box: Sequence[float], language: Any = None) -> None:
        """Start tracking one video (batch of one)."""
        self.initialize_batch([image], [box], [language])

    def track(self, image: np.ndarray) -> Dict[str, Any]:
        """Track the next frame of the one video started by :meth:`initialize`."""
        return self.track_batch([image])[0]

    # -- helpers -----------------------------------------------------------------------------------------------------
    def template_crop(self, image: np.ndarray, box: np.ndarray, side: Callable[[float, float], float]
                      ) -> Tuple[np.ndarray, np.ndarray, Tuple[float, float]]:
        """Check the first frame (H×W×3) and its box ``x, y, w, h`` (finite, positive size) and cut the template:
        a square of side ``side(w, h)`` around the box centre, resized to ``model.template_size``.

        Returns ``(crop, box x1, y1, x2, y2 in crop pixels, box centre (x, y) in the image)``.
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise DataError(f"frames must be H×W×3 RGB, got shape {image.shape}", field="frame")
        if not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
            raise DataError(f"the first-frame box must be finite with positive size, got {box.tolist()}",
                            field="init_box")
        center = (box[0] + box[2] / 2.0, box[1] + box[3] / 2.0)
        s = side(box[2], box[3])
        t = self.model.template_size
        crop = crop_square(image, center, s, t)
        return crop, xywh_to_xyxy(box_to_crop(box, center, s, t)), center

    def _to_tensor(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """H×W×3 crops -> B×3×H×W float tensor on the device (channels-last strides when
        :attr:`channels_last_input`: the stacked crops already are in that layout, no copy)."""
        x = torch.from_numpy(np.stack(crops).astype(np.float32, copy=False)).permute(0, 3, 1, 2)
        if not self.channels_last_input:
            x = x.contiguous()
        return x.to(self.device)

    # -- family hooks ------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def prepare_video(self, image: np.ndarray, box: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
        """First frame -> ``(template crop H×W×3 float, template box x1,y1,x2,y2 in crop pixels, video state)``."""

    @abc.abstractmethod
    def search_crop(self, image: np.ndarray, video: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
        """A frame -> ``(search crop H×W×3 float, crop geometry for postprocess)``."""

    @abc.abstractmethod
    def postprocess(self, outputs: Dict[str, torch.Tensor], crops: List[Dict[str, Any]],
                    videos: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Batched model outputs -> one result dict per video; updates each video's state (its box)."""


class TokenLanguageMixin:
    """``language_vectors`` of a tracker whose model has its own token-level language model (PJVLT, COST,
    SATracker): the tokenised texts of new videos (``model.tokenize``, ``language.missing`` for those without), no
    template flags; ``None`` for a model built without language (``uses_language`` false). The ``featurizer`` only
    gives ``language.missing`` (``None``: no video has language). ``pad_texts``: texts are padded to the model's
    ``max_length`` so that videos added at different times share one word length in the lockstep batch (false for
    a model that reduces the words to per-video state when the video is added, SATracker)."""

    pad_texts: bool = True

    def language_vectors(self, languages: Sequence[Any]
                         ) -> Tuple[Optional[Dict[str, torch.Tensor]], Optional[torch.Tensor]]:
        from asearch.language import prepare_texts

        if not getattr(self.model, "uses_language", True):
            return None, None
        fields = [language_fields(x) for x in languages]
        has = [f[2] if self.featurizer is not None else False for f in fields]
        texts, has_text, _ = prepare_texts([f[0] for f in fields], has, getattr(self.featurizer, "missing", "zero"),
                                           [f[1] for f in fields])
        return self.model.tokenize(texts, has_text, self.device, pad_to_max=self.pad_texts), None
