"""The training engine shared by ``asearch pretrain`` (SPOS supernet, paper 000 Alg. 1) and ``asearch retrain``
(fixed subnet, Alg. 2).

:class:`Trainer` loops over optimizer steps (not epochs): it pulls batches from ``data_loader_factory(epoch,
skip_batches)``, calls the actor for ``(loss, stats)``, back-propagates (bf16/fp16 autocast on CUDA, with a
GradScaler for fp16; full precision on CPU), drops the gradients of off-path parameters (SPOS: they get no momentum
or weight-decay update, so the supernet weights follow Eq. 5 of paper 000,
``W_A = argmin_W E_{a ~ Gamma(A)} [L_train(N(a, W(a)))]``, one sampled path ``a`` per step), clips, steps the
optimizer and the per-step scheduler, logs, and writes self-describing checkpoints atomically.

Output folder layout::

    out_dir/config.json               the run's config dict and train config
    out_dir/train_log.csv             one row per log_every steps (step, epoch, lr, loss, stats..., sec_per_step)
    out_dir/checkpoints/step_XXXXXXXX.pt, latest.pt   latest.pt: a hard link to the newest step file (no copy)
    out_dir/tensorboard/              only with tensorboard: true (needs the optional tensorboard package)

Resuming (``resume=True``) restores model, optimizer, scheduler, GradScaler, actor state, every rank's RNG
states, the step, the position in the epoch and the statistics of the steps not logged yet, so that a run paused
or killed after step ``k`` and resumed ends bit-identical to an unbroken run: the same weights, optimizer state and
``train_log.csv`` (but for ``sec_per_step``), given a loader factory that honours ``skip_batches`` (e.g.
:func:`~asearch.training.distributed.seeded_loader_factory`) and language features that do not depend on what was
cached before (:class:`~asearch.language.features.LanguageFeaturizer` encodes each text alone).
"""
from __future__ import annotations

import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import asearch
from asearch.config import to_dict
from asearch.errors import CheckpointError, ConfigError, DataError
from asearch.io import atomic_link, atomic_torch_save, atomic_write_json, load_torch
from asearch.runtime import resolve_device, seed_everything
from asearch.training.distributed import get_rank, get_world_size, is_distributed, is_main_process
from asearch.training.logging import CsvLogger, TensorBoardLogger, plain_progress, progress_line
from asearch.training.optim import OPTIMIZERS, SCHEDULES

__all__ = [
    "TrainConfig",
    "Trainer",
    "CHECKPOINT_FORMAT",
    "load_checkpoint",
    "load_model_state",
    "resolve_amp",
    "move_to_device",
    "capture_rng_state",
    "restore_rng_state",
]

log = logging.getLogger("asearch.training")

CHECKPOINT_FORMAT = "asearch.train_checkpoint/1"
AMP_MODES = ("auto", "bf16", "fp16", "off")


