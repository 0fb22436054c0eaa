"""The actor contract (the trainer knows nothing about losses); the seeded SPOS path sampler it takes lives with the
search spaces (:class:`search_spaces.paths.PathSampler`).

An actor turns a batch into ``(loss, stats)``: ``actor(batch, step) -> (loss tensor, {name: float})``. Concrete
actors split this into :meth:`BaseActor.forward_pass` (run the model) and :meth:`BaseActor.compute_losses`. Two
optional hooks serve single-path one-shot (SPOS) supernet training (paper 000 Alg. 1, line 17: ``a = Gamma(A)``):

- ``path(step) -> object``: the path ("genome") the model runs at this step. It must depend only on ``step`` (and
  a seed), so that every DDP rank draws the same path without communication: see :class:`PathSampler`.
- ``off_path_parameters() -> iterable of parameters``: the parameters that are not on the current path. The trainer
  sets their ``.grad`` to ``None`` after backward, so that neither momentum nor weight decay moves them (SPOS).
- ``paths(step) -> [path, ...]`` and ``run(batch, path) -> (loss, stats)``: where a step runs several paths
  (FairNAS strict fairness, :meth:`PathSampler.fair`), the trainer runs each on the same batch, sums their
  gradients and makes one update; a parameter gets no update only if it is off every one of the paths.

A retraining actor (fixed architecture) defines neither.
"""
from __future__ import annotations

import abc
from typing import Any, Dict, Iterable, Optional, Protocol, Tuple, runtime_checkable

import torch
from torch import nn

from search_spaces.paths import PathSampler  # re-exported: the trainer's users know it from here

__all__ = ["Actor", "BaseActor", "PathSampler"]


@runtime_checkable
class Actor(Protocol):
    """What the :class:`~asearch.training.trainer.Trainer` calls: ``actor(batch, step) -> (loss, stats)``.

    ``batch`` is whatever the data loader yields, already moved to the training device; ``loss`` is a scalar
    tensor to minimise; ``stats`` are plain floats for the logs (the trainer adds ``loss`` itself).
    """

    def __call__(self, batch: Any, step: int) -> Tuple[torch.Tensor, Dict[str, float]]:
        ...


class BaseActor(abc.ABC):
    """Convenience base: ``__call__`` = :meth:`forward_pass` then :meth:`compute_losses`, with an optional path.

    Subclasses implement ``forward_pass(batch, path) -> outputs`` and ``compute_losses(outputs, batch) -> (loss,
    stats)``; supernet actors also override :meth:`off_path_parameters` (it may use :attr:`current_path`). The
    model is called through ``self.model``; under DDP the trainer passes the wrapped model to :meth:`bind`.
    """

    def __init__(self, model: nn.Module, path_sampler: Optional[PathSampler] = None):
        self.model = model
        self.path_sampler = path_sampler
        self.current_path: Any = None

    def bind(self, model: nn.Module) -> None:
        """Call ``model`` from now on (the trainer hands over its DDP wrapper of the same network)."""
        self.model = model

    def path(self, step: int) -> Any:
        """The path of ``step`` (``None`` without a sampler: a fixed architecture)."""
        return None if self.path_sampler is None else self.path_sampler.sample(step)

    def paths(self, step: int) -> list:
        """Every path of ``step``: ``[path(step)]``, or the several paths of a FairNAS sampler (the trainer then
        calls :meth:`run` once per path and accumulates the gradients)."""
        if self.path_sampler is not None and self.path_sampler.group is not None:
            return self.path_sampler.paths(step)
        return [self.path(step)]

    def begin_step(self, step: int) -> None:
        """Per-step state before the step's path(s) run (nothing by default; e.g. a schedule of the loss)."""

    def run(self, batch: Any, path: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Loss and stats of ``batch`` along ``path`` (sets :attr:`current_path`)."""
        self.current_path = path
        outputs = self.forward_pass(batch, path)
        return self.compute_losses(outputs, batch)

    def off_path_parameters(self) -> Iterable[nn.Parameter]:
        """Parameters not on :attr:`current_path` (none by default)."""
        return ()

    @abc.abstractmethod
    def forward_pass(self, batch: Any, path: Any) -> Any:
        """Run the model on ``batch`` along ``path``; return whatever :meth:`compute_losses` needs."""

    @abc.abstractmethod
    def compute_losses(self, outputs: Any, batch: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Loss to minimise and float statistics from the model ``outputs`` and the ``batch`` targets."""

    def __call__(self, batch: Any, step: int) -> Tuple[torch.Tensor, Dict[str, float]]:
        self.begin_step(step)
        return self.run(batch, self.path(step))
