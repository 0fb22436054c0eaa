"""Suite-wide fixtures.

``outcome``: for tests that assert a learning or tracking outcome (learns, beats, improves). Such a result moves with
float rounding (another CPU, another thread count, another seed), so each one is asserted through
:meth:`Outcome.check`, which names the quantity and the threshold it must clear, and its margin is measured under
perturbations with ``python benchmarks/outcome_margins.py`` (seeds through ``ASEARCH_TEST_SEED``, thread counts
through ``OMP_NUM_THREADS``). ``ASEARCH_OUTCOME_LOG=FILE`` appends one JSON line per check to FILE.
"""
import json
import os

import pytest
import torch

_INITIAL_THREADS = torch.get_num_threads()  # what OMP_NUM_THREADS (or the core count) gave this process


def pytest_configure(config):
    config.addinivalue_line("markers", "outcome: asserts a learning or tracking outcome (see tests/conftest.py)")
    config.addinivalue_line("markers", "cuda: needs CUDA; skipped without it (tests/test_cuda.py, "
                                       "benchmarks/device_check.py)")


class Outcome:
    """The perturbation a test runs under and the record of what it measured."""

    def __init__(self, nodeid: str):
        self.nodeid = nodeid
        self.seed = int(os.environ.get("ASEARCH_TEST_SEED", "0"))  # added to the test's own training seeds
        self.threads = _INITIAL_THREADS

    def check(self, name: str, value: float, needed: float, detail: str = "") -> None:
        """Assert ``value > needed`` and record both (``value`` is the measured gain, ``needed`` its threshold)."""
        log = os.environ.get("ASEARCH_OUTCOME_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write(json.dumps({"test": self.nodeid, "check": name, "value": float(value),
                                     "needed": float(needed), "seed": self.seed, "threads": self.threads,
                                     "detail": detail}) + "\n")
        assert value > needed, f"{name}: {value:.4f} does not clear {needed:.4f} ({detail})"


@pytest.fixture
def outcome(request):
    """An :class:`Outcome`; the test runs with the thread count the environment gave (earlier tests that changed
    it are undone) and it is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(_INITIAL_THREADS)
    try:
        yield Outcome(request.node.nodeid)
    finally:
        torch.set_num_threads(before)


def _load_benchmark_script(name: str):
    """Import ``benchmarks/<name>.py`` as module ``name`` (a generator: yields it, then unregisters it)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def load_benchmark_script():
    """The benchmark-script loader, as a fixture: ``from conftest import`` is ambiguous when pytest collects several
    ``conftest.py`` files (tests/test_search has its own), so test modules reach the loader through this."""
    return _load_benchmark_script
