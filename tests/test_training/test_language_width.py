"""The model's language width follows from language.encoder and language.mode (trackers.language_width)."""
import pytest

from asearch.config import experiments_dir
from asearch.errors import ConfigError
from asearch.training.recipes import build_experiment, load_experiment
from trackers.language_width import get_language_dim, language_dim_key, resolve_language_dim

TINY_SUPERNET = experiments_dir() / "vlt_scar" / "tiny_supernet.yaml"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from asearch.data.synthetic import generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("synth"), videos=2, frames=8, size=96, seed=1, distractors=0)


def test_each_family_names_its_width_key():
    assert language_dim_key({"name": "vlt_scar"}) == "supernet.language_dim"
    assert language_dim_key({"name": "vlt_tt"}) == "supernet.language_dim"
    assert language_dim_key({"name": "vlt_ost"}) == "mixer.language_dim"
    assert language_dim_key({"name": "siamcar"}) is None and language_dim_key({"name": "ostrack"}) is None


@pytest.mark.parametrize("family, config", [("vlt_scar", "supernet.yaml"), ("vlt_ost", "retrain.yaml"),
                                            ("vlt_tt", "retrain.yaml")])
def test_paper_configs_leave_the_width_to_the_encoder(family, config):
    cfg = load_experiment(experiments_dir() / family / config, ["language.encoder=default"])
    key = language_dim_key(cfg.model)
    assert get_language_dim(cfg.model, key) is None  # not set: a change of encoder needs no second edit
    out = resolve_language_dim(cfg.model, 384, cfg.language.encoder, "sentence")
    assert get_language_dim(out, key) == 384 and get_language_dim(cfg.model, key) is None  # input left alone


def test_explicit_conflict_names_both_keys_and_values():
    model = {"name": "vlt_ost", "mixer": {"language_dim": 768}}
    with pytest.raises(ConfigError) as err:
        resolve_language_dim(model, 384, None, "sentence", source="x.yaml")
    msg = str(err.value)
    assert "model.mixer.language_dim is 768" in msg and "language.encoder 'default'" in msg and "384" in msg
    assert resolve_language_dim(model, 768, "bert-base-uncased") == model  # agreeing explicit value: kept
    assert get_language_dim(resolve_language_dim({"name": "vlt_scar", "supernet": {"language_dim": None}}, None),
                            "supernet.language_dim") is None  # language off: the family default applies


def test_default_encoder_without_language_dim_builds_the_minilm_width(bench, tmp_path):
    base = [f"data.datasets.0.root={bench}", "train.device=cpu", "train.steps=1", "train.warmup_steps=0", "train.batch_size=2",
            "language.encoder=default", "model.supernet.language_dim=null"]
    exp = build_experiment(load_experiment(TINY_SUPERNET, base), "pretrain", out_dir=tmp_path / "a", progress=False)
    assert exp.featurizer.dim == 384 and exp.model.language_dim == 384
    assert exp.config.model["supernet"]["language_dim"] == 384  # recorded in the run config and the checkpoint
    exp = build_experiment(load_experiment(TINY_SUPERNET, base + ["language.mode=attribute"]), "pretrain",
                           out_dir=tmp_path / "b", progress=False)
    assert exp.model.language_dim == 4 * 384  # attribute mode: four words concatenated
    with pytest.raises(ConfigError, match=r"model.supernet.language_dim is 768.*language.encoder 'default'"):
        build_experiment(load_experiment(TINY_SUPERNET, base[:-1] + ["model.supernet.language_dim=768"]),
                         "pretrain", out_dir=tmp_path / "c", progress=False)
