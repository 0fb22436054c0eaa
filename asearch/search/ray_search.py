"""Candidates scored in parallel on Ray: one Ray Tune run, one trial per candidate, generation-synchronous.

Choice (documented): **Ray Tune with a custom** :class:`GenerationSearcher`. The searcher wraps the
:class:`~asearch.search.evolution.EvolutionSearch` engine; ``suggest`` hands out the candidates of the current
generation and returns ``None`` (wait) once they are all out, until every trial of the generation has completed; only
then does it close the generation (top-k, state, outputs) and propose the next one, so evolution always sees whole
generations. ``FINISHED`` ends the run. Tune schedules trials on the cluster's resources (``cpus_per_trial``,
fractional ``gpus_per_trial``) with at most ``workers`` in flight and reuses the trial actors (``reuse_actors``), so a
worker process scores many candidates.

Loading once per worker: the fitness object sent to the trials is a light, picklable spec; its heavy state (the
supernet weights, the BN-recalibration batches, the validation frames) is built on first use in a worker and kept in a
module-level cache of that process keyed by the spec (checkpoint path + mtime), see
:func:`asearch.search.fitness.worker_cache`.

Ray start-up is kept cheap: a local Ray is started with ``num_cpus = workers × cpus_per_trial``, no dashboard, a
small object store and no log forwarding; ``address`` joins an existing cluster instead. Tune's own result loggers
are turned off (the engine writes every output), and Tune's experiment folder goes to ``<out>/ray_tune``.
"""
from __future__ import annotations

import collections
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from asearch.search.evolution import EvolutionSearch, RayConfig, SearchError

__all__ = ["GenerationSearcher", "init_ray", "run_tune", "score_trial", "enter_driver_dir", "check_resources",
           "resolve_resources", "AUTO_GPU_FRACTION"]

#: ``ray.gpus_per_trial: auto`` where CUDA is available: two candidates share a GPU (the paper search YAML's value)
AUTO_GPU_FRACTION = 0.5
log = logging.getLogger("asearch.search")

#: result keys that are not extras of the fitness
_TUNE_KEYS = {"suc", "seconds", "fitness_keys"}


