"""ray.gpus_per_trial: auto and the core cap of a local Ray (asearch.search.ray_search.resolve_resources)."""
import logging

import pytest
import torch

from asearch.config import experiments_dir, from_dict, load_config
from asearch.errors import ConfigError
from asearch.search import ray_search
from asearch.search.evolution import RayConfig, SearchConfig
from asearch.search.ray_search import AUTO_GPU_FRACTION, resolve_resources


def test_auto_is_the_default_and_the_paper_value():
    assert RayConfig().gpus_per_trial == "auto"
    assert load_config(SearchConfig, experiments_dir() / "vlt_scar" / "search.yaml").ray.gpus_per_trial == "auto"
    assert from_dict(RayConfig, {"gpus_per_trial": 0.25}).gpus_per_trial == 0.25
    with pytest.raises(ConfigError, match="ray.gpus_per_trial: a number >= 0 or 'auto'"):
        from_dict(RayConfig, {"gpus_per_trial": "half"})


@pytest.mark.parametrize("cuda, want", [(True, AUTO_GPU_FRACTION), (False, 0.0)])
def test_auto_follows_cuda(monkeypatch, cuda, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(ray_search.os, "cpu_count", lambda: 64)
    cfg = resolve_resources(RayConfig(workers=2, cpus_per_trial=4, threads_per_trial=4))
    assert cfg.gpus_per_trial == want and cfg.cpus_per_trial == 4 and cfg.threads_per_trial == 4
    assert resolve_resources(RayConfig(gpus_per_trial=1.0)).gpus_per_trial == 1.0  # a number stays


def test_cpus_capped_at_the_cores_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(ray_search.os, "cpu_count", lambda: 2)
    with caplog.at_level(logging.WARNING, logger="asearch.search"):
        cfg = resolve_resources(RayConfig(workers=2, cpus_per_trial=4, threads_per_trial=4))
    assert cfg.cpus_per_trial == 1 and cfg.threads_per_trial == 1 and cfg.gpus_per_trial == 0.0
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "cpus_per_trial 4 x ray.workers 2 exceeds this machine's 2 cores" in text and "capped at 1" in text
    caplog.clear()
    assert resolve_resources(cfg) == cfg and not caplog.records  # idempotent, silent the second time
    joined = RayConfig(address="auto", workers=2, cpus_per_trial=4, gpus_per_trial=0)
    assert resolve_resources(joined).cpus_per_trial == 4  # a cluster's cores are not this machine's
