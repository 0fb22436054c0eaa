"""The fixed validation set of the search fitness (:mod:`asearch.search.fitness`): which videos and frames
(:class:`ValidationConfig`, :func:`load_validation_videos`, :func:`validation_names`) and how a tracker runs over
them: all videos in lockstep closed loop (:func:`track_lockstep`), one by one (:func:`track_one_by_one`), or
open loop around the previous frame's ground truth (:func:`track_open_loop`)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from asearch.errors import ConfigError, DataError

__all__ = ["ValidationConfig", "ValidationVideo", "load_validation_videos", "validation_names", "names_sha256",
           "track_lockstep", "track_one_by_one", "track_open_loop"]


@dataclass
class ValidationConfig:
    """The fixed validation set: ``videos`` videos of ``dataset``/``split``, each cut to its first ``frames``
    frames (``null``: full videos), scored with ``protocol`` (``null``: the dataset's default, ``lasot`` for the
    synthetic benchmark). ``select``: ``spread`` takes videos evenly spaced over the split's (sorted) list,
    ``first`` the first ones. ``root`` ``null`` reads ``$ASEARCH_<NAME>_ROOT``; ``options`` are reader options
    (e.g. ``held_out: only`` for LaSOT's held-out videos, ``split_file``). ``cache_frames``: keep the decoded
    frames in memory in every worker (read once)."""

    dataset: str = "synthetic"
    root: Optional[str] = None
    split: str = "val"
    videos: int = 20
    frames: Optional[int] = 11
    protocol: Optional[str] = None
    select: str = "spread"
    options: Dict[str, Any] = field(default_factory=dict)
    cache_frames: bool = True

    def __post_init__(self) -> None:
        if self.select not in ("spread", "first"):
            raise ConfigError(f"fitness.validation.select: {self.select!r} is not one of ['spread', 'first']")
        if self.videos < 1:
            raise ConfigError(f"fitness.validation.videos: must be >= 1, got {self.videos}")
        if self.frames is not None and self.frames < 2:
            raise ConfigError(f"fitness.validation.frames: must be >= 2 (the first frame initialises) or null, "
                              f"got {self.frames}")


@dataclass
class ValidationVideo:
    """One validation video cut to its first frames: the frames (decoded, or read on demand), ground truth,
    visibility and the language record (the :class:`~asearch.data.Sequence` itself)."""

    name: str
    sequence: Any
    boxes: np.ndarray
    visible: np.ndarray
    images: Optional[List[np.ndarray]] = None

    def __len__(self) -> int:
        return len(self.boxes)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (RGB uint8)."""
        return self.images[i] if self.images is not None else self.sequence.frame(i)


def track_lockstep(tracker: Any, videos: Sequence[ValidationVideo],
                   teacher: Optional[Sequence[np.ndarray]] = None) -> List[np.ndarray]:
    """Track all ``videos`` together: one ``track_batch`` per frame for every video still running (the template
    branch runs once per video, in one batch). With ``teacher`` (one box array per video), every video's state is
    put at ``teacher[i][t - 1]`` before frame ``t`` (:meth:`~trackers.inference.base.BatchedTracker.set_boxes`).
    Returns one ``N_i×4`` prediction array per video (row 0 = GT)."""
    preds = [[np.asarray(v.boxes[0], dtype=np.float64)] for v in videos]
    tracker.initialize_batch([v.frame(0) for v in videos], [v.boxes[0] for v in videos],
                             [v.sequence for v in videos])
    active = list(range(len(videos)))
    t = 1
    while active:
        still = [k for k, i in enumerate(active) if t < len(videos[i])]
        if not still:
            break
        if len(still) != len(active):  # drop the videos that ended
            tracker.keep(still)
            active = [active[k] for k in still]
        if teacher is not None:
            tracker.set_boxes([teacher[i][t - 1] for i in active])
        outs = tracker.track_batch([videos[i].frame(t) for i in active])
        for i, out in zip(active, outs):
            preds[i].append(np.asarray(out["box"], dtype=np.float64))
        t += 1
    return [np.stack(p) for p in preds]


def _last_known_boxes(boxes: np.ndarray) -> np.ndarray:
    """Each frame's ground truth, or the last earlier frame's with a finite, positive-size box (an absent target
    keeps the box where it was last seen)."""
    out = np.asarray(boxes, dtype=np.float64).copy()
    for t in range(1, len(out)):
        b = out[t]
        if not np.all(np.isfinite(b)) or b[2] <= 0 or b[3] <= 0:
            out[t] = out[t - 1]
    return out


def track_open_loop(tracker: Any, videos: Sequence[ValidationVideo]) -> List[np.ndarray]:
    """Teacher-forced tracking (``fitness.mode: open_loop``): all ``videos`` in lockstep as :func:`track_lockstep`,
    but before frame ``t`` every video's state is put at the ground truth of frame ``t - 1`` (the last known one
    when the target is absent there), so frame ``t`` is cropped around it whatever the tracker predicted before.
    Returns one ``N_i×4`` array per video (row 0 = GT)."""
    return track_lockstep(tracker, videos, teacher=[_last_known_boxes(v.boxes) for v in videos])


def track_one_by_one(tracker: Any, videos: Sequence[ValidationVideo]) -> List[np.ndarray]:
    """Track the ``videos`` one after another with the one-video API (``initialize`` / ``track``)."""
    out = []
    for v in videos:
        tracker.initialize(v.frame(0), v.boxes[0], v.sequence)
        preds = [np.asarray(v.boxes[0], dtype=np.float64)]
        for t in range(1, len(v)):
            preds.append(np.asarray(tracker.track(v.frame(t))["box"], dtype=np.float64))
        out.append(np.stack(preds))
    return out


def _selected(cfg: ValidationConfig, available: int) -> List[int]:
    """Indices of the validation videos ``cfg`` selects from a split of ``available`` videos."""
    if available < cfg.videos:
        raise DataError(f"fitness.validation.videos is {cfg.videos} but dataset '{cfg.dataset}' split "
                        f"'{cfg.split}' has {available} videos", field="fitness.validation.videos")
    if cfg.select == "first":
        return list(range(cfg.videos))
    return [int(round(x)) for x in np.linspace(0, available - 1, cfg.videos)]


def validation_names(cfg: ValidationConfig) -> List[str]:
    """Names of the validation videos of ``cfg``, in scoring order (no frame is read)."""
    from asearch.data.registry import build_dataset

    dataset = build_dataset(cfg.dataset, root=cfg.root, split=cfg.split, **dict(cfg.options))
    names = dataset.names
    return [names[i] for i in _selected(cfg, len(dataset))]


def names_sha256(names: Sequence[str]) -> str:
    """SHA-256 of a video list (the names joined by newlines, UTF-8): the ``videos_sha256`` of a protocol record."""
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


def load_validation_videos(cfg: ValidationConfig) -> List[ValidationVideo]:
    """The fixed validation set of ``cfg`` (frames decoded when ``cfg.cache_frames``)."""
    from asearch.data.registry import build_dataset

    dataset = build_dataset(cfg.dataset, root=cfg.root, split=cfg.split, **dict(cfg.options))
    indices = _selected(cfg, len(dataset))
    videos = []
    for i in indices:
        seq = dataset[i]
        n = len(seq) if cfg.frames is None else min(len(seq), int(cfg.frames))
        box = np.asarray(seq.boxes[0], dtype=np.float64)
        if n < 2 or not np.all(np.isfinite(box)) or box[2] <= 0 or box[3] <= 0:
            raise DataError(f"validation video '{seq.name}' cannot be tracked: {n} frames, first box "
                            f"{box.tolist()}", field="fitness.validation")
        images = [seq.frame(t) for t in range(n)] if cfg.cache_frames else None
        videos.append(ValidationVideo(seq.name, seq, seq.boxes[:n].copy(), seq.visible[:n].copy(), images))
    return videos
