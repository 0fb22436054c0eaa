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
