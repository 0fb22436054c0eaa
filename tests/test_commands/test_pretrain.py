"""`asearch pretrain` / `asearch retrain` through the command line, exact resume, and the issue-4 goal: a tiny
VLT_SCAR supernet pretrained on the synthetic benchmark tracks validation videos better than the untrained one."""
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from asearch.cli import main
from asearch.config import experiments_dir

TINY_SUPERNET = str(experiments_dir() / "vlt_scar" / "tiny_supernet.yaml")
TINY_RETRAIN = str(experiments_dir() / "vlt_scar" / "tiny_retrain.yaml")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from asearch.data.synthetic import generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("synth"), videos=4, frames=12, size=96, seed=5, distractors=1)


def sets(*items):
    out = []
    for item in items:
        out += ["--set", item]
    return out


def tiny_args(root, steps):
    return sets(f"data.datasets.0.root={root}", f"train.steps={steps}", "train.warmup_steps=2", "train.batch_size=4",
                "train.log_every=1", "train.checkpoint_every=4", "train.device=cpu") + ["--no-progress"]


def test_pretrain_resume_through_the_command_is_exact(bench, tmp_path, capsys):
    from asearch.training.trainer import load_checkpoint

    args = ["pretrain", "--config", TINY_SUPERNET] + tiny_args(bench, 6)
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    assert "done after 6 steps" in capsys.readouterr().out
    broken = ["--out", str(tmp_path / "broken")]
    assert main(args + broken + ["--stop-after", "3"]) == 0  # paused (a checkpoint at step 3, between the periodic)
    assert "paused after 3 steps" in capsys.readouterr().out
    assert main(args + broken) == 2  # the folder holds a run: resume it or choose another
    assert "already holds a run" in capsys.readouterr().err
    assert main(args + broken + ["--resume"]) == 0
    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.pt")
    b = load_checkpoint(tmp_path / "broken" / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6, rtol=0), key
    rows = (tmp_path / "broken" / "train_log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "6"]


def test_commands_report_bad_config_keys(bench, tmp_path, capsys):
    rc = main(["pretrain", "--config", TINY_SUPERNET, "--out", str(tmp_path / "x"), "--set", "train.stpes=3"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown config key 'train.stpes'" in err and "tiny_supernet.yaml" in err
    rc = main(["retrain", "--config", TINY_RETRAIN, "--arch", str(tmp_path / "missing.json"), "--out",
               str(tmp_path / "y")])
    assert rc == 2 and "architecture file not found" in capsys.readouterr().err


def test_retrain_command_with_an_official_genome(bench, tmp_path, capsys):
    from trackers.registry import load_model

    genome = [[3, 2, 1, 0] * 5, [0, 0, 1, 1] * 5, [2, 2, 2, 2], [1, 0, 1, 0]]
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(genome))
    out = tmp_path / "re"
    rc = main(["retrain", "--config", TINY_RETRAIN, "--arch", str(arch), "--out", str(out)] + tiny_args(bench, 2))
    assert rc == 0 and "retrain: done after 2 steps" in capsys.readouterr().out
    model, cfg = load_model(out / "checkpoints" / "latest.pt")
    assert cfg.genome == genome and not model.needs_genome


# ----------------------------------------------------------------------------------------------------------------------
# issue 4, "done when": pretraining makes the supernet track better (same genome, same validation videos)
def _suc(exp, genome, videos, bn_batches):
    """SUC of the supernet along ``genome`` on ``videos`` after SPOS BN recalibration on fixed training pairs."""
    from asearch.evaluation import ope
    from asearch.evaluation.results import read_results
    from asearch.search.bn import recalibrate_bn
    from trackers.registry import build_tracker
    from trackers.runner import run_dataset

    recalibrate_bn(exp.model, bn_batches, lambda batch: exp.actor.forward_pass(batch, genome))
    exp.model.eval()
    exp.out_dir.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="results_", dir=exp.out_dir))  # a fresh folder: the runner skips done videos
    run_dataset(lambda: build_tracker(exp.model, exp.model_config, exp.config.tracker, featurizer=exp.featurizer,
                                      genome=genome, device="cpu"),
                videos, out, batch_size=len(videos), progress=False)
    preds = [read_results(out, seq.name) for seq in videos]
    return ope(preds, [seq.boxes for seq in videos], [seq.visible for seq in videos], protocol="lasot")["suc"]


@pytest.mark.outcome
def test_issue4_pretrained_supernet_tracks_better_than_untrained(tmp_path, outcome):
    """Pretraining makes the supernet track better along the same genomes on the same validation videos: the mean
    SUC over 3 random genomes gains more than 0.05 (AdamW, which learns the from-scratch tiny supernet faster than
    SGD; 400 steps on 24 plain videos with fast targets, 16 validation videos; BN recalibrated on the same 8
    training batches before and after). Measured (``benchmarks/outcome_margins.py -k issue4``, seeds 0-2 x 1 and 2
    threads but seed 0 / 1 thread): 0.108-0.177 (needs > 0.05); one genome
    alone gained 0.065 at seed 1 with 300 steps on 20 videos, hence the mean over three."""
    from asearch.data.registry import build_dataset
    from asearch.data.synthetic import SyntheticConfig, generate_benchmark
    from asearch.training.recipes import build_experiment, epoch_loader_factory, load_experiment

    root = generate_benchmark(tmp_path / "synth", config=SyntheticConfig(
        videos=40, frames=20, size=96, seed=0, distractors=0, appearance_changes=0, speed=3.0,
        full_occlusion_prob=0.0, partial_occlusion_prob=0.0, out_of_view_prob=0.0, splits=[24, 16, 0]))
    cfg = load_experiment(TINY_SUPERNET, [f"data.datasets.0.root={root}", "train.steps=400", "train.batch_size=8",
                                          "train.optimizer=adamw", "train.lr=0.003", "train.grad_clip=0",
                                          "train.checkpoint_every=0", "train.device=cpu",
                                          f"train.seed={outcome.seed}"])
    exp = build_experiment(cfg, "pretrain", out_dir=tmp_path / "run", progress=False)
    val = build_dataset("synthetic", root=root, split="val")
    assert len(val) == 16
    genomes = [exp.space.random(101 + i) for i in range(3)]
    bn_loader = epoch_loader_factory(exp.dataset, 8, seed=1234)
    bn_batches = [batch for _, batch in zip(range(8), bn_loader(0, 0))]
    before = [_suc(exp, genome, val, bn_batches) for genome in genomes]
    result = exp.train()
    assert result["steps"] == 400 and np.isfinite(result["final_loss"])
    after = [_suc(exp, genome, val, bn_batches) for genome in genomes]
    outcome.check("mean SUC gain (3 genomes)", float(np.mean(after) - np.mean(before)), 0.05,
                  f"SUC untrained {[round(v, 3) for v in before]} pretrained {[round(v, 3) for v in after]}")
