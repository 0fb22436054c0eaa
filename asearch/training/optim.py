"""Optimizers and per-step learning-rate schedules built from a :class:`~asearch.training.trainer.TrainConfig`.

Parameter groups come from name prefixes: ``lr_mult: {"backbone": 0.1}`` puts every parameter whose name is
``backbone`` or starts with ``backbone.`` in a group at 0.1x the learning rate (the official VLT_SCAR recipe trains
the backbone at 0.1x the rest). The longest matching prefix wins; a prefix that matches no parameter is an error
(a typo would otherwise silently train the backbone at full rate). A module may fence off some of its submodules
with a class attribute ``lr_mult_exempt`` (names relative to it): a prefix reaches the parameters inside a fenced
submodule only when it names that submodule or something inside it. The VLT network fences ``mixers`` and
``contrastive``, so in VLT_SCAR / VLT_TT (where it sits at ``backbone``) ``lr_mult: {backbone: 0.1}`` slows the SPOS
backbone but not the ModaMixers and the logit scale; ``backbone.mixers: 0.1`` slows those too.

Weight decay (CLIP / timm practice): ``weight_decay`` for every parameter but biases, the weights and biases of
normalisation layers (by module type: :data:`NORM_TYPES`) and the parameters a module lists in a class attribute
``no_weight_decay`` (the contrastive logit scale), which get 0. Parameters are grouped by (lr multiplier, weight
decay); with ``weight_decay`` 0 the decay split makes no extra group.

Schedules are per optimizer step: an optional linear warm-up from ``warmup_start * lr`` to ``lr`` over
``warmup_steps`` steps, then ``constant``, ``cosine`` (down to ``min_lr_ratio * lr``), ``step`` (times ``gamma`` at
each of ``milestones``, absolute step numbers) or ``log`` (log-linear from ``lr`` to ``min_lr_ratio * lr``, i.e.
SiamCAR's ``np.logspace`` decay made per step).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Set, Tuple

import torch
from torch import nn

from asearch.errors import ConfigError

__all__ = ["param_groups", "no_decay_names", "NORM_TYPES", "build_optimizer", "ScheduleFactor", "build_scheduler",
           "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "cosine", "step", "log")


#: module types whose parameters never get weight decay (BatchNorm/InstanceNorm via _NormBase, GroupNorm, LayerNorm,
#: LocalResponseNorm, and RMSNorm where torch has it)
NORM_TYPES: Tuple[type, ...] = tuple(t for t in (
    nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm, getattr(nn, "RMSNorm", None))
    if t is not None)


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _fences(model: nn.Module) -> List[str]:
    """Full names of the submodules fenced off by an ``lr_mult_exempt`` class attribute somewhere in ``model``."""
    out = []
    for mod_name, module in model.named_modules():
        for rel in getattr(module, "lr_mult_exempt", ()):
            out.append(f"{mod_name}.{rel}" if mod_name else rel)
    return out


def _reaches(name: str, prefix: str, fences: Sequence[str]) -> bool:
    """Whether the ``lr_mult`` prefix applies to parameter ``name``: it matches, and every fence around ``name``
    is named by the prefix (or lies above it)."""
    if not _matches(name, prefix):
        return False
    return all(_matches(prefix, fence) for fence in fences if _matches(name, fence))


def no_decay_names(model: nn.Module) -> Set[str]:
    """Names of the parameters that get no weight decay: biases, every parameter of a :data:`NORM_TYPES` module and
    those a module lists in its ``no_weight_decay`` class attribute (e.g. the contrastive logit scale)."""
    out: Set[str] = set()
    for mod_name, module in model.named_modules():
        skip = set(getattr(module, "no_weight_decay", ()))
        for pname, _ in module.named_parameters(recurse=False):
            if pname == "bias" or pname in skip or isinstance(module, NORM_TYPES):
                out.add(f"{mod_name}.{pname}" if mod_name else pname)
    return out


def param_groups(model: nn.Module, lr: float, lr_mult: Dict[str, float],
                 weight_decay: float = 0.0) -> List[Dict[str, Any]]:
    """Split the trainable parameters of ``model`` into groups by name prefix and weight decay.

    Returns a list of ``{"params", "lr", "lr_mult", "weight_decay", "name"}`` dicts: first the parameters matching
    no prefix (at ``lr``, ``lr_mult`` 1; left out when empty), then one group per prefix in the order given; with
    ``weight_decay`` > 0 each is followed by its ``"<name>.no_decay"`` group (weight decay 0, see
    :func:`no_decay_names`), left out when empty. Frozen parameters (``requires_grad=False``) are left out. Raises
    :class:`ConfigError` for a prefix that matches nothing.
    """
    prefixes = sorted(lr_mult, key=len, reverse=True)
    fences = _fences(model)
    no_decay = no_decay_names(model) if weight_decay > 0 else set()
    buckets: Dict[Tuple[str, bool], list] = {}
    all_names = []
    for name, param in model.named_parameters():
        all_names.append(name)
        if not param.requires_grad:
            continue
        owner = next((p for p in prefixes if _reaches(name, p, fences)), None)
        buckets.setdefault((owner or "", name in no_decay), []).append(param)
    for prefix in lr_mult:
        if not any(_matches(n, prefix) for n in all_names):
            tops = sorted({n.split(".")[0] for n in all_names})
            raise ConfigError(
                f"config key 'lr_mult.{prefix}': no parameter of the model is named '{prefix}' or '{prefix}.*' "
                f"(top-level modules: {', '.join(tops)})"
            )
    groups: List[Dict[str, Any]] = []
    for prefix, mult in [("", 1.0)] + [(p, float(m)) for p, m in lr_mult.items()]:
        for skip in (False, True):
            params = buckets.get((prefix, skip))
            if params:
                name = (prefix or "default") + (".no_decay" if skip else "")
                groups.append({"params": params, "lr": lr * mult, "lr_mult": mult,
                               "weight_decay": 0.0 if skip else float(weight_decay), "name": name})
    if not groups:
        raise ConfigError("the model has no trainable parameter (every parameter has requires_grad=False)")
    return groups


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """SGD (``momentum``, ``nesterov``, ``weight_decay``) or AdamW (``betas``, ``weight_decay``) per ``cfg.optimizer``.

    ``cfg`` is a :class:`~asearch.training.trainer.TrainConfig` (fields ``optimizer, lr, momentum, nesterov,
    betas, weight_decay, lr_mult``). Build it on the bare model, before any DDP wrapping (names then carry no
    ``module.`` prefix). Each group carries its own weight decay (see :func:`param_groups`).
    """
    groups = param_groups(model, cfg.lr, dict(cfg.lr_mult), cfg.weight_decay)
    kind = cfg.optimizer.lower()
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    raise ConfigError(f"config key 'optimizer': unknown optimizer {cfg.optimizer!r} (choose one of {', '.join(OPTIMIZERS)})")


class ScheduleFactor:
    """Multiplier of the base learning rate at optimizer step ``t`` (``t = 0`` is the first update).

    Warm-up (``t < warmup_steps``): ``warmup_start + (1 - warmup_start) * t / warmup_steps``. After it, with
    ``u = (t - warmup_steps) / (total_steps - warmup_steps)`` in [0, 1] and ``r = min_lr_ratio``:
    ``constant`` 1; ``cosine`` ``r + (1 - r) * (1 + cos(pi * u)) / 2``; ``log`` ``r ** u``; ``step``
    ``gamma ** (number of milestones <= t)``. A plain object (not a lambda) so that ``LambdaLR.state_dict`` saves it.
    """

    def __init__(self, schedule: str, total_steps: int, warmup_steps: int = 0, warmup_start: float = 0.1,
                 min_lr_ratio: float = 0.0, milestones: Sequence[int] = (), gamma: float = 0.1):
        if schedule not in SCHEDULES:
            raise ConfigError(f"config key 'schedule': unknown schedule {schedule!r} (choose one of {', '.join(SCHEDULES)})")
        if total_steps < 1:
            raise ConfigError(f"config key 'steps' must be >= 1, got {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ConfigError(f"config key 'warmup_steps' must be in [0, steps={total_steps}], got {warmup_steps}")
        if schedule == "log" and not min_lr_ratio > 0:
            raise ConfigError(f"config key 'min_lr_ratio' must be > 0 for the 'log' schedule, got {min_lr_ratio}")
        self.schedule = schedule
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = float(warmup_start)
        self.min_lr_ratio = float(min_lr_ratio)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)

    def __call__(self, t: int) -> float:
        if t < self.warmup_steps:
            return self.warmup_start + (1.0 - self.warmup_start) * t / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "step":
            return self.gamma ** sum(1 for m in self.milestones if t >= m)
        span = max(self.total_steps - self.warmup_steps, 1)
        u = min(max((t - self.warmup_steps) / span, 0.0), 1.0)
        r = self.min_lr_ratio
        if self.schedule == "cosine":
            return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * u))
        return r ** u  # log: log-linear between 1 and r


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Any) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step :class:`LambdaLR` with a :class:`ScheduleFactor` from ``cfg`` (fields ``schedule, steps,
    warmup_steps, warmup_start, min_lr_ratio, milestones, gamma``); call ``.step()`` after every optimizer step."""
    factor = ScheduleFactor(cfg.schedule, cfg.steps, cfg.warmup_steps, cfg.warmup_start, cfg.min_lr_ratio,
                            cfg.milestones, cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
