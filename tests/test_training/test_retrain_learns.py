"""Issue 6, "done when": each of the eleven trackers (issue 20 added SiamRPN++ and VLT_RPN++, issue 21 PJVLT, issue 22
SATracker, issue 23 COST) retrains in its tiny config on an easy synthetic benchmark on CPU with a decreasing loss
and then tracks validation videos better (SUC) than the same architecture untrained (fresh init from the same
seed); retraining a VL subnet pauses and resumes exactly through run_retrain; --arch replaces the genome of the
YAML (also by name: official:vlt_scar).

The benchmark (``fast_bench``): 40 plain videos whose targets move 3x faster than the default, 24 for training and
16 for validation (on slow targets an untrained tracker's near-constant boxes already score SUC ~0.46, and 4
validation videos made a gain a coin toss). The ViT trackers' tiny center head is 64 wide: at 16 its last conv had
2 channels and the size map barely moved (one-shot IoU 0.32 on training pairs, SUC gain ~0.01).

Measured with ``python benchmarks/outcome_margins.py -k issue6`` over 6 perturbations (seeds 0, 1, 2 x 1 and 2
threads; TransT and VLT_TT at seed 0 / 1 thread by the same code outside pytest), the SUC gain (needs > 0.05) and the
loss drop (needs > 0.2):

=========  ==================================  ==================
family     SUC gain                            loss drop
=========  ==================================  ==================
siamcar    0.315-0.464                         0.532-0.593
transt     0.085-0.186                         0.425-0.557
vlt_scar   0.165-0.390                         0.507-0.552
vlt_tt     0.095-0.166 (800 steps)             0.527-0.655
ostrack    0.092-0.458                         0.734-0.911
vlt_ost    0.160-0.458                         0.799-0.875
siamrpnpp  0.436-0.587                         0.645-0.689
vlt_rpnpp  0.153-0.364                         0.487-0.605
pjvlt      0.528-0.640 (4 perturbations)       0.908-0.915
satracker  0.655-0.733                         0.856-0.888
cost       0.181-0.539                         0.507-0.663
=========  ==================================  ==================

PJVLT (issue 21; its tiny language model frozen, 400 steps, ~50 s on one idle core) was measured over 4 perturbations
only, seeds 0 and 1 x 1 and 2 threads (``python benchmarks/outcome_margins.py -k "issue6 and pjvlt" --seeds 0 1
--threads 1 2 --jobs 1``): SUC gain 0.555 / 0.528 / 0.573 / 0.640 (seed/threads 0/1, 0/2, 1/1, 1/2), loss drop
0.913 / 0.908 / 0.914 / 0.915; seed 2 was not run.
SATracker (issue 22; its tiny language model frozen, 400 steps, ~160 s per test on one core) was measured at all six
perturbations, one per call at 1 thread (``python benchmarks/outcome_margins.py -k "issue6 and satracker" --seeds S
--threads 1 --jobs 1``; seed 2 on 2026-12-08) and at 2 threads on 2026-12-08 (``--seeds 0 1 2 --threads 2 --jobs
1``, on otherwise idle cores: earlier 2-thread attempts beside other jobs ran past 10 and 21 minutes and were
stopped): SUC gain 0.699 / 0.684 / 0.733 (seeds 0 / 1 / 2, 1 thread), 0.655 / 0.679 / 0.725 (2 threads), loss
drop 0.856-0.888. The threshold 0.05 is 0.08x the smallest gain.

COST (issue 23; 300 steps, ~80 s per test on one idle core) learns with TransT's class weighting in ``cost/tiny.yaml``
(``loss.eos_coef`` 0.0625, ``loss.cls_weight`` 8.334, as ``transt/tiny.yaml``; measured as overrides of the then
unweighted tiny.yaml, the same values) over the paper's unweighted cross-entropy, with which it
did not learn to track (SUC gain -0.017 / -0.007 at seed 0 / 1, 1 thread; loss drop 0.212 / 0.272). Most of its 121
candidates are background, which the weighting discounts (TransT's reason for it; not examined further).
Measured 2026-12-08 over all six perturbations (``python benchmarks/outcome_margins.py -k "issue6 and cost" --seeds
0 1 2 --threads 1`` and ``--threads 2``): SUC gain 0.539 / 0.418 / 0.304 (seeds 0 / 1 / 2, 1 thread), 0.390 /
0.294 / 0.181 (2 threads), loss drop 0.507-0.663; the smallest gain is 3.6x the 0.05 needed.

The siamcar, transt, vlt_scar, ostrack and vlt_ost rows were re-measured after issue 18 (2026-12-07, all six
perturbations: ``python benchmarks/outcome_margins.py --jobs 1 -k "not vlt_tt and not siamrpnpp and not vlt_rpnpp
and not pjvlt and not satracker"``): TransT's smallest gain is 0.085 (seed 2 / 1 thread) and OSTrack's 0.092
(seed 2 / 1 thread), both above the 0.05 needed but under twice it; the others are at least 2x.
Before that re-measurement: every smallest gain was at least twice the 0.05 needed, TransT's only just (0.109: its tiny model underfits,
training-video SUC ~0.3), except VLT_TT's, 0.095 (1.9x). VLT_TT at 480 steps gave 0.044-0.330 once biases and norms
lost their weight decay (issue 18 item 5: 0.044 at seed 0 / 2 threads, a failure); at 800 steps its loss no longer
sits on the plateau at ~5 where the 480-step runs ended, and the spread narrowed to 0.095-0.166 (VLT_TT row, measured
with ``python benchmarks/outcome_margins.py -k "issue6 and vlt_tt" --jobs 2``).
SiamCAR's released decoder (issue 18 item 6) moved the SiamCAR family at seed 0 / 1 thread: SiamCAR 0.449 -> 0.302,
VLT_SCAR 0.327 -> 0.314 (the other perturbations of these two rows are from before it and not re-measured). The closed loop makes the gain spread widely with the seed and the
thread count (OSTrack, seed 0: 0.118 at 1 thread, 0.433 at 2): the smallest value is the one to watch. The
recipes before this one (150 / 120 / 400 steps for TransT / VLT_TT / OSTrack on 12 training videos, OSTrack's head
16 wide) gave 0.135, 0.044 and 0.003 at their worst seeds, and OSTrack 0.011 on CI's CPU.
"""
import logging
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from asearch.config import experiments_dir

