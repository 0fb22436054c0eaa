"""Which path of a search space each training step runs: the seeded SPOS path sampler (paper 000 Alg. 1, line 17:
``a = Gamma(A)``), and FairNAS strict fairness.

A path depends only on ``(seed, step)``, so every DDP rank draws the same path without communication and a resumed
run draws the paths an unbroken one would. The trainer and the tracker families' actors use it
(:mod:`asearch.training.actor`); it knows nothing of either.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Optional, Sequence

from asearch.runtime import derive_seed

__all__ = ["PathSampler"]


class PathSampler:
    """Draws the SPOS path of each step from ``(seed, step)`` alone: the same path on every rank and after resume.

    ``draw(seed) -> path`` maps an integer seed to a path; :meth:`from_space` uses a search space's
    ``random(seed)`` and :meth:`uniform` draws one choice index per gene. ``sample(step)`` calls
    ``draw(derive_seed(seed, step))``, so no state needs saving.

    ``group(seed) -> [path, ...]`` instead (:meth:`fair`) makes every optimizer step run several paths:
    :meth:`paths` returns them, and the trainer accumulates their gradients into one update (FairNAS).
    """

    def __init__(self, draw: Optional[Callable[[int], Any]] = None, seed: int = 0,
                 group: Optional[Callable[[int], Sequence[Any]]] = None):
        if (draw is None) == (group is None):
            raise ValueError("PathSampler: give exactly one of draw (one path per step) and group (several)")
        self.draw = draw
        self.group = group
        self.seed = int(seed)

    @classmethod
    def from_space(cls, space: Any, seed: int = 0, sampling: str = "uniform") -> "PathSampler":
        """Sampler over a search space object: ``sampling`` ``uniform`` (SPOS, its ``random(seed)``) or ``fair``
        (:meth:`fair`, its ``fair_paths(seed)``)."""
        if sampling == "uniform":
            return cls(space.random, seed)
        if sampling == "fair":
            return cls.fair(space, seed)
        raise ValueError(f"PathSampler: sampling must be 'uniform' or 'fair', got {sampling!r}")

    @classmethod
    def fair(cls, space: Any, seed: int = 0) -> "PathSampler":
        """FairNAS strict fairness (Chu et al. 2021, Alg. 1): each step runs the ``m`` paths of
        ``space.fair_paths(derive_seed(seed, step))``, in which every gene takes each of its ``m`` choices once,
        so every choice block is trained on every step and all get the same number of updates."""
        return cls(seed=seed, group=space.fair_paths)

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

    @property
    def paths_per_step(self) -> int:
        """How many paths one optimizer step runs (1 for SPOS; ``m`` for :meth:`fair`)."""
        return 1 if self.group is None else len(self.group(derive_seed(self.seed, 0)))

    def sample(self, step: int) -> Any:
        """The path of optimizer step ``step`` (one-path samplers only: see :meth:`paths`)."""
        if self.draw is None:
            raise ValueError("PathSampler.sample: this sampler runs several paths per step; use paths(step)")
        return self.draw(derive_seed(self.seed, step))

    def paths(self, step: int) -> list:
        """Every path of optimizer step ``step``, in the order they run."""
        if self.draw is not None:
            return [self.sample(step)]
        return list(self.group(derive_seed(self.seed, step)))