@dataclass
class TrainConfig:
    """Everything the training loop needs; strict (unknown keys are errors) through :mod:`asearch.config`.

    Steps are optimizer steps; ``batch_size`` is per process. ``lr_mult`` maps parameter-name prefixes to learning
    rate multipliers (``{"backbone": 0.1}``). ``schedule``: constant | cosine | step | log after ``warmup_steps``
    linear steps from ``warmup_start * lr``; cosine and log end at ``min_lr_ratio * lr``; step multiplies by
    ``gamma`` at each absolute step of ``milestones``. ``grad_clip`` 0 disables clipping. ``amp``: auto (bf16 if
    the GPU has it, else fp16) | bf16 | fp16 | off, CUDA only. ``checkpoint_every`` 0 saves only at the end;
    ``keep_checkpoints`` step files are kept besides ``latest.pt`` (0: only latest.pt, -1: all). ``log_every``:
    one CSV row (the mean of the interval) every that many steps.
    """

    steps: int = 1000
    batch_size: int = 32
    num_workers: int = 4
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    betas: Tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    lr_mult: Dict[str, float] = field(default_factory=dict)
    warmup_steps: int = 0
    warmup_start: float = 0.1
    schedule: str = "cosine"
    min_lr_ratio: float = 0.01
    milestones: List[int] = field(default_factory=list)
    gamma: float = 0.1
    grad_clip: float = 0.0
    amp: Union[str, bool] = "auto"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.amp, bool):
            self.amp = "auto" if self.amp else "off"
        self.amp = str(self.amp).lower()
        self.optimizer = str(self.optimizer).lower()
        self.schedule = str(self.schedule).lower()

        def bad(key: str, what: str) -> ConfigError:
            return ConfigError(f"train config key '{key}' {what}, got {getattr(self, key)!r}")

        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", f"must be one of {', '.join(SCHEDULES)}")
        if self.amp not in AMP_MODES:
            raise bad("amp", f"must be one of {', '.join(AMP_MODES)} (or true/false)")
        for key in ("steps", "batch_size", "log_every"):
            if getattr(self, key) < 1:
                raise bad(key, "must be >= 1")
        for key in ("num_workers", "warmup_steps", "checkpoint_every", "weight_decay", "momentum", "grad_clip"):
            if getattr(self, key) < 0:
                raise bad(key, "must be >= 0")
        if not self.lr > 0:
            raise bad("lr", "must be > 0")
        if self.warmup_steps > self.steps:
            raise bad("warmup_steps", f"must be <= steps ({self.steps})")
        if not 0 <= self.warmup_start <= 1:
            raise bad("warmup_start", "must be in [0, 1]")
        if not 0 <= self.min_lr_ratio <= 1 or (self.schedule == "log" and self.min_lr_ratio == 0):
            raise bad("min_lr_ratio", "must be in [0, 1] (and > 0 for the log schedule)")
        if self.keep_checkpoints < -1:
            raise bad("keep_checkpoints", "must be -1 (keep all), 0 (only latest.pt) or a positive count")
        for prefix, mult in self.lr_mult.items():
            if mult < 0:
                raise ConfigError(f"train config key 'lr_mult.{prefix}' must be >= 0, got {mult!r}")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise bad("nesterov", "needs optimizer 'sgd' with momentum > 0")


