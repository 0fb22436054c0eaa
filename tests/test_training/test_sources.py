"""data.skip_missing: a paper recipe on the datasets one has (asearch.training.sources), and --set list overrides."""
import logging

import pytest

from asearch.config import experiments_dir, parse_override
from asearch.errors import ConfigError
from asearch.training.recipes import build_pair_dataset, load_experiment
from asearch.training.sources import fallback_language_share
from trackers.registry import model_config

TINY_SUPERNET = experiments_dir() / "vlt_scar" / "tiny_supernet.yaml"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from asearch.data.synthetic import generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("synth"), videos=2, frames=8, size=96, seed=2, distractors=0)


def _datasets(bench, tmp_path):
    # a YAML list on the command line: --set 'data.datasets=[...]' replaces the whole list
    return (f"data.datasets=[{{name: synthetic, root: {bench}, ratio: 2}}, {{name: coco, ratio: 1}}, "
            f"{{name: got10k, root: {tmp_path / 'nowhere'}, ratio: 1}}]")


def test_set_values_are_yaml():
    keys, value = parse_override("data.datasets=[{name: lasot, split: train}, {name: tnl2k}]")
    assert keys == ["data", "datasets"] and value == [{"name": "lasot", "split": "train"}, {"name": "tnl2k"}]


def test_skip_missing_leaves_out_datasets_without_a_root(bench, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("ASEARCH_COCO_ROOT", raising=False)
    over = [_datasets(bench, tmp_path), "data.no_language_share=0.5"]
    cfg = load_experiment(TINY_SUPERNET, over)
    with pytest.raises(ConfigError, match="ASEARCH_COCO_ROOT"):  # without the option: the usual error
        build_pair_dataset(cfg, model_config(cfg.model), seed=0)
    cfg = load_experiment(TINY_SUPERNET, over + ["data.skip_missing=true"])
    with caplog.at_level(logging.WARNING, logger="asearch.training"):
        pairs = build_pair_dataset(cfg, model_config(cfg.model), seed=0, source="paper.yaml")
    assert len(pairs.sources) == 1 and list(pairs.ratios) == [1.0]  # the ratios of the rest, renormalised
    text = [r.getMessage() for r in caplog.records]
    coco = [t for t in text if "'coco'" in t]
    got = [t for t in text if "'got10k'" in t]
    assert len(coco) == 1 and "$ASEARCH_COCO_ROOT is not set" in coco[0] and "data.datasets.1.root" in coco[0]
    assert len(got) == 1 and "does not exist" in got[0] and "ASEARCH_GOT10K_ROOT" in got[0]
    assert sum("no_language_share is 0.5" in t and "falls back to 0" in t for t in text) == 1


def test_nothing_left_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ASEARCH_COCO_ROOT", raising=False)
    cfg = load_experiment(TINY_SUPERNET, ["data.datasets=[{name: coco}]", "data.skip_missing=true"])
    with pytest.raises(ConfigError, match="left out every dataset.*coco"):
        build_pair_dataset(cfg, model_config(cfg.model), seed=0)


def test_language_share_fallback(caplog):
    assert fallback_language_share(0.5, [1, 1], [True, False]) == 0.5
    assert fallback_language_share(None, [1], [True]) is None
    with caplog.at_level(logging.WARNING, logger="asearch.training"):
        assert fallback_language_share(0.5, [1, 1], [True, True]) == 0.0
        assert fallback_language_share(0.5, [1], [False]) == 1.0
        assert fallback_language_share(0.0, [1], [True]) == 0.0  # nothing to fall back from: no warning
    assert len(caplog.records) == 2
