"""Evolutionary architecture search (paper 000 Eq. 6, SPOS search): the engine, its operators and its config.

Eq. 6: ``a* = argmax_{a in A} SUC_val(N(a, W_A(a)))``: every candidate ``a`` is scored with the supernet's shared
weights ``W_A(a)`` by its success score on validation videos, and evolution keeps the best.

Generation ``g`` (SPOS defaults in :class:`EvolutionConfig`):

1. score every candidate of the population (in parallel on Ray, or in-process);
2. top-k = the ``topk`` best of (previous top-k ∪ this generation), ties broken by age (earlier first);
3. the next population: ``mutations`` children of random top-k parents (every declared gene, the search-mixer genes
   included, redrawn with probability ``mutation_prob``), ``crossovers`` children of two random top-k parents (each
   gene from either parent), then random genomes up to ``population``. A child already scored or proposed, or over
   ``max_flops``/``max_params`` (exact space cost), is rejected before scoring; each kind has a bounded number of
   tries (``max_tries`` × wanted).

``mode: random`` is the baseline with the same budget: every generation is ``population`` fresh random genomes.

The engine is a small state machine (:meth:`EvolutionSearch.pending`, :meth:`~EvolutionSearch.record`,
:meth:`~EvolutionSearch.advance`) so that an in-process loop (:func:`run_local`) and the Ray Tune searcher
(:mod:`asearch.search.ray_search`) drive it the same way. All randomness comes from one seeded
``numpy.random.Generator`` whose state is saved with every generation: the same seed gives the same search, and a
resumed search continues the same sequence.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from asearch.config import to_dict
from asearch.errors import ASearchError, ConfigError
from asearch.io import atomic_write_json, atomic_write_text
from asearch.runtime import plain_progress
from asearch.search.architecture import Architecture, ValidationRecord, save_architecture
from asearch.search.fitness import FitnessConfig
from asearch.search.reeval import FinalConfig
from asearch.search.state import Candidate, CandidateRecord, Journal, SearchState, load_state, save_state
from search_spaces.genome import Genome

__all__ = ["EvolutionConfig", "RayConfig", "SearchConfig", "EvolutionSearch", "SearchError", "run_local",
           "select_topk", "CSV_COLUMNS"]

MODES = ("evolution", "random")
CSV_COLUMNS = ("generation", "index", "origin", "mode", "suc", "flops", "params", "seconds", "genome")


class SearchError(ASearchError, RuntimeError):
    """A search cannot go on (a candidate's scoring failed, a run folder is in the way)."""


@dataclass
class EvolutionConfig:
    """Evolution hyper-parameters (SPOS defaults)."""

    mode: str = "evolution"
    population: int = 50
    generations: int = 20
    topk: int = 10
    mutations: int = 25
    crossovers: int = 25
    mutation_prob: float = 0.1
    max_flops: Optional[int] = None
    max_params: Optional[int] = None
    max_tries: int = 10

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"evolution.mode: {self.mode!r} is not one of {list(MODES)}")
        for name in ("population", "generations", "topk", "max_tries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"evolution.{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("mutations", "crossovers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"evolution.{name}: must be >= 0, got {getattr(self, name)}")
        if self.mutations + self.crossovers > self.population:
            raise ConfigError(f"evolution.mutations + evolution.crossovers ({self.mutations} + {self.crossovers}) "
                              f"exceeds evolution.population ({self.population})")
        if not 0.0 <= self.mutation_prob <= 1.0:
            raise ConfigError(f"evolution.mutation_prob: must be in [0, 1], got {self.mutation_prob}")
        for name in ("max_flops", "max_params"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ConfigError(f"evolution.{name}: must be > 0 or null, got {v}")


@dataclass
class RayConfig:
    """Where and how candidates are scored.

    ``backend``: ``tune`` (Ray Tune with the generation-synchronous searcher, default) or ``local`` (in-process,
    one candidate after another, no Ray). ``address``: ``null`` starts a local Ray with ``workers`` × ``cpus_per_trial``
    CPUs; an address (``auto``, ``ray://host:10001``, ``host:6379``) joins an existing cluster. ``workers``: trials
    in flight at once (each worker loads the supernet once and keeps it). ``gpus_per_trial``: a number, or ``auto``
    (default): 0.5 (two candidates share a GPU) where CUDA is available, 0 where not; ``cpus_per_trial`` is capped at
    the machine's cores for a local Ray (:func:`asearch.search.ray_search.resolve_resources`).
    """

    backend: str = "tune"
    address: Optional[str] = None
    workers: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: Union[float, str] = "auto"
    object_store_mb: int = 128
    threads_per_trial: int = 1

    def __post_init__(self) -> None:
        if self.backend not in ("tune", "local"):
            raise ConfigError(f"ray.backend: {self.backend!r} is not one of ['tune', 'local']")
        if self.workers < 1:
            raise ConfigError(f"ray.workers: must be >= 1, got {self.workers}")
        if isinstance(self.gpus_per_trial, str) and self.gpus_per_trial != "auto":
            raise ConfigError(f"ray.gpus_per_trial: a number >= 0 or 'auto', got {self.gpus_per_trial!r}")
        if self.cpus_per_trial <= 0 or (not isinstance(self.gpus_per_trial, str) and self.gpus_per_trial < 0):
            raise ConfigError("ray.cpus_per_trial must be > 0 and ray.gpus_per_trial >= 0 "
                              f"(got {self.cpus_per_trial}, {self.gpus_per_trial})")
        if self.object_store_mb < 64:
            raise ConfigError(f"ray.object_store_mb: at least 64 (Ray's minimum is ~75 MB), got {self.object_store_mb}")
        if self.threads_per_trial < 1:
            raise ConfigError(f"ray.threads_per_trial: must be >= 1, got {self.threads_per_trial}")


@dataclass
class SearchConfig:
    """The whole ``asearch search`` config (``experiments/vlt_scar/search.yaml``); ``final``: what runs after the
    last generation (``final.reeval``, :mod:`asearch.search.reeval`)."""

    seed: int = 0
    device: str = "auto"
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    final: FinalConfig = field(default_factory=FinalConfig)


def select_topk(records: Sequence[CandidateRecord], k: int) -> List[CandidateRecord]:
    """The ``k`` best records by SUC (descending), ties broken by (generation, index): deterministic."""
    return sorted(records, key=lambda r: (-r.suc, r.generation, r.index))[:k]


CostFn = Callable[[Genome], Mapping[str, Any]]


class EvolutionSearch:
    """Generation-synchronous evolutionary (or random) search over a search space, with atomic state and outputs.

    ``space`` provides ``random(rng)``, ``mutate(genome, prob, rng)``, ``crossover(a, b, rng)``, ``validate`` and
    ``cost(genome) -> {"flops", "params"}`` (:class:`search_spaces.VLTSpace`). ``validation`` (protocol fields of
    :class:`ValidationRecord` without ``suc``) and ``supernet_sha256`` go into ``best.json``. ``snapshot`` is the
    config the search must keep on ``--resume`` (a different one is refused). ``progress``: tqdm bar; ``plot``:
    redraw ``search_progress.png`` after every generation. ``model_cost(flops, params)``, when given, is the whole
    model's cost of a candidate whose space counts only part of it (VLT_OST: the mixers; see
    :mod:`trackers.models.ost_cost`), stored as ``model_cost`` in ``best.json``.
    """

    def __init__(self, space: Any, config: EvolutionConfig, out_dir: Union[str, Path], seed: int = 0, *,
                 validation: Optional[Mapping[str, Any]] = None, supernet_sha256: Optional[str] = None,
                 snapshot: Optional[Mapping[str, Any]] = None, progress: bool = True, plot: bool = True,
                 model_cost: Optional[Callable[[int, int], Optional[Dict[str, Any]]]] = None):
        self.space = space
        self.model_cost = model_cost
        self.config = config
        self.out_dir = Path(out_dir)
        self.seed = int(seed)
        self.validation = dict(validation) if validation else None
        self.supernet_sha256 = supernet_sha256
        self.snapshot = dict(snapshot) if snapshot is not None else {"seed": self.seed,
                                                                     "evolution": to_dict(config)}
        self.progress = progress
        self.plain = plain_progress(progress)  # a line per candidate where no bar is seen
        self.plot = plot
        self.journal = Journal(self.out_dir)
        self.state: Optional[SearchState] = None
        self.rng: Optional[np.random.Generator] = None
        self._scored: Dict[int, CandidateRecord] = {}
        self._bar = None
        self._cost_cache: Dict[Genome, Tuple[Optional[int], Optional[int]]] = {}

    # ----- lifecycle -----------------------------------------------------------------------------------------------
    def start(self, resume: bool = False) -> "EvolutionSearch":
        """Begin a fresh search in ``out_dir`` or (``resume``) continue the one saved there."""
        existing = load_state(self.out_dir)
        if resume:
            if existing is None:
                raise SearchError(f"--resume: no search state in {self.out_dir} (expected {self.out_dir}/"
                                  "search_state.json); start without --resume")
            self._check_snapshot(existing)
            self.state = existing
            self.rng = np.random.default_rng()
            self.rng.bit_generator.state = existing.rng_state
            if not existing.done:
                pop = {(i, c.genome) for i, c in enumerate(existing.population)}
                for rec in self.journal.read():
                    if rec.generation == existing.generation and (rec.index, rec.genome) in pop:
                        self._scored[rec.index] = rec
        else:
            if existing is not None:
                raise SearchError(f"{self.out_dir} already holds a search (search_state.json); pass --resume to "
                                  "continue it or choose another --out")
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.journal.clear()
            self.rng = np.random.default_rng(self.seed)
            self.state = SearchState(config=self.snapshot, mode=self.config.mode, seed=self.seed)
            self.state.population = self._propose()
            self.state.rng_state = self.rng.bit_generator.state
            if not self.state.population:
                raise SearchError("the first generation is empty: no genome of the space satisfies "
                                  f"max_flops={self.config.max_flops}, max_params={self.config.max_params}")
            save_state(self.state, self.out_dir)
        self._open_bar()
        return self

    def _check_snapshot(self, existing: SearchState) -> None:
        old, new = _flatten(existing.config), _flatten(self.snapshot)
        for key in sorted(set(old) | set(new)):
            if old.get(key, "<unset>") != new.get(key, "<unset>"):
                raise ConfigError(f"--resume: config key '{key}' differs from the saved search "
                                  f"({old.get(key, '<unset>')!r} saved, {new.get(key, '<unset>')!r} now); a resumed "
                                  "search must keep its config")

    @property
    def done(self) -> bool:
        """Whether every generation has been scored."""
        return bool(self.state is not None and self.state.done)

    @property
    def generation(self) -> int:
        """The generation in progress (or the last one when done)."""
        return self._require().generation

    def _require(self) -> SearchState:
        if self.state is None:
            raise SearchError("EvolutionSearch.start() must be called first")
        return self.state

    # ----- the step protocol ---------------------------------------------------------------------------------------
    def pending(self) -> List[Tuple[int, Candidate]]:
        """Candidates of the current generation not scored yet, as ``(index, candidate)``."""
        state = self._require()
        if state.done:
            return []
        return [(i, c) for i, c in enumerate(state.population) if i not in self._scored]

    def record(self, index: int, result: Mapping[str, Any]) -> CandidateRecord:
        """Store the score of candidate ``index`` of the current generation (``result['suc']`` in [0, 1],
        optional ``seconds`` and other scalar extras); appended to the journal at once."""
        state = self._require()
        if state.done or not 0 <= index < len(state.population):
            raise SearchError(f"record: no candidate {index} in generation {state.generation}")
        if index in self._scored:
            raise SearchError(f"record: candidate {index} of generation {state.generation} was already scored")
        suc = result.get("suc")
        if isinstance(suc, bool) or not isinstance(suc, (int, float)) or not math.isfinite(suc):
            raise SearchError(f"fitness returned no finite 'suc' for candidate {index}: {dict(result)!r}")
        cand = state.population[index]
        extra = {k: v for k, v in result.items() if k not in ("suc", "seconds") and _is_scalar(v)}
        rec = CandidateRecord(genome=cand.genome, generation=state.generation, index=index, origin=cand.origin,
                              mode=self.config.mode, suc=float(suc), flops=cand.flops, params=cand.params,
                              seconds=float(result.get("seconds", 0.0)), extra=extra)
        self.journal.append(rec)
        self._scored[index] = rec
        best = max([r.suc for r in state.topk] + [r.suc for r in self._scored.values()])
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(gen=state.generation, best_suc=f"{best:.4f}")
        if self.plain:
            total = self.config.generations * self.config.population
            print(f"search ({self.config.mode}) candidate {len(state.records) + len(self._scored)}/{total} "
                  f"generation {state.generation} SUC {rec.suc:.4f} best {best:.4f} {rec.seconds:.1f} s", flush=True)
        return rec

    def generation_complete(self) -> bool:
        """Whether every candidate of the current generation has a score."""
        return not self.pending()

    def advance(self) -> bool:
        """Close the current generation (top-k, outputs, state) and propose the next; ``False`` when the search is done."""
        state = self._require()
        if state.done:
            return False
        missing = self.pending()
        if missing:
            raise SearchError(f"advance: {len(missing)} candidates of generation {state.generation} are not scored")
        new = [self._scored[i] for i in sorted(self._scored)]
        state.records.extend(new)
        state.topk = select_topk(list(state.topk) + new, self.config.topk)
        self._scored = {}
        finished = state.generation
        self.write_outputs(finished)
        if finished + 1 >= self.config.generations:
            state.done = True
            state.population = []
        else:
            state.population = self._propose()
            if state.population:
                state.generation = finished + 1
            else:  # the space (under the limits) is exhausted
                state.done = True
        state.rng_state = self.rng.bit_generator.state
        save_state(state, self.out_dir)
        if state.done:
            self.close()
        return not state.done

    def close(self) -> None:
        """Close the progress bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ----- proposals -----------------------------------------------------------------------------------------------
    def _cost(self, genome: Genome) -> Tuple[Optional[int], Optional[int]]:
        if genome not in self._cost_cache:
            if hasattr(self.space, "cost"):
                c = self.space.cost(genome)
                self._cost_cache[genome] = (int(c["flops"]), int(c["params"]))
            else:
                self._cost_cache[genome] = (None, None)
        return self._cost_cache[genome]

    def _within_limits(self, flops: Optional[int], params: Optional[int]) -> bool:
        cfg = self.config
        if cfg.max_flops is not None and (flops is None or flops > cfg.max_flops):
            return False
        if cfg.max_params is not None and (params is None or params > cfg.max_params):
            return False
        return True

    def _propose(self) -> List[Candidate]:
        """The next population (SPOS: mutations and crossovers of the top-k, then random), deduplicated and
        filtered by the cost limits."""
        state = self._require()
        cfg, rng = self.config, self.rng
        seen = {r.genome for r in state.records}
        rejected: set = set()
        out: List[Candidate] = []

        def offer(genome: Genome, origin: str) -> None:
            if genome in seen or genome in rejected:
                return
            flops, params = self._cost(genome)
            if not self._within_limits(flops, params):
                rejected.add(genome)
                return
            seen.add(genome)
            out.append(Candidate(genome, origin, flops, params))

        parents = [r.genome for r in state.topk]
        if cfg.mode == "evolution" and parents:
            tries = 0
            while len(out) < cfg.mutations and tries < cfg.mutations * cfg.max_tries:
                tries += 1
                parent = parents[int(rng.integers(len(parents)))]
                offer(self.space.mutate(parent, cfg.mutation_prob, rng), "mutation")
            target = len(out) + cfg.crossovers
            tries = 0
            while len(out) < target and tries < cfg.crossovers * cfg.max_tries:
                tries += 1
                a = parents[int(rng.integers(len(parents)))]
                b = parents[int(rng.integers(len(parents)))]
                offer(self.space.crossover(a, b, rng), "crossover")
        tries = 0
        wanted = cfg.population - len(out)
        while len(out) < cfg.population and tries < max(wanted, 1) * cfg.max_tries:
            tries += 1
            offer(self.space.random(rng), "random")
        return out

    # ----- outputs -------------------------------------------------------------------------------------------------
    def _open_bar(self) -> None:
        if not self.progress or self.done:
            return
        from tqdm.auto import tqdm

        state = self._require()
        total = self.config.generations * self.config.population
        self._bar = tqdm(total=total, initial=len(state.records) + len(self._scored), desc=f"search ({state.mode})",
                         unit="cand", dynamic_ncols=True)

    def best(self) -> Optional[CandidateRecord]:
        """The best scored candidate so far."""
        state = self._require()
        return state.topk[0] if state.topk else None

    def write_outputs(self, generation: int) -> None:
        """``candidates.csv``, ``topk_gen{g}.json``, ``search_progress.png`` and ``best.json`` (all atomic)."""
        state = self._require()
        atomic_write_text(self.out_dir / "candidates.csv", records_to_csv(state.records))
        atomic_write_json(self.out_dir / f"topk_gen{generation}.json", {
            "generation": generation, "mode": state.mode,
            "topk": [{"rank": i + 1, "genome": r.genome.to_official(), "suc": r.suc, "flops": r.flops,
                      "params": r.params, "generation": r.generation, "index": r.index}
                     for i, r in enumerate(state.topk)]})
        if self.plot:
            from asearch.search.plots import plot_progress

            plot_progress(state.records, self.out_dir / "search_progress.png")
        best = self.best()
        if best is not None:
            save_architecture(self.architecture(best), self.out_dir / "best.json")

    def architecture(self, record: CandidateRecord) -> Architecture:
        """The architecture JSON content of a scored candidate (validation protocol and supernet hash attached)."""
        validation = None
        if self.validation:
            std = record.extra.get("suc_std")
            validation = ValidationRecord(suc=min(max(record.suc, 0.0), 1.0), **self.validation,
                                          suc_std=float(std) if isinstance(std, (int, float)) else None)
        arch = Architecture(genome=record.genome, space=self.space, flops=record.flops, params=record.params,
                            validation=validation, supernet_sha256=self.supernet_sha256, seed=self.seed)
        if arch.flops is None and hasattr(self.space, "cost"):
            arch.with_cost()
        if self.model_cost is not None and arch.flops is not None and arch.params is not None:
            arch.model_cost = self.model_cost(int(arch.flops), int(arch.params))
        return arch


def records_to_csv(records: Sequence[CandidateRecord]) -> str:
    """CSV text of scored candidates (sorted by generation, index); extra scalar metrics become extra columns."""
    extras = sorted({k for r in records for k in r.extra})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(CSV_COLUMNS) + extras)
    for r in sorted(records, key=lambda r: (r.generation, r.index)):
        w.writerow([r.generation, r.index, r.origin, r.mode, repr(float(r.suc)),
                    "" if r.flops is None else r.flops, "" if r.params is None else r.params,
                    f"{r.seconds:.4f}", json.dumps(r.genome.to_official(), separators=(",", ":"))]
                   + [r.extra.get(k, "") for k in extras])
    return buf.getvalue()


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


FitnessFn = Callable[[Genome], Mapping[str, Any]]


def run_local(engine: EvolutionSearch, fitness: FitnessFn) -> EvolutionSearch:
    """Drive ``engine`` to the end in this process, one candidate after another (no Ray)."""
    try:
        while not engine.done:
            for index, cand in engine.pending():
                t0 = time.perf_counter()
                result = dict(fitness(cand.genome))
                result.setdefault("seconds", time.perf_counter() - t0)
                engine.record(index, result)
            engine.advance()
    finally:
        engine.close()
    return engine
