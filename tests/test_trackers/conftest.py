"""Helpers shared by the tracker-family tests: a deterministic language featurizer, the check of the result
files written by ``asearch track`` and a tiny recipe's run through ``asearch retrain`` / ``track`` / ``evaluate``."""
import numpy as np
import pytest
import torch


class FakeFeaturizer:
    """Deterministic 8-d language vectors; items without a sentence use the 'template' strategy."""

    dim = 8

    def __call__(self, sentences, attributes, has_language, strategies=None):
        vec = torch.stack([torch.linspace(0, 1, self.dim) * (len(s or "") + 1) for s in sentences])
        use_t = torch.tensor([not (h and s) for s, h in zip(sentences, has_language)])
        return vec * (~use_t).float().unsqueeze(1), use_t


@pytest.fixture
def fake_featurizer():
    """A :class:`FakeFeaturizer` (8-d vectors, the 'template' strategy for items without a sentence)."""
    return FakeFeaturizer()


@pytest.fixture
def check_track_results():
    """``check(out_dir, videos, frames)``: exactly ``videos`` result files in ``out_dir``, each ``frames×4`` and
    finite."""
    from asearch.evaluation.results import read_results

    def check(out, videos, frames):
        names = sorted(p.stem for p in out.glob("*.txt"))
        assert len(names) == videos
        for name in names:
            res = read_results(out, name)
            assert res.shape == (frames, 4) and np.all(np.isfinite(res))

    return check


@pytest.fixture
def tiny_cli_run(tmp_path, check_track_results):
    """``run(name, config, train_sets, track_sets, metrics) -> (checkpoint dict, run dir)``: the tiny recipe
    ``config`` of family ``name`` retrained for 6 steps on 4 synthetic videos through ``asearch retrain`` (extra
    ``--set`` ``train_sets``), tracked through ``asearch track`` with ``experiments/<name>/track.yaml``
    (``track_sets``, batches of 2), the result files checked and ``asearch evaluate`` (``--metrics metrics``, each
    then in [0, 1] too) giving a SUC in [0, 1]."""
    import json

    from asearch.cli import main
    from asearch.config import experiments_dir
    from asearch.data.synthetic import generate_benchmark
    from asearch.training.trainer import load_checkpoint

    def run(name, config, train_sets=(), track_sets=(), metrics=()):
        torch.set_num_threads(1)
        root = generate_benchmark(tmp_path / "synth", videos=4, frames=6, size=96, seed=0, distractors=0)
        out = tmp_path / "run"
        sets = [f"data.datasets.0.root={root}", "train.steps=6", "train.batch_size=4", "train.log_every=2",
                "train.checkpoint_every=0", "train.device=cpu", *train_sets]
        assert main(["retrain", "--config", str(config), "--out", str(out), "--no-progress",
                     *[a for kv in sets for a in ("--set", kv)]]) == 0
        results = tmp_path / "results" / name
        sets = [*track_sets, "device=cpu"]
        assert main(["track", "--checkpoint", str(out / "checkpoints" / "latest.pt"),
                     "--config", str(experiments_dir() / name / "track.yaml"), "--dataset", "synthetic",
                     "--root", str(root), "--split", "all", "--out", str(results), "--batch", "2", "--no-progress",
                     *[a for kv in sets for a in ("--set", kv)]]) == 0
        check_track_results(results, videos=4, frames=6)
        ev = tmp_path / "ev"
        assert main(["evaluate", "--results", str(results), "--dataset", "synthetic", "--root", str(root),
                     "--split", "all", "--out", str(ev), *(["--metrics", *metrics] if metrics else [])]) == 0
        data = json.loads((ev / "results.json").read_text())
        for key in ("suc", *metrics):
            assert 0.0 <= data["trackers"][name][key] <= 1.0, key
        return load_checkpoint(out / "checkpoints" / "latest.pt"), out

    return run


@pytest.fixture
def tiny_words():
    """``(words 2×12×32, mask 2×12)``: the tokens of "the red car on the left" and "a dog" from a randomly
    initialised one-layer BERT of width 32 (``TokenTextEncoder(config=...)``, no file), seeded 0."""
    from transformers import BertConfig

    from asearch.language import TokenTextEncoder

    torch.manual_seed(0)
    text = TokenTextEncoder(config=BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                              intermediate_size=64), max_length=12)
    ids, mask = text.tokenize(["the red car on the left", "a dog"])
    return text(ids, mask)
