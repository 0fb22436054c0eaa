"""Issue 15 items 4 and 5: `asearch track` takes the text encoder from the checkpoint, a mismatched encoder is a
named error, and a video whose language file is empty is tracked (with one warning) instead of stopping the run."""
import json

import pytest
import torch

from asearch.cli import main
from asearch.config import experiments_dir

TRACK_YAML = str(experiments_dir() / "vlt_scar" / "track.yaml")  # its language section names no encoder


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from asearch.data.synthetic import SyntheticConfig, generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("synth"), config=SyntheticConfig(
        videos=4, frames=8, size=96, seed=3, distractors=1, splits=[2, 0, 2]))


@pytest.fixture(scope="module")
def checkpoint(bench, tmp_path_factory):
    """A tiny VLT_SCAR retrained for one step (packaged MiniLM, 384-d sentence vectors)."""
    from asearch.training.recipes import run_retrain

    out = tmp_path_factory.mktemp("run")
    result = run_retrain(experiments_dir() / "vlt_scar" / "tiny_retrain.yaml", out_dir=out, progress=False,
                         overrides=[f"data.datasets.0.root={bench}", "train.steps=1", "train.warmup_steps=0",
                                    "train.batch_size=2", "train.device=cpu"])
    return result["checkpoint"]


def _track(ckpt, bench, out, *extra):
    return main(["track", "--config", TRACK_YAML, "--checkpoint", str(ckpt), "--dataset", "synthetic", "--root",
                 str(bench), "--split", "test", "--out", str(out), "--no-progress", "--set", "device=cpu", *extra])


def test_checkpoint_records_its_language_branch(checkpoint):
    from asearch.training.trainer import load_checkpoint
    from trackers.registry import checkpoint_language

    record = checkpoint_language(load_checkpoint(checkpoint))
    assert record == {"enabled": True, "encoder": "default", "mode": "sentence", "missing": "zero",
                      "max_length": 128, "model_id": "all-MiniLM-L6-v2", "dim": 384}


def test_track_yaml_uses_the_checkpoints_encoder(checkpoint, bench, tmp_path, capsys):
    assert _track(checkpoint, bench, tmp_path / "res") == 0, capsys.readouterr().err
    assert "2 sequences tracked" in capsys.readouterr().out
    # an older checkpoint that records the language only in its run config works the same way
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    del ckpt["build_info"]["language"]
    assert ckpt["config"]["language"]["encoder"] is None
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    assert _track(old, bench, tmp_path / "res_old") == 0, capsys.readouterr().err


def test_an_encoder_of_another_width_is_an_error_naming_both(checkpoint, bench, tmp_path, capsys):
    other = tmp_path / "bert_32"
    other.mkdir()  # the width is read from config.json before any weight loads
    (other / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1,
                                                   "num_attention_heads": 2, "intermediate_size": 64,
                                                   "vocab_size": 100}))
    assert _track(checkpoint, bench, tmp_path / "res", "--set", f"language.encoder={other}") == 2
    err = capsys.readouterr().err
    assert f"language.encoder '{other}' (mode sentence) gives 32-d vectors" in err
    assert "trained with 384-d ones (language.encoder 'default', mode sentence)" in err
    assert str(checkpoint) in err
    # attribute mode with the checkpoint's encoder: 4 x 384 does not fit either
    assert _track(checkpoint, bench, tmp_path / "res2", "--set", "language.mode=attribute") == 2
    assert "gives 1536-d vectors" in capsys.readouterr().err


def test_empty_language_file_is_tracked_with_one_warning(checkpoint, bench, tmp_path, capsys):
    import shutil

    from asearch.data.datasets import base
    from asearch.data.registry import build_dataset
    from asearch.errors import DataWarning

    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    videos = build_dataset("synthetic", root=copy, split="test")
    empty = copy / videos.names[0].rsplit("-", 1)[0] / videos.names[0] / "nlp.txt"
    assert empty.is_file()
    empty.write_text("\n")
    base._WARNED_LANGUAGE.clear()
    with pytest.warns(DataWarning) as caught:
        assert _track(checkpoint, copy, tmp_path / "res") == 0, capsys.readouterr().err
    ours = [w for w in caught if issubclass(w.category, DataWarning)]
    assert len(ours) == 1 and str(empty) in str(ours[0].message) and "language.missing" in str(ours[0].message)
    assert "2 sequences tracked" in capsys.readouterr().out
    assert all((tmp_path / "res" / f"{name}.txt").is_file() for name in videos.names)
