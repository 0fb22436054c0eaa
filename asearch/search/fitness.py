"""Fitness of a candidate: SUC on a fixed validation set with the supernet's shared weights (paper 000 Eq. 6).

``SUC_val(N(a, W_A(a)))`` of Eq. 6, for a genome ``a``:

1. BN recalibration for ``a`` (:mod:`asearch.search.bn`): running statistics reset, ``bn.batches`` fixed training
   batches forwarded along ``a`` in train mode under no_grad (cumulative average; ``bn.fuse`` of them per forward
   pass as ghost batches), then eval mode. ``bn.batches: 0`` keeps the supernet's own statistics.
2. Tracking the validation set with the model family's tracker on path ``a``: the first ``validation.videos``
   videos of ``validation.dataset`` / ``split`` (in the reader's order), each cut to its first
   ``validation.frames`` frames (``null``: whole videos). Every candidate sees exactly the same frames (SPOS's
   iterator quirk, which scores each candidate on a different slice, is not reproduced).
   **Batched** (default): all validation videos are tracked together in lockstep, one model call per frame for
   the whole set and the template branch once per video (:class:`trackers.inference.base.BatchedTracker`);
   ``batched: false`` tracks one video after another (kept for the benchmark).
3. SUC with the validation dataset's protocol (``lasot`` for the synthetic benchmark; :func:`asearch.evaluation.ope`),
   a fraction in [0, 1].

``mode``: ``ope`` (default, the paper's) tracks each video closed loop as above: every frame is cropped around the
tracker's own previous prediction. ``open_loop`` crops frame ``t`` around the ground truth of frame ``t - 1``
(teacher forcing, :func:`track_open_loop`): a numerical change in one frame cannot send the tracker elsewhere for
the rest of the video, so the score is far less chaotic; the predictions are scored with the same SUC formula.

``repeats: R``: steps 1-3 run ``R`` times with independent recalibration batches (repeat ``r`` draws its pairs with
seed ``bn.seed + r``; the same seeds for every candidate) and the candidate's ``suc`` is their mean, ``suc_std``
their standard deviation (``ddof = 1``; 0 for ``R = 1``). ``R = 1`` is exactly the single score of before.

The recalibration batches are drawn from the supernet's own training data (the ``data`` section stored in its
checkpoint) unless ``bn.data`` gives another one; pair ``i`` is a function of ``(bn.seed, 0, i)`` only
(:class:`asearch.data.PairDataset`), so every worker builds the same batches.

Worker-side state: :class:`TrackingFitness` is a light picklable spec (checkpoint path, its mtime, the config).
Its :class:`FitnessContext` (model, BN batches with precomputed language vectors, validation frames) is built on
first use in a process and kept in a per-process cache (:func:`worker_cache`), so a Ray worker loads the
supernet once and scores many candidates.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence, Union

import numpy as np

from asearch.config import from_dict, to_dict
from asearch.errors import ConfigError
from asearch.search.validation import (  # noqa: F401 (re-exported)
    ValidationConfig, ValidationVideo, load_validation_videos, names_sha256, track_lockstep, track_one_by_one,
    track_open_loop, validation_names,
)

__all__ = ["ValidationConfig", "BNConfig", "FitnessConfig", "TrackingFitness", "FitnessContext", "worker_cache",
           "clear_worker_cache", "track_lockstep", "track_one_by_one", "track_open_loop", "stack_batches",
           "FITNESS_MODES", "TrackingParts", "load_tracking_parts", "score_checkpoint"]


@dataclass
class BNConfig:
    """BN recalibration before scoring: ``batches`` fixed training batches of ``batch_size`` pairs (SPOS: 200).

    ``data``: a ``data`` section (``datasets``, ``sampler``, ``no_language_share``, as in a training YAML) for the
    recalibration pairs; ``null`` uses the supernet's training data stored in its checkpoint. ``cache``: keep the
    batches in memory (uint8 crops) in every worker instead of re-sampling them for each candidate. ``fuse``: how
    many of the batches go through the network in one forward pass as ghost batches (each still normalised and
    counted on its own, :mod:`asearch.search.bn`: the same statistics up to float rounding, fewer and larger
    passes); 1: one pass per batch. ``kernel``: ``native`` (PyTorch's batch norm) or ``channels_last`` (opt-in,
    CPU workers with ``channels_last``: a faster batch norm for that layout with few channels, as accurate; its
    statistics differ in the last bits, which can change a search's ranking, see :mod:`asearch.search.bn`).
    """

    batches: int = 200
    batch_size: int = 16
    seed: int = 0
    data: Optional[Dict[str, Any]] = None
    cache: bool = True
    fuse: int = 4
    kernel: str = "native"

    def __post_init__(self) -> None:
        from asearch.search.bn import Recalibrator

        if self.kernel not in Recalibrator.KERNELS:
            raise ConfigError(f"fitness.bn.kernel: {self.kernel!r} is not one of {list(Recalibrator.KERNELS)}")
        if self.batches < 0 or self.batch_size < 1:
            raise ConfigError(f"fitness.bn: batches must be >= 0 and batch_size >= 1 "
                              f"(got {self.batches}, {self.batch_size})")
        if self.fuse < 1:
            raise ConfigError(f"fitness.bn.fuse: must be >= 1, got {self.fuse}")


@dataclass
class FitnessConfig:
    """How a candidate is scored (section ``fitness`` of the search YAML).

    ``tracker``: tracking hyperparameters over the ones stored in the supernet's checkpoint config (the model
    family's tracker config). ``language``: language settings (:class:`trackers.registry.LanguageConfig` fields)
    over the checkpoint's. ``batched``: track the validation videos in lockstep (default) or one by one (``ope``
    only; ``open_loop`` is always lockstep). ``mode``: ``ope`` | ``open_loop``, ``repeats``: scores per candidate
    with independent BN batches (see the module docstring).

    CPU settings (no effect on CUDA; both measured by ``benchmarks/bench_search.py``): ``channels_last`` stores the
    worker's model in the channels-last layout, which oneDNN convolutions with few channels run far faster on
    (a 1×1 convolution 4→8 at 64×64, batch 20: 0.2 ms against 3.4 ms in NCHW; ``bn.kernel: channels_last``
    recalibrates that layout faster); ``keep_freed_memory`` makes the
    worker process keep freed tensor memory for reuse (:func:`asearch.runtime.keep_freed_memory`). Scores agree with
    the plain settings up to float rounding.
    """

    validation: ValidationConfig = field(default_factory=ValidationConfig)
    bn: BNConfig = field(default_factory=BNConfig)
    mode: str = "ope"
    repeats: int = 1
    batched: bool = True
    channels_last: bool = True
    keep_freed_memory: bool = True
    tracker: Dict[str, Any] = field(default_factory=dict)
    language: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in FITNESS_MODES:
            raise ConfigError(f"fitness.mode: {self.mode!r} is not one of {list(FITNESS_MODES)}")
        if self.repeats < 1:
            raise ConfigError(f"fitness.repeats: must be >= 1, got {self.repeats}")
        if self.repeats > 1 and self.bn.batches == 0:
            raise ConfigError("fitness.repeats > 1 needs fitness.bn.batches > 0: the repeats differ only in their "
                              "BN-recalibration batches")


#: ``fitness.mode`` values: closed-loop one-pass evaluation, or teacher-forced crops
FITNESS_MODES = ("ope", "open_loop")

_WORKER_CACHE: Dict[Hashable, Any] = {}


def worker_cache(key: Hashable, build: Callable[[], Any]) -> Any:
    """Per-process cache: ``build()`` runs once per worker process and ``key`` (e.g. checkpoint path + mtime)."""
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = build()
    return _WORKER_CACHE[key]


def clear_worker_cache() -> None:
    """Forget every cached fitness context of this process."""
    _WORKER_CACHE.clear()


# ----------------------------------------------------------------------------------------------------------------------
# the worker-side context
def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


@dataclass
class TrackingParts:
    """What tracking with a checkpoint needs: the model (eval mode, on the device), its config, the tracker and
    language configs (the checkpoint's, with overrides on top), the language featurizer (or ``None``) and the
    checkpoint's stored config."""

    model: Any
    model_cfg: Any
    tracker_cfg: Any
    language_cfg: Any
    featurizer: Any
    stored: Dict[str, Any]


def load_tracking_parts(checkpoint: Union[str, Path], tracker: Mapping[str, Any], language: Mapping[str, Any],
                        device: Any) -> TrackingParts:
    """Rebuild the model of ``checkpoint`` and its tracking settings (``tracker`` / ``language``: overrides over
    the checkpoint's own, as ``fitness.tracker`` / ``fitness.language``)."""
    from asearch.io import load_torch
    from trackers.registry import (build_featurizer, check_language_width, checkpoint_language, get_entry,
                                   rebuild_model, resolve_language)

    source = str(checkpoint)
    ckpt = load_torch(checkpoint, map_location="cpu")
    stored = dict(ckpt.get("config")) if isinstance(ckpt.get("config"), Mapping) else {}
    model, model_cfg = rebuild_model(ckpt, source)
    stored_language = checkpoint_language(ckpt)
    del ckpt
    model.to(device).eval()
    entry = get_entry(model_cfg.name)
    tracker_cfg = from_dict(entry.tracker_config_cls, _merge(dict(stored.get("tracker") or {}), tracker),
                            source=f"{source} + fitness.tracker", prefix="tracker.")
    language_cfg = resolve_language(language, stored_language, source=f"{source} + fitness.language")
    featurizer = None
    if getattr(model, "uses_language", False) and language_cfg.enabled:
        featurizer = build_featurizer(language_cfg, device, stored_language)
        check_language_width(featurizer, model, language_cfg, stored_language, source)
    return TrackingParts(model, model_cfg, tracker_cfg, language_cfg, featurizer, stored)


def score_checkpoint(checkpoint: Union[str, Path], validation: ValidationConfig, mode: str = "ope",
                     tracker: Optional[Mapping[str, Any]] = None, language: Optional[Mapping[str, Any]] = None,
                     device: Any = "auto", videos: Optional[Sequence[ValidationVideo]] = None) -> Dict[str, Any]:
    """SUC of a trained fixed-architecture checkpoint (a retrained subnet or a baseline) on the validation set of
    ``validation``, tracked as the search fitness tracks (``mode``: ``ope`` or ``open_loop``, lockstep), with the
    same protocol; its BN statistics are its own (no recalibration). Returns ``suc``, ``prec``, ``seconds``."""
    import torch

    from asearch.evaluation import ope
    from asearch.runtime import resolve_device
    from trackers.registry import build_tracker

    if mode not in FITNESS_MODES:
        raise ConfigError(f"fitness.mode: {mode!r} is not one of {list(FITNESS_MODES)}")
    t0 = time.perf_counter()
    dev = resolve_device(device)
    parts = load_tracking_parts(checkpoint, tracker or {}, language or {}, dev)
    if getattr(parts.model, "needs_genome", False):
        raise ConfigError(f"{checkpoint}: a supernet checkpoint; score_checkpoint scores a fixed architecture")
    videos = load_validation_videos(validation) if videos is None else videos
    trk = build_tracker(parts.model, parts.model_cfg, parts.tracker_cfg, featurizer=parts.featurizer, device=dev)
    with torch.inference_mode():
        preds = (track_open_loop if mode == "open_loop" else track_lockstep)(trk, videos)
    protocol = validation.protocol or _default_protocol(validation.dataset)
    res = ope(preds, [v.boxes for v in videos], [v.visible for v in videos], protocol=protocol,
              names=[v.name for v in videos])
    return {"suc": float(res["suc"]), "prec": float(res["prec"]), "seconds": time.perf_counter() - t0}


class FitnessContext:
    """Everything a worker needs to score genomes: built once per process by :meth:`TrackingFitness.context`."""

    def __init__(self, supernet: Union[str, Path], config: FitnessConfig, device: Any = "auto"):
        from asearch.runtime import keep_freed_memory, resolve_device
        from asearch.search.bn import Recalibrator
        from asearch.training.recipes import search_space_of
        from supernets.blocks import to_channels_last
        from trackers.registry import build_actor

        t0 = time.perf_counter()
        self.config = config
        self.device = resolve_device(device)
        source = str(supernet)
        parts = load_tracking_parts(supernet, config.tracker, config.language, self.device)
        stored = parts.stored
        self.model, self.model_cfg = parts.model, parts.model_cfg
        if not getattr(self.model, "needs_genome", False):
            raise ConfigError(f"{source}: this checkpoint holds a fixed architecture, not a supernet; asearch "
                              "search needs the checkpoint of asearch pretrain")
        self.channels_last = self.device.type == "cpu" and config.channels_last
        if self.device.type == "cpu":
            if config.keep_freed_memory:
                keep_freed_memory()
            if self.channels_last:
                to_channels_last(self.model)
        self.space = search_space_of(self.model)
        self.tracker_cfg, self.language_cfg, self.featurizer = parts.tracker_cfg, parts.language_cfg, parts.featurizer
        self.actor = build_actor(self.model, self.model_cfg, self.featurizer, stored.get("loss") or {})
        self.protocol = config.validation.protocol or _default_protocol(config.validation.dataset)
        self._pairs: List[Any] = []  # one pair dataset per repeat (seed bn.seed + r)
        self.bn_batches: Optional[List[List[Dict[str, Any]]]] = None
        if config.bn.batches > 0:
            self._pairs = [self._build_pairs(stored, source, config.bn.seed + r) for r in range(config.repeats)]
            if config.bn.cache:
                self.bn_batches = [[self._make_batch(i, r) for i in range(config.bn.batches)]
                                   for r in range(config.repeats)]
        self.videos = load_validation_videos(config.validation)
        self._tracker: Any = None
        self.recalibrator = Recalibrator(self.model, kernel=config.bn.kernel)  # BN layers and modules found once
        self.load_seconds = time.perf_counter() - t0

    # -- BN batches --------------------------------------------------------------------------------------------------
    def _build_pairs(self, stored: Mapping[str, Any], source: str, seed: int) -> Any:
        from asearch.training.recipes import ExperimentConfig, build_pair_dataset

        bn = self.config.bn
        data = bn.data if bn.data is not None else stored.get("data")
        if not data or not data.get("datasets"):
            raise ConfigError(f"{source}: no training data for BN recalibration: the checkpoint stores no 'data' "
                              "section; set fitness.bn.data (e.g. {datasets: [{name: synthetic, split: train}]}) "
                              "or fitness.bn.batches: 0")
        data = dict(data)
        data["pairs_per_epoch"] = bn.batches * bn.batch_size
        exp = from_dict(ExperimentConfig, {"data": data, "language": to_dict(self.language_cfg)},
                        source="fitness.bn.data")
        pairs = build_pair_dataset(exp, self.model_cfg, seed=seed, source="fitness.bn.data",
                                   tracker=self.tracker_cfg)  # the crops of the tracker the fitness runs
        pairs.set_epoch(0)
        return pairs

    def _make_batch(self, i: int, repeat: int = 0) -> Dict[str, Any]:
        """BN batch ``i`` of ``repeat``: pairs ``i·B .. (i+1)·B−1``, crops stored as uint8, language vectors
        precomputed."""
        import torch

        from asearch.data.sampler import collate_pairs

        bs = self.config.bn.batch_size
        pairs = self._pairs[repeat]
        batch = collate_pairs([pairs[j] for j in range(i * bs, (i + 1) * bs)])
        for key in ("template", "search"):
            batch[key] = batch[key].clamp(0, 255).round().to(torch.uint8)
        language, use_template = self.actor.language(batch, torch.device("cpu"))
        if language is not None:
            batch["language"] = language.cpu()
            batch["use_template_language"] = use_template.cpu() if use_template is not None else None
        return batch

    def recalibration_batches(self, repeat: int = 0):
        """The fixed BN batches of ``repeat`` on the device (floats 0..255), cached or re-sampled."""
        from asearch.training.trainer import move_to_device

        n = self.config.bn.batches
        for i in range(n):
            batch = self.bn_batches[repeat][i] if self.bn_batches is not None else self._make_batch(i, repeat)
            batch = move_to_device(batch, self.device)
            yield {**batch, "template": batch["template"].float(), "search": batch["search"].float()}

    def recalibration_parts(self) -> List[int]:
        """How many recalibration batches each fused pass stacks: ``bn.fuse`` each, the rest in the last."""
        n, fuse = self.config.bn.batches, self.config.bn.fuse
        return [min(fuse, n - i) for i in range(0, n, fuse)]

    def fused_recalibration_batches(self, repeat: int = 0):
        """:meth:`recalibration_batches` stacked as :meth:`recalibration_parts` says, produced one pass at a time."""
        batches = self.recalibration_batches(repeat)
        for parts in self.recalibration_parts():
            group = [next(batches) for _ in range(parts)]
            yield group[0] if parts == 1 else stack_batches(group)

    # -- scoring -----------------------------------------------------------------------------------------------------
    def score(self, genome: Any, batched: Optional[bool] = None) -> Dict[str, Any]:
        """Score ``genome``: for each of the ``repeats``, recalibrate BN with that repeat's batches and track the
        validation set; returns ``suc`` (the mean), ``suc_std``, ``prec`` (mean) and timings (summed)."""
        import torch

        from asearch.evaluation import ope
        from trackers.registry import build_tracker

        genome = self.space.validate(genome)
        batched = self.config.batched if batched is None else batched
        track = track_open_loop if self.config.mode == "open_loop" else (
            track_lockstep if batched else track_one_by_one)
        sucs, precs, bn_seconds, track_seconds = [], [], 0.0, 0.0
        for repeat in range(self.config.repeats):
            if self.config.bn.batches > 0:
                with torch.inference_mode():
                    bn = self.recalibrator(self.fused_recalibration_batches(repeat),
                                           lambda b: self.actor.recalibration_pass(b, genome),
                                           parts=self.recalibration_parts())
                bn_seconds += bn["seconds"]
            t0 = time.perf_counter()
            if self._tracker is None:  # one tracker for every candidate of this worker; eval mode, on the device
                self._tracker = build_tracker(self.model, self.model_cfg, self.tracker_cfg,
                                              featurizer=self.featurizer, genome=genome, device=self.device)
                self._tracker.channels_last_input = self.channels_last
            tracker = self._tracker
            tracker.set_genome(genome)
            with torch.inference_mode():
                preds = track(tracker, self.videos)
            track_seconds += time.perf_counter() - t0
            res = ope(preds, [v.boxes for v in self.videos], [v.visible for v in self.videos],
                      protocol=self.protocol, names=[v.name for v in self.videos])
            sucs.append(float(res["suc"]))
            precs.append(float(res["prec"]))
        return {"suc": float(np.mean(sucs)) if len(sucs) > 1 else sucs[0],
                "suc_std": float(np.std(sucs, ddof=1)) if len(sucs) > 1 else 0.0,
                "prec": float(np.mean(precs)) if len(precs) > 1 else precs[0],
                "bn_seconds": round(bn_seconds, 4), "track_seconds": round(track_seconds, 4)}


def stack_batches(batches: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Pair batches stacked into one (tensors concatenated along the batch dimension, lists joined); a
    ``use_template_language`` of ``None`` (no item uses the template strategy) counts as all ``False``."""
    import torch

    out: Dict[str, Any] = {}
    for key in batches[0]:
        values = [b.get(key) for b in batches]
        if key == "use_template_language" and any(v is not None for v in values):
            values = [v if v is not None else torch.zeros(len(b["template"]), dtype=torch.bool,
                                                          device=b["template"].device)
                      for v, b in zip(values, batches)]
        if all(v is None for v in values):
            out[key] = None
        elif all(hasattr(v, "shape") for v in values):
            out[key] = torch.cat(values, 0)
        else:
            out[key] = [x for v in values for x in v]
    return out


def _default_protocol(dataset: str) -> str:
    from asearch.evaluation import default_protocol

    return default_protocol(dataset)


class TrackingFitness:
    """Picklable fitness ``genome -> {"suc", "suc_std", "prec", "bn_seconds", "track_seconds", "seconds"}`` of a supernet
    checkpoint (``seconds``: scoring time, without the one-off loading of the worker's context).

    Only the path, its modification time and the config travel to workers; the heavy
    :class:`FitnessContext` is built on first use in each process and cached there.
    """

    def __init__(self, supernet: Union[str, Path], config: Optional[FitnessConfig] = None, device: Any = "auto"):
        path = Path(supernet)
        if not path.is_file():
            from asearch.errors import CheckpointError

            raise CheckpointError(f"supernet checkpoint not found: {path}")
        self.supernet = str(path.resolve())
        self.mtime_ns = os.stat(self.supernet).st_mtime_ns
        self.config = config or FitnessConfig()
        self.device = str(device)

    def key(self) -> Hashable:
        """Cache key: checkpoint path + mtime, the fitness config and the device."""
        return ("tracking-fitness", self.supernet, self.mtime_ns, json.dumps(to_dict(self.config), sort_keys=True),
                self.device)

    def context(self) -> FitnessContext:
        """This process's context (built once)."""
        return worker_cache(self.key(), lambda: FitnessContext(self.supernet, self.config, self.device))

    def __call__(self, genome: Any) -> Dict[str, Any]:
        ctx = self.context()  # built on the first call in this process; not counted in ``seconds``
        t0 = time.perf_counter()
        result = ctx.score(genome)
        result["seconds"] = time.perf_counter() - t0
        return result

    def protocol_record(self) -> Dict[str, Any]:
        """The evaluation protocol (the fields of :class:`~asearch.search.architecture.ValidationRecord` but
        ``suc``) for ``best.json``."""
        v, bn = self.config.validation, self.config.bn
        return {"protocol": v.protocol or _default_protocol(v.dataset), "dataset": v.dataset, "split": v.split,
                "videos": v.videos, "frames": v.frames, "bn_batches": bn.batches, "select": v.select,
                "videos_sha256": names_sha256(validation_names(v)), "bn_batch_size": bn.batch_size,
                "bn_seed": bn.seed, "mode": self.config.mode, "repeats": self.config.repeats}

    def with_config(self, **changes: Any) -> "TrackingFitness":
        """A copy with fields of :class:`FitnessConfig` replaced (e.g. ``batched=False``)."""
        new = TrackingFitness.__new__(TrackingFitness)
        new.__dict__.update(self.__dict__)
        new.config = dataclasses.replace(self.config, **changes)
        return new