VLT_GENOME = [[1, 0, 3, 2] * 5, [2, 3, 0, 1] * 5, [0, 1, 2, 3], [3, 3, 0, 0]]  # 20 template, 20 search, 2x4 mixers
# family: (tiny config, --arch (None: baseline or the YAML's genome), steps, lr, extra overrides)
# AdamW without clipping or warmup, a cosine decay to 0.1 of the rate; batches of 8.
RECIPES = {
    "vlt_scar": ("vlt_scar/tiny_retrain.yaml", VLT_GENOME, 200, 0.002, []),
    "vlt_tt": ("vlt_tt/tiny.yaml", VLT_GENOME, 800, 0.004, []),
    "vlt_ost": ("vlt_ost/tiny.yaml", [[], [], [1, 2], [3, 0]], 400, 0.003, []),
    "siamcar": ("siamcar/tiny.yaml", None, 120, 0.002, []),
    "transt": ("transt/tiny.yaml", None, 300, 0.003, []),
    "ostrack": ("ostrack/tiny.yaml", None, 400, 0.002, []),
    "siamrpnpp": ("siamrpnpp/tiny.yaml", None, 200, 0.002, []),
    "vlt_rpnpp": ("vlt_rpnpp/tiny_retrain.yaml", VLT_GENOME, 300, 0.002, []),
    "pjvlt": ("pjvlt/tiny.yaml", None, 400, 0.002, []),
    "satracker": ("satracker/tiny.yaml", None, 400, 0.002, []),
    "cost": ("cost/tiny.yaml", None, 300, 0.003, []),   # tiny.yaml's loss: TransT's class weighting
}
LOSS_DROP = 0.2  # the mean of the last 3 logged losses is at least 20 % below the first 3
MARGIN = 0.05    # SUC gain over the untrained init on the 16 validation videos