def resolve_resources(config: RayConfig) -> RayConfig:
    """``config`` with numbers for what the machine decides (a copy; unchanged when nothing is to decide):

    * ``gpus_per_trial: auto`` -> :data:`AUTO_GPU_FRACTION` where ``torch.cuda.is_available()``, else 0;
    * for a local Ray (``address`` null), ``cpus_per_trial`` capped so that ``workers`` trials fit the machine's
      cores (``os.cpu_count() / workers``, at least 1 core's worth), and ``threads_per_trial`` at that many
      threads, with a warning; a joined cluster's cores are the cluster's business.
    """
    import dataclasses

    changes: Dict[str, Any] = {}
    if isinstance(config.gpus_per_trial, str):  # "auto" (RayConfig refuses any other string)
        try:
            import torch

            cuda = bool(torch.cuda.is_available())
        except Exception:  # torch without CUDA support
            cuda = False
        changes["gpus_per_trial"] = AUTO_GPU_FRACTION if cuda else 0.0
    if config.address is None:
        cores = os.cpu_count() or 1
        cap = float(max(1, cores // config.workers))
        if config.cpus_per_trial > cap:
            log.warning("ray.cpus_per_trial %g x ray.workers %d exceeds this machine's %d cores: cpus_per_trial "
                        "capped at %g", config.cpus_per_trial, config.workers, cores, cap)
            changes["cpus_per_trial"] = cap
        threads = max(1, int(min(cap, config.cpus_per_trial)))
        if config.threads_per_trial > threads:
            log.warning("ray.threads_per_trial %d capped at %d (the cores of one trial)", config.threads_per_trial,
                        threads)
            changes["threads_per_trial"] = threads
    return dataclasses.replace(config, **changes) if changes else config


def init_ray(config: RayConfig, num_gpus: Optional[int] = None) -> bool:
    """Start (or join, with ``config.address``) Ray quietly; returns ``True`` when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: Dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=True,
                                  logging_level=logging.ERROR, ignore_reinit_error=True)
    if config.address:
        ray.init(address=config.address, **kwargs)
    else:
        cpus = max(1, int(round(config.workers * config.cpus_per_trial)))
        gpus = num_gpus
        if gpus is None:
            try:
                import torch

                gpus = torch.cuda.device_count()
            except Exception:  # torch without CUDA support
                gpus = 0
        ray.init(num_cpus=cpus, num_gpus=gpus, object_store_memory=config.object_store_mb * 1024 * 1024, **kwargs)
    return True


def check_resources(per_trial: Mapping[str, float], cluster: Mapping[str, float]) -> None:
    """Refuse a trial that the cluster can never place (Tune would wait for it forever)."""
    from asearch.errors import ConfigError

    for key, name, option in (("cpu", "CPU", "ray.cpus_per_trial"), ("gpu", "GPU", "ray.gpus_per_trial")):
        want, have = float(per_trial.get(key, 0.0)), float(cluster.get(name, 0.0))
        if want > have:
            raise ConfigError(f"{option} is {want:g} but the Ray cluster has {have:g} {name}s"
                              + ("; set ray.gpus_per_trial: 0 to score on CPUs" if key == "gpu" else ""))


def score_trial(config: Dict[str, Any], fitness: Callable[..., Mapping[str, Any]], threads: int = 1) -> Dict[str, Any]:
    """Body of one Tune trial: score ``config['genome']`` (official form) with ``fitness`` in this worker."""
    import torch

    from search_spaces.genome import Genome

    torch.set_num_threads(max(1, int(threads)))
    genome = Genome.from_official(config["genome"])
    t0 = time.perf_counter()
    result = dict(fitness(genome))
    result.setdefault("seconds", time.perf_counter() - t0)
    extras = sorted(k for k in result if k not in _TUNE_KEYS)
    result["fitness_keys"] = ",".join(extras)
    return result


def enter_driver_dir(cwd: Optional[str]) -> None:
    """In a Tune trial, go back to the driver's working directory ``cwd`` when it exists on this node: Tune starts
    each trial in its own folder, and relative paths of the command line (``fitness.validation.root=data``) mean
    the driver's directory (on another node of a cluster they must be absolute anyway)."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)


def _trainable(config: Dict[str, Any], fitness: Any = None, threads: int = 1,
               cwd: Optional[str] = None) -> Dict[str, Any]:
    enter_driver_dir(cwd)
    return score_trial(config, fitness, threads)


try:  # the Searcher base class comes from Ray Tune; the module stays importable without it
    from ray.tune.search import Searcher as _SearcherBase
except Exception:  # pragma: no cover - ray[tune] is a dependency
    _SearcherBase = object  # type: ignore[misc,assignment]


class GenerationSearcher(_SearcherBase):  # type: ignore[misc,valid-type]
    """Ray Tune searcher that drives an :class:`EvolutionSearch` one whole generation at a time."""

    def __init__(self, engine: EvolutionSearch):
        super().__init__(metric="suc", mode="max")
        self.engine = engine
        self.queue: collections.deque = collections.deque()
        self.live: Dict[str, int] = {}
        self.error: Optional[str] = None

    def suggest(self, trial_id: str) -> Optional[Dict[str, Any]]:
        """The next candidate of the current generation, ``None`` while the generation's trials run, or FINISHED."""
        engine = self.engine
        if self.error is not None:
            return self.FINISHED
        if not self.queue and not self.live:
            while not engine.done and not engine.pending():
                engine.advance()
            if engine.done:
                return self.FINISHED
            self.queue.extend(engine.pending())
        if not self.queue:
            return None
        index, cand = self.queue.popleft()
        self.live[trial_id] = index
        return {"genome": cand.genome.to_official(), "generation": engine.generation, "index": index}

    def on_trial_complete(self, trial_id: str, result: Optional[Dict[str, Any]] = None, error: bool = False) -> None:
        """Record the trial's score in the engine (a failed trial stops the search)."""
        index = self.live.pop(trial_id, None)
        if index is None:
            return
        if error or not result or "suc" not in result:
            self.error = (f"scoring candidate {index} of generation {self.engine.generation} failed "
                          f"(Ray Tune trial {trial_id}); see the trial's error file under the ray_tune folder")
            self.queue.clear()
            return
        keys = [k for k in str(result.get("fitness_keys", "")).split(",") if k]
        clean = {"suc": result["suc"], "seconds": result.get("seconds", 0.0)}
        clean.update({k: result[k] for k in keys if k in result})
        self.engine.record(index, clean)

    def save(self, checkpoint_path: str) -> None:
        """Tune checkpoints searchers; the search state lives in the engine's folder, so write a pointer only."""
        with open(checkpoint_path, "w") as fh:
            json.dump({"search_state": str(self.engine.out_dir / "search_state.json")}, fh)

    def restore(self, checkpoint_path: str) -> None:
        """Restoring goes through ``asearch search --resume``, not through Tune."""
        raise SearchError("restore the search with `asearch search --resume`, not through Ray Tune")

    def __getstate__(self) -> Dict[str, Any]:
        # Tune pickles its config (search_alg included) into the experiment folder; the engine stays in this process.
        return {"_metric": self._metric, "_mode": self._mode, "error": self.error}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.engine = None  # type: ignore[assignment]
        self.queue, self.live = collections.deque(), {}


def run_tune(engine: EvolutionSearch, fitness: Any, config: RayConfig, storage: Optional[Path] = None) -> EvolutionSearch:
    """Drive ``engine`` to the end on Ray Tune (started or joined with :func:`init_ray`); returns the engine."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    import ray
    from ray import tune

    config = resolve_resources(config)
    started = init_ray(config)
    try:
        searcher = GenerationSearcher(engine)
        resources: Dict[str, float] = {"cpu": float(config.cpus_per_trial)}
        if config.gpus_per_trial > 0:
            resources["gpu"] = float(config.gpus_per_trial)
        check_resources(resources, ray.cluster_resources())
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, fitness=fitness, threads=config.threads_per_trial,
                                 cwd=os.getcwd()), resources)
        storage = Path(storage or engine.out_dir / "ray_tune").resolve()
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, reuse_actors=True,
                                        max_concurrent_trials=config.workers),
            run_config=tune.RunConfig(storage_path=str(storage), name=f"search_{int(time.time())}", verbose=0,
                                      log_to_file=False),
        )
        tuner.fit()
        if searcher.error is not None:
            raise SearchError(searcher.error)
        if not engine.done:
            # every trial was returned; close the last generation if Tune stopped right after it
            while not engine.done and not engine.pending():
                engine.advance()
        if not engine.done:
            raise SearchError(f"Ray Tune stopped before the search finished (generation {engine.generation}, "
                              f"{len(engine.pending())} candidates unscored); continue with --resume")
    finally:
        engine.close()
        if started:
            ray.shutdown()
    return engine
