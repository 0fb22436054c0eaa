"""The Ray Tune path: 2 local workers, a toy fitness; same results as in-process, state loaded once per worker.

One Ray session for the module (ray.init is slow); kept to a single small search.
"""
import csv
import os
import sys
import uuid

import pytest

ray = pytest.importorskip("ray")

from asearch.search.evolution import EvolutionConfig, EvolutionSearch, RayConfig, run_local  # noqa: E402
from asearch.search.fitness import worker_cache  # noqa: E402
from asearch.search.ray_search import init_ray, run_tune  # noqa: E402
from search_spaces import build_space  # noqa: E402


class ToyFitness:
    """Picklable fitness whose 'heavy' state is built through the per-process worker cache."""

    def __init__(self, key):
        self.key = key

    def __call__(self, genome):
        state = worker_cache(("toy", self.key), lambda: {"token": uuid.uuid4().hex})  # one token per build
        return {"suc": sum(v == 3 for v in genome.genes) / len(genome.genes), "token": state["token"],
                "pid": os.getpid()}


@pytest.fixture(scope="module")
def ray_session():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder
    started = init_ray(RayConfig(workers=2, object_store_mb=80))
    yield
    if started:
        ray.shutdown()


def _rows(path):
    with open(path) as fh:
        return [{k: v for k, v in r.items() if k not in ("seconds", "pid", "token")} for r in csv.DictReader(fh)]


def test_tune_two_workers_matches_local(tmp_path, ray_session):
    space = build_space("vlt")
    cfg = EvolutionConfig(population=6, generations=2, topk=2, mutations=2, crossovers=2)
    local = run_local(EvolutionSearch(space, cfg, tmp_path / "local", seed=4, progress=False, plot=False).start(),
                      ToyFitness("k"))
    engine = EvolutionSearch(space, cfg, tmp_path / "tune", seed=4, progress=False, plot=False).start()
    run_tune(engine, ToyFitness("k"), RayConfig(workers=2, object_store_mb=80))
    assert engine.done and len(engine.state.records) == 12
    assert _rows(tmp_path / "tune/candidates.csv") == _rows(tmp_path / "local/candidates.csv")
    pids = {r.extra["pid"] for r in engine.state.records}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # scored in the 2 reused worker processes
    tokens = {(r.extra["pid"], r.extra["token"]) for r in engine.state.records}
    assert len(tokens) == len(pids)  # heavy state built once per worker process, not once per trial
    assert engine.best().suc == local.best().suc


def test_resources_the_cluster_cannot_place_are_refused():
    from asearch.errors import ConfigError
    from asearch.search.ray_search import check_resources

    check_resources({"cpu": 1.0}, {"CPU": 2.0})
    with pytest.raises(ConfigError, match=r"ray.gpus_per_trial is 0.5 but the Ray cluster has 0 GPUs"):
        check_resources({"cpu": 1.0, "gpu": 0.5}, {"CPU": 2.0})
    with pytest.raises(ConfigError, match="ray.cpus_per_trial is 4"):
        check_resources({"cpu": 4.0}, {"CPU": 2.0})


def test_searcher_is_generation_synchronous(tmp_path):
    from asearch.search.ray_search import GenerationSearcher

    cfg = EvolutionConfig(population=3, generations=2, topk=2, mutations=1, crossovers=1)
    engine = EvolutionSearch(build_space("vlt"), cfg, tmp_path, seed=0, progress=False, plot=False).start()
    s = GenerationSearcher(engine)
    first = [s.suggest(f"t{i}") for i in range(3)]
    assert [c["index"] for c in first] == [0, 1, 2] and {c["generation"] for c in first} == {0}
    assert s.suggest("t3") is None  # the generation is out: wait
    s.on_trial_complete("t0", {"suc": 0.5, "seconds": 1.0, "fitness_keys": ""})
    s.on_trial_complete("t2", {"suc": 0.7, "seconds": 1.0, "fitness_keys": ""})
    assert s.suggest("t4") is None and engine.generation == 0  # one trial still running
    s.on_trial_complete("t1", {"suc": 0.6, "seconds": 1.0, "fitness_keys": ""})
    nxt = s.suggest("t5")
    assert nxt["generation"] == 1 and engine.generation == 1
    assert [r.suc for r in engine.state.topk] == [0.7, 0.6]
    s.on_trial_complete("t5", None, error=True)  # a failed trial stops the search with a named error
    assert s.suggest("t6") == s.FINISHED and "candidate 0 of generation 1" in s.error