@pytest.fixture(scope="module")
def fast_bench(tmp_path_factory):
    """40 plain videos (no distractors, appearance changes or occlusions) of 20 frames at 96 px whose targets move
    3x faster than the default (untrained boxes lag behind them): 24 train, 16 val."""
    from asearch.data.synthetic import SyntheticConfig, generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("fast"), config=SyntheticConfig(
        videos=40, frames=20, size=96, seed=0, distractors=0, appearance_changes=0, speed=3.0,
        full_occlusion_prob=0.0, partial_occlusion_prob=0.0, out_of_view_prob=0.0, splits=[24, 16, 0]))


def _suc(exp, videos) -> float:
    """SUC (LaSOT protocol) of the experiment's model, tracking ``videos`` on CPU."""
    from asearch.evaluation import ope
    from asearch.evaluation.results import read_results
    from trackers.registry import build_tracker
    from trackers.runner import run_dataset

    exp.model.eval()
    exp.out_dir.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="results_", dir=exp.out_dir))  # a fresh folder: the runner skips done videos
    run_dataset(lambda: build_tracker(exp.model, exp.model_config, exp.config.tracker, featurizer=exp.featurizer,
                                      device="cpu"),
                videos, out, batch_size=len(videos), progress=False)
    preds = [read_results(out, seq.name) for seq in videos]
    return ope(preds, [seq.boxes for seq in videos], [seq.visible for seq in videos], protocol="lasot")["suc"]


def _logged_losses(out_dir: Path):
    rows = (out_dir / "train_log.csv").read_text().strip().splitlines()
    col = rows[0].split(",").index("loss")
    return [float(row.split(",")[col]) for row in rows[1:]]


@pytest.mark.outcome
@pytest.mark.parametrize("family", sorted(RECIPES))
def test_issue6_tiny_retrain_learns_to_track(family, fast_bench, tmp_path, outcome):
    from asearch.data.registry import build_dataset
    from asearch.training.recipes import build_experiment, load_experiment

    path, arch, steps, lr, extra = RECIPES[family]
    cfg = load_experiment(experiments_dir() / path, [
        f"data.datasets.0.root={fast_bench}", f"train.steps={steps}", "train.batch_size=8", "train.optimizer=adamw",
        f"train.lr={lr}", "train.lr_mult={}", "train.grad_clip=0", "train.warmup_steps=0", "train.log_every=10",
        "train.schedule=cosine", "train.min_lr_ratio=0.1",
        "train.checkpoint_every=0", "train.device=cpu", f"train.seed={outcome.seed}", *extra])
    exp = build_experiment(cfg, "retrain", out_dir=tmp_path / "run", progress=False, arch=arch)
    assert not getattr(exp.model, "needs_genome", False)
    val = build_dataset("synthetic", root=fast_bench, split="val")
    assert len(val) == 16
    untrained = _suc(exp, val)  # the fresh init: build_experiment seeds before building the model
    result = exp.train()
    assert result["steps"] == steps and np.isfinite(result["final_loss"])
    losses = _logged_losses(tmp_path / "run")
    assert len(losses) == steps // 10
    outcome.check("loss drop", 1.0 - np.mean(losses[-3:]) / np.mean(losses[:3]), LOSS_DROP,
                  f"losses {[round(v, 3) for v in losses]}")
    trained = _suc(exp, val)
    outcome.check("SUC gain", trained - untrained, MARGIN, f"SUC untrained {untrained:.3f} trained {trained:.3f}")


