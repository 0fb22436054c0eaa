"""The actor contract (the trainer knows nothing about losses) and the seeded SPOS path sampler.

An actor turns a batch into ``(loss, stats)``: ``actor(batch, step) -> (loss tensor, {name: float})``. Concrete
actors split this into :meth:`BaseActor.forward_pass` (run the model) and :meth:`BaseActor.compute_losses`. Two
optional hooks serve single-path one-shot (SPOS) supernet training (paper 000 Alg. 1, line 17: ``a = Gamma(A)``):

- ``path(step) -> object``: the path ("genome") the model runs at this step. It must depend only on ``step`` (and
  a seed), so that every DDP rank draws the same path without communication: see :class:`PathSampler`.
- ``off_path_parameters() -> iterable of parameters``: the parameters that are not on the current path. The trainer
  sets their ``.grad`` to ``None`` after backward, so that neither momentum nor weight decay moves them (SPOS).

A retraining actor (fixed architecture) defines neither.
"""
from __future__ import annotations

import abc
import random
from typing import Any, Callable, Dict, Iterable, Optional, Protocol, Sequence, Tuple, runtime_checkable

import torch
from torch import nn

from asearch.training.distributed import derive_seed

__all__ = ["Actor", "BaseActor", "PathSampler"]


@runtime_checkable
class Actor(Protocol):
    """What the :class:`~asearch.training.trainer.Trainer` calls: ``actor(batch, step) -> (loss, stats)``.

    ``batch`` is whatever the data loader yields, already moved to the training device; ``loss`` is a scalar
    tensor to minimise; ``stats`` are plain floats for the logs (the trainer adds ``loss`` itself).
    """

    def __call__(self, batch: Any, step: int) -> Tuple[torch.Tensor, Dict[str, float]]:
        ...


class PathSampler:
    """Draws the SPOS path of each step from ``(seed, step)`` alone: the same path on every rank and after resume.

    ``draw(seed) -> path`` maps an integer seed to a path; :meth:`from_space` uses a search space's
    ``random(seed)`` and :meth:`uniform` draws one choice index per gene. ``sample(step)`` calls
    ``draw(derive_seed(seed, step))``, so no state needs saving.
    """

    def __init__(self, draw: Callable[[int], Any], seed: int = 0):
        self.draw = draw
        self.seed = int(seed)

    @classmethod
    def from_space(cls, space: Any, seed: int = 0) -> "PathSampler":
        """Sampler over a search space object that has ``random(seed) -> genome``."""
        return cls(space.random, seed)

    @classmethod
    def uniform(cls, num_choices: Sequence[int], seed: int = 0) -> "PathSampler":
        """Sampler of genomes ``[c_0, c_1, ...]`` with ``c_i`` uniform in ``range(num_choices[i])``."""
        counts = [int(n) for n in num_choices]
        if any(n < 1 for n in counts):
            raise ValueError(f"PathSampler.uniform: every gene needs at least one choice, got {counts}")

        def _draw(s: int) -> list:
            rng = random.Random(s)
            return [rng.randrange(n) for n in counts]

        return cls(_draw, seed)

    def sample(self, step: int) -> Any:
        """The path of optimizer step ``step``."""
        return self.draw(derive_seed(self.seed, step))


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
        self.current_path = self.path(step)
        outputs = self.forward_pass(batch, self.current_path)
        return self.compute_losses(outputs, batch)