def resolve_amp(amp: str, device: torch.device) -> Optional[torch.dtype]:
    """Autocast dtype for ``amp`` on ``device``: ``None`` (full precision) on CPU or with ``"off"``."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move every tensor in a (nested dict / list / tuple) batch to ``device``; other values are kept."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch


def capture_rng_state() -> Dict[str, Any]:
    """Python, NumPy, torch CPU and (if present) CUDA RNG states as plain data (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": [int(k) for k in keys], "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = state["numpy"]
    np.random.set_state((npy["name"], np.asarray(npy["keys"], dtype=np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda_states = list(state["cuda"])
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
        else:
            log.warning("checkpoint has %d CUDA RNG states but %d GPUs are visible: CUDA RNG not restored",
                        len(cuda_states), torch.cuda.device_count())


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Read a training checkpoint written by :class:`Trainer`, checking its format tag.

    Keys: ``format, asearch_version, torch_version, step, epoch, batch_in_epoch, world_size, model, optimizer,
    scheduler, scaler, actor, rng`` (one entry per rank), ``config`` (the run's config dict), ``train`` (the
    :class:`TrainConfig` as a dict) and ``build_info`` (how to rebuild the model, or ``None``).
    """
    ckpt = load_torch(path, map_location=map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not an asearch training checkpoint (format {found!r}, "
                              f"expected {CHECKPOINT_FORMAT!r})")
    for key in ("model", "optimizer", "step", "epoch", "batch_in_epoch", "rng"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: training checkpoint lacks the field '{key}'")
    return ckpt


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "<state dict>") -> None:
    """Strict ``load_state_dict`` whose error names ``source`` and the first missing, unexpected or misshaped key."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing:
        raise CheckpointError(f"{source}: key '{missing[0]}' of the model is missing from the checkpoint "
                              f"({len(missing)} missing in all)")
    if unexpected:
        raise CheckpointError(f"{source}: checkpoint key '{unexpected[0]}' is not in the model "
                              f"({len(unexpected)} unexpected in all)")
    for k, v in own.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise CheckpointError(f"{source}: key '{k}' has shape {tuple(state[k].shape)} in the checkpoint, "
                                  f"{tuple(v.shape)} in the model")
    model.load_state_dict(state, strict=True)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class Trainer:
    """Step-based training loop around an actor (see :mod:`asearch.training.actor`).

    Args:
        model: the network (built on CPU; the trainer moves it to ``device`` and wraps it in DDP under torchrun).
        actor: ``actor(batch, step) -> (loss, stats)``; optional ``path(step)``, ``off_path_parameters()``,
            ``bind(model)`` (receives the DDP wrapper), ``state_dict()``/``load_state_dict()``.
        data_loader_factory: ``factory(epoch, skip_batches) -> iterable of batches`` for this process; it must order
            the data from ``(seed, epoch)`` only, skip the first ``skip_batches`` batches, and not draw from the
            global RNGs when built (see :func:`~asearch.training.distributed.seeded_loader_factory`).
        optimizer: built on ``model`` (e.g. :func:`~asearch.training.optim.build_optimizer`).
        scheduler: per-step scheduler or ``None`` (e.g. :func:`~asearch.training.optim.build_scheduler`).
        cfg: the :class:`TrainConfig`.
        out_dir: output folder (checkpoints, CSV log, config.json).
        device: ``None`` uses ``cfg.device`` (``auto``: CUDA when present; ``cuda:LOCAL_RANK`` under torchrun).
        config_dict: the full plain config of the run, stored in every checkpoint (self-describing).
        resume: ``False`` (a folder that already has ``latest.pt`` is an error), ``True`` (continue from
            ``out_dir/checkpoints/latest.pt`` if there is one) or the path of a checkpoint to continue from.
        build_info: plain dict saying how to rebuild the model (e.g. factory name and keyword arguments).
        progress: show a tqdm bar on the main process.
        find_unused_parameters: for DDP; ``None`` means true when the actor samples paths (SPOS).
    """

    def __init__(self, model: nn.Module, actor: Callable[[Any, int], Tuple[torch.Tensor, Dict[str, float]]],
                 data_loader_factory: Callable[[int, int], Iterable[Any]], optimizer: torch.optim.Optimizer,
                 scheduler: Optional[Any], cfg: TrainConfig, out_dir: Union[str, Path],
                 device: Optional[Union[str, torch.device]] = None, config_dict: Optional[Mapping[str, Any]] = None,
                 *, resume: Union[bool, str, Path] = False, build_info: Optional[Mapping[str, Any]] = None,
                 progress: bool = True, find_unused_parameters: Optional[bool] = None):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.rank = get_rank()
        self.world_size = get_world_size()
        self.main = is_main_process()
        self.device = resolve_device(device if device is not None else cfg.device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())  # cuda:LOCAL_RANK after init_distributed
        self.model = model.to(self.device)
        self.actor = actor
        self.data_loader_factory = data_loader_factory
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.config_dict = dict(config_dict or {})
        self.build_info = None if build_info is None else dict(build_info)
        self.progress = progress
        self.amp_dtype = resolve_amp(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self._log_sums: Dict[str, float] = {}  # stats of the steps since the last log row (part of a checkpoint)
        self._log_count = 0
        self._resume_path = self._find_resume(resume)
        self.net: nn.Module = self.model
        if is_distributed():
            if not hasattr(actor, "bind"):
                raise TypeError(f"{type(actor).__name__} has no bind(model): under DDP the trainer must hand the "
                                "wrapped model to the actor (derive the actor from BaseActor)")
            if find_unused_parameters is None:  # SPOS: the sampled path leaves the other choices unused
                path_hook = getattr(actor, "path", None)
                find_unused_parameters = callable(path_hook) and path_hook(0) is not None
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                           find_unused_parameters=bool(find_unused_parameters))
            actor.bind(self.net)
        if cfg.tensorboard and self.main:
            from asearch.training.logging import tensorboard_available

            if not tensorboard_available():
                raise ConfigError("train config key 'tensorboard' is true but the 'tensorboard' package is not "
                                  "installed: `pip install tensorboard` or set tensorboard: false")

    # ----------------------------------------------------------------------------------------------- checkpoints
    def _find_resume(self, resume: Union[bool, str, Path]) -> Optional[Path]:
        latest = self.ckpt_dir / "latest.pt"
        if resume is False or resume is None:
            if latest.is_file():
                raise CheckpointError(f"{self.out_dir} already holds a run ({latest}): resume it (resume=True, "
                                      "--resume) or choose another output folder")
            return None
        if resume is True:
            if latest.is_file():
                return latest
            log.info("no checkpoint in %s: starting a new run", self.ckpt_dir)
            return None
        path = Path(resume)
        if not path.is_file():
            raise CheckpointError(f"checkpoint to resume from not found: {path}")
        return path

    def state_dict(self) -> Dict[str, Any]:
        """The checkpoint of the current state (see :func:`load_checkpoint`); a collective call under DDP."""
        rng = capture_rng_state()
        if is_distributed():
            gathered: List[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, rng)
            rng_all = gathered
        else:
            rng_all = [rng]
        return {
            "format": CHECKPOINT_FORMAT,
            "asearch_version": asearch.__version__,
            "torch_version": str(torch.__version__),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "world_size": self.world_size,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "actor": self.actor.state_dict() if hasattr(self.actor, "state_dict") else None,
            "rng": rng_all,
            "log_pending": {"sums": dict(self._log_sums), "count": self._log_count},
            "config": self.config_dict,
            "train": to_dict(self.cfg),
            "build_info": self.build_info,
        }

    def save_checkpoint(self) -> Optional[Path]:
        """Write ``step_XXXXXXXX.pt`` and ``latest.pt`` atomically (main process) and prune old step files;
        ``latest.pt`` is a hard link to the newest step file (a copy only where links are not supported), so it
        takes no second copy on disk and every loader reads it as a plain checkpoint."""
        state = self.state_dict()  # collective: every rank takes part
        if not self.main:
            return None
        path = self.ckpt_dir / f"step_{self.step:08d}.pt"
        atomic_torch_save(state, path)
        atomic_link(path, self.ckpt_dir / "latest.pt")
        keep = self.cfg.keep_checkpoints
        if keep >= 0:
            steps = sorted(self.ckpt_dir.glob("step_*.pt"))
            for old in steps[: max(len(steps) - keep, 0)]:
                old.unlink()
        return path if path.exists() else self.ckpt_dir / "latest.pt"

    def _restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location="cpu")
        load_model_state(self.model, ckpt["model"], source=str(path))
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{path}: field 'optimizer' does not fit this optimizer: {exc}") from exc
        if self.scheduler is not None:
            if ckpt.get("scheduler") is None:
                raise CheckpointError(f"{path}: field 'scheduler' is empty but this run has a scheduler")
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler") is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        if hasattr(self.actor, "load_state_dict") and ckpt.get("actor") is not None:
            self.actor.load_state_dict(ckpt["actor"])
        rngs = ckpt["rng"]
        if len(rngs) != self.world_size:
            log.warning("%s was written by %d processes, this run has %d: data order and RNG streams will differ "
                        "from an unbroken run", path, len(rngs), self.world_size)
        restore_rng_state(rngs[self.rank % len(rngs)])
        self.step, self.epoch, self.batch_in_epoch = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
        pending = ckpt.get("log_pending") or {}  # so that the next log row averages the same steps as unbroken
        self._log_sums = {str(k): float(v) for k, v in (pending.get("sums") or {}).items()}
        self._log_count = int(pending.get("count") or 0)
        old = ckpt.get("train") or {}
        changed = sorted(k for k, v in to_dict(self.cfg).items() if k in old and old[k] != v)
        if changed and self.main:
            log.warning("resuming %s with changed train config keys: %s", path, ", ".join(changed))
        if self.main:
            log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.step, self.epoch,
                     self.batch_in_epoch)

    # ---------------------------------------------------------------------------------------------- the loop
    def _train_step(self, batch: Any) -> Dict[str, float]:
        batch = move_to_device(batch, self.device, non_blocking=self.device.type == "cuda")
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        paths = self.actor.paths(self.step) if hasattr(self.actor, "paths") and hasattr(self.actor, "run") \
            else [None]
        if len(paths) > 1:
            out = self._multi_path_backward(batch, paths)
        else:
            loss, stats = self._forward(lambda: self.actor(batch, self.step))
            self._backward(loss)
            off_path = getattr(self.actor, "off_path_parameters", None)
            if off_path is not None:
                for p in off_path():  # SPOS: no gradient, hence no momentum/weight decay, off the sampled path
                    p.grad = None
            out = {"loss": float(loss.detach())}
            out.update({k: float(v) for k, v in (stats or {}).items()})
        if self.cfg.grad_clip > 0:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            out["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return out

    def _forward(self, call: Callable[[], Tuple[Any, Dict[str, float]]]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """``call()`` under autocast, its loss checked (a scalar, finite).

        Under DDP the ranks exchange their losses before any backward (one all-reduce of ``world_size`` floats), so
        a non-finite loss on one rank stops every rank with the same :class:`FloatingPointError` instead of leaving
        the others waiting in the gradient all-reduce.
        """
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            loss, stats = call()
        if not torch.is_tensor(loss) or loss.dim() != 0:
            raise TypeError(f"{type(self.actor).__name__} must return a scalar loss tensor, got {loss!r}")
        if is_distributed():
            losses = torch.zeros(self.world_size, dtype=torch.float32, device=self.device)
            losses[self.rank] = loss.detach().float()
            dist.all_reduce(losses)  # each slot has one contributor: a NaN or inf stays as it is
            values = [float(v) for v in losses.cpu()]
            bad = [r for r, v in enumerate(values) if not np.isfinite(v)]
            if bad:
                if self.rank in bad:
                    log.error("step %d, rank %d: the loss is %s (stats: %s)", self.step, self.rank,
                              values[self.rank], stats)
                raise FloatingPointError(f"step {self.step}: the loss is not finite on rank(s) "
                                         f"{', '.join(map(str, bad))} of {self.world_size} (losses by rank: {values});"
                                         " every rank stops; lower the learning rate or check the data of this batch")
        elif not torch.isfinite(loss.detach()):
            raise FloatingPointError(f"step {self.step}: the loss is {loss.item()} (stats: {stats}); "
                                     "lower the learning rate or check the data of this batch")
        return loss, stats

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def _multi_path_backward(self, batch: Any, paths: List[Any]) -> Dict[str, float]:
        """FairNAS (Chu et al. 2021, Alg. 1): every path of the step on the same batch, gradients summed (one
        backward per path, so only one graph is alive at a time), the update made once by the caller. Parameters
        off every path keep no gradient. The logged loss and stats are the means over the paths."""
        self.actor.begin_step(self.step)
        off_all: Optional[Dict[int, torch.nn.Parameter]] = None
        sums: Dict[str, float] = {}
        no_sync = getattr(self.net, "no_sync", None)
        for k, path in enumerate(paths):
            last = k == len(paths) - 1
            with (no_sync() if no_sync is not None and not last else contextlib.nullcontext()):
                loss, stats = self._forward(lambda: self.actor.run(batch, path))
                self._backward(loss)
            off = {id(p): p for p in self.actor.off_path_parameters()}
            off_all = off if off_all is None else {i: p for i, p in off_all.items() if i in off}
            for name, value in [("loss", float(loss.detach()))] + [(n, float(v)) for n, v in (stats or {}).items()]:
                sums[name] = sums.get(name, 0.0) + value
        for p in (off_all or {}).values():
            p.grad = None
        return {name: value / len(paths) for name, value in sums.items()}

    def _base_lr(self) -> float:
        group = self.optimizer.param_groups[0]
        mult = group.get("lr_mult", 1.0) or 1.0
        return float(group["lr"]) / mult

    def train(self, stop_after: Optional[int] = None) -> Dict[str, Any]:
        """Train until ``cfg.steps`` optimizer steps are done (or, to simulate a kill, until ``stop_after``).

        Returns ``{"step", "epoch", "stats"}`` (the last logged row) and ``"checkpoint"`` (the last path written).
        Stopping at ``stop_after`` writes no extra checkpoint, like a killed run.
        """
        from tqdm import tqdm

        cfg = self.cfg
        if self._resume_path is not None:
            self._restore(self._resume_path)
            resume_step: Optional[int] = self.step
        else:
            seed_everything(cfg.seed + self.rank)
            resume_step = None
        csv_log = tb_log = None
        if self.main:
            atomic_write_json(self.out_dir / "config.json", {"config": self.config_dict, "train": to_dict(cfg),
                                                             "build_info": self.build_info})
            csv_log = CsvLogger(self.out_dir / "train_log.csv", resume_step=resume_step)
            if cfg.tensorboard:
                tb_log = TensorBoardLogger(self.out_dir / "tensorboard", purge_step=resume_step)
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (self.main and self.progress), dynamic_ncols=True,
                   desc="train")
        plain = self.main and plain_progress(self.progress)  # a line per log row where no bar is seen
        last_row: Dict[str, Any] = {}
        last_ckpt: Optional[Path] = None
        tick = time.perf_counter()
        timed = 0  # steps of this process since the last log row (sec_per_step)
        iterator = None
        try:
            while self.step < cfg.steps:
                if stop_after is not None and self.step >= stop_after:
                    break
                if iterator is None:
                    iterator = iter(self.data_loader_factory(self.epoch, self.batch_in_epoch))
                try:
                    batch = next(iterator)
                except StopIteration:
                    if self.batch_in_epoch == 0:
                        raise DataError(f"the data loader yields no batch for epoch {self.epoch} (is the dataset "
                                        "smaller than one batch with drop_last?)") from None
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    iterator = None
                    continue
                self.batch_in_epoch += 1
                lr = self._base_lr()
                stats = self._train_step(batch)
                self.step += 1
                for k, v in stats.items():
                    self._log_sums[k] = self._log_sums.get(k, 0.0) + v
                self._log_count += 1
                timed += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    last_row = {"step": self.step, "epoch": self.epoch, "lr": lr}
                    last_row.update({k: v / self._log_count for k, v in self._log_sums.items()})
                    last_row["sec_per_step"] = (now - tick) / max(timed, 1)
                    tick, timed = now, 0
                    self._log_sums, self._log_count = {}, 0
                    bar.set_postfix(loss=f"{last_row['loss']:.4f}", lr=f"{lr:.2e}")
                    if plain:
                        print(progress_line(last_row, cfg.steps), flush=True)
                    for logger in (csv_log, tb_log):
                        if logger is not None:
                            logger.log(last_row)
                every = cfg.checkpoint_every
                if (every and self.step % every == 0) or self.step == cfg.steps:
                    last_ckpt = self.save_checkpoint() or last_ckpt
        finally:
            bar.close()
            for logger in (csv_log, tb_log):
                if logger is not None:
                    logger.close()
        return {"step": self.step, "epoch": self.epoch, "stats": last_row, "checkpoint": last_ckpt}