# ---------------------------------------------------------------------------------------------------- retrain resume
@pytest.fixture(scope="module")
def small_bench(tmp_path_factory):
    from asearch.data.synthetic import generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("small"), videos=4, frames=12, size=96, seed=7, distractors=1)


def test_retrain_of_a_vl_subnet_pauses_and_resumes_exactly(small_bench, tmp_path):
    from asearch.training.recipes import run_retrain
    from asearch.training.trainer import load_checkpoint

    torch.set_num_threads(1)
    cfg = experiments_dir() / "vlt_tt" / "tiny.yaml"
    sets = [f"data.datasets.0.root={small_bench}", "train.steps=4", "train.batch_size=4", "train.log_every=1",
            "train.checkpoint_every=0", "train.device=cpu"]
    whole = run_retrain(cfg, arch=VLT_GENOME, out_dir=tmp_path / "whole", overrides=sets, progress=False)
    paused = run_retrain(cfg, arch=VLT_GENOME, out_dir=tmp_path / "broken", overrides=sets, progress=False,
                         stop_after=2)
    assert paused["stopped"] and paused["steps"] == 2
    resumed = run_retrain(cfg, arch=VLT_GENOME, out_dir=tmp_path / "broken", overrides=sets, progress=False,
                          resume=True)
    assert whole["steps"] == resumed["steps"] == 4 and not resumed["stopped"]
    a, b = load_checkpoint(whole["checkpoint"]), load_checkpoint(resumed["checkpoint"])
    assert a["step"] == b["step"] == 4 and a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6, rtol=0), key
    steps = [row.split(",")[0] for row in (tmp_path / "broken" / "train_log.csv").read_text().strip().splitlines()]
    assert steps[1:] == ["1", "2", "3", "4"]


# ------------------------------------------------------------------------------------- --arch replaces model.genome
def test_arch_replaces_the_genome_of_the_yaml(small_bench, tmp_path, caplog):
    from asearch.training.recipes import build_experiment, load_experiment

    path = experiments_dir() / "vlt_scar" / "tiny_retrain.yaml"
    cfg = load_experiment(path, [f"data.datasets.0.root={small_bench}", "train.steps=1", "train.warmup_steps=0",
                                 "train.batch_size=4", "train.device=cpu"])
    yaml_genome = cfg.model["genome"]
    assert yaml_genome is not None and yaml_genome != VLT_GENOME  # the file carries a default, different genome
    with caplog.at_level(logging.WARNING):
        exp = build_experiment(cfg, "retrain", out_dir=tmp_path / "run", progress=False, arch=VLT_GENOME,
                               source=str(path))
    assert exp.config.model["genome"] == VLT_GENOME and list(map(list, exp.model_config.genome)) == VLT_GENOME
    assert "replaces model.genome" in caplog.text
    assert cfg.model["genome"] == yaml_genome  # the loaded config is left alone


def test_retrain_takes_the_released_architecture_by_name(small_bench, tmp_path):
    """``--arch official:vlt_scar`` retrains the paper's searched subnet (here at the tiny width)."""
    from asearch.search.architecture import OFFICIAL_GENOMES
    from asearch.training.recipes import run_retrain
    from asearch.training.trainer import load_checkpoint

    result = run_retrain(experiments_dir() / "vlt_scar" / "tiny_retrain.yaml", arch="official:vlt_scar",
                         out_dir=tmp_path / "run", progress=False,
                         overrides=[f"data.datasets.0.root={small_bench}", "train.steps=1", "train.batch_size=2",
                                    "train.warmup_steps=0", "train.checkpoint_every=0", "train.device=cpu"])
    ckpt = load_checkpoint(result["checkpoint"])
    assert ckpt["build_info"]["model"]["genome"] == OFFICIAL_GENOMES["vlt_scar"]
