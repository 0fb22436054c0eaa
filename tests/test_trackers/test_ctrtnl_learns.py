"""CTRTNL (paper 004) learns what its training teaches: a tiny CTRTNL, trained on the synthetic benchmark, finds the
target with TSR and matches the target's box to its sentence with AdaRS on held-out validation pairs better than the
same network untrained (the fresh init of the same seed, on the same frozen local tracker).

What is measured, and why not SUC: CTRTNL's training (Eq. 20 + TSR's selector BCE) leaves its local tracker,
SiamRPN++, frozen. With ``model.local_checkpoint`` null that tracker is random, and it teaches nothing: its neck
features are ~0.04 in scale, AdaRS's parts stay identical (L_div-p 1.0), OAM's BCE stays at log 2, TSR's top window
never overlaps the target, trained or not, and no proposal of its top 8 does either (measured at seed 0, 150 steps
at lr 0.003: TSR hits 0 -> 0, AdaRS picks 0 -> 0, text AUC 0.500 -> 0.508). So the test first trains a tiny
SiamRPN++ briefly (60 steps, ``siamrpnpp/tiny.yaml``, the recipe of ``tests/test_training/test_retrain_learns.py``),
loads it as ``model.local_checkpoint`` and trains CTRTNL on it for 80 steps (``ctrtnl/tiny.yaml``'s optimiser, lr
0.003). On 64 validation pairs (the family's search crops of the 16 validation videos, a fixed sampler seed) it
checks, trained minus untrained:

* ``TSR hit gain`` (needs > 0.15): the fraction of pairs whose best-scored TSR window (the selector over the windows
  that :func:`~trackers.models.ctrtnl_tsr.target_windows` lays over the search crop at the target's size, as in
  training) has IoU > 0.5 with the target: what the selector's BCE teaches;
* ``text AUC gain`` (needs > 0.05): for the target's own box, how often its AdaRS score (Eq. 19) with its own
  sentence is above its score with the sentence of another validation video (pairs of one sentence excluded; 0.5
  is chance): what L_aln teaches.

Not asserted, in the failure detail only: the fraction of pairs where AdaRS's best-scored proposal among SiamRPN++'s
top 8 has IoU > 0.5 (Algorithm 1 line 16). Its gain was +0.06 to +0.17 at five perturbations and -0.23 at seed 2 /
2 threads: L_aln ranks a target box against other videos' sentences, and no loss term ranks a background proposal
below the target's, so training does not reliably teach this choice. SUC is left out: the 60-step SiamRPN++ tracks
poorly on its own, so a SUC gain would mostly measure how often TSR rescues it.

Measured 2026-12-08 with ``python benchmarks/outcome_margins.py -k ctrtnl_learns --seeds 0 1 2 --threads 1 --jobs 1``
and then ``--threads 2``, one perturbation at a time on a shared 2-core machine (load average 5-8 from other jobs).
Each run took 41-71 s, and 456 s for seed 0 / 2 threads, which ran beside two other CPU jobs (a plain ``pytest``
run of this file at 1 thread, load average 2.4: 46 s):

=================  =====================  =====================  ==========================================
seed / threads     TSR hit gain           text AUC gain          AdaRS pick gain (not asserted)
=================  =====================  =====================  ==========================================
0 / 1              0.344                  0.218                  0.141
1 / 1              0.484                  0.306                  0.109
2 / 1              0.438                  0.298                  0.062
0 / 2              0.547                  0.235                  0.172
1 / 2              0.406                  0.253                  0.172
2 / 2              0.703                  0.108                  -0.234
=================  =====================  =====================  ==========================================

The smallest values, 0.344 and 0.108, are 2.3x and 2.2x the thresholds 0.15 and 0.05. Untrained, the TSR hit
fraction was 0.016-0.109 and the text AUC 0.42-0.57; trained, they were 0.36-0.81 and 0.57-0.79.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from asearch.config import experiments_dir

RPN_STEPS, CTRTNL_STEPS = 60, 80
VAL_PAIRS = 64
TSR_MARGIN = 0.15  # TSR hit gain
AUC_MARGIN = 0.05  # text AUC gain
RECIPE = ["train.batch_size=8", "train.optimizer=adamw", "train.lr_mult={}", "train.grad_clip=0",
          "train.warmup_steps=0", "train.log_every=10", "train.schedule=cosine", "train.min_lr_ratio=0.1",
          "train.checkpoint_every=0", "train.device=cpu"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """The benchmark of ``test_retrain_learns.fast_bench``: 40 plain videos of 20 frames at 96 px, 24 train, 16 val."""
    from asearch.data.synthetic import SyntheticConfig, generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("ctrtnl_bench"), config=SyntheticConfig(
        videos=40, frames=20, size=96, seed=0, distractors=0, appearance_changes=0, speed=3.0,
        full_occlusion_prob=0.0, partial_occlusion_prob=0.0, out_of_view_prob=0.0, splits=[24, 16, 0]))


def measure(actor, batch) -> dict:
    """The fractions of the module docstring on the pair ``batch`` (the model in eval mode, no gradients): ``tsr``
    (TSR hits; ``tsr_iou`` the mean IoU of the best window), ``auc`` (text AUC) and ``pick`` (AdaRS's pick)."""
    from trackers.boxes import box_iou_elementwise
    from trackers.models.ctrtnl_blocks import alignment_similarity

    actor.model.eval()
    with torch.no_grad():
        out = actor.forward_pass(batch, None)
    gt = batch["search_box"].float()
    boxes, scores = out["proposals"], out["scores"]
    g = boxes.shape[1] - 1                                     # the last proposal is the ground truth
    iou, _ = box_iou_elementwise(boxes[:, :g], gt[:, None].expand(-1, g, 4))
    pick = iou.gather(1, scores[:, :g].argmax(1, keepdim=True)).squeeze(1)
    ious = []
    for windows, logits, target in zip(out["windows"], out["window_logits"], gt):
        best, _ = box_iou_elementwise(windows[logits.argmax()][None], target[None])
        ious.append(float(best))
    hits = [v > 0.5 for v in ious]
    own = {k: t[:, g:] for k, t in out["visual"].items()}     # the target's own box of each pair
    sim = alignment_similarity(own, {k: t.unsqueeze(0) for k, t in out["text"].items()})   # pair × sentence
    ids = out["language"]["ids"]
    other = ~(ids[:, None, :] == ids[None, :, :]).all(-1)
    auc = float(((sim.diagonal()[:, None] > sim) & other).sum()) / float(other.sum())
    return {"tsr": float(np.mean(hits)), "tsr_iou": float(np.mean(ious)), "auc": auc,
            "pick": float((pick > 0.5).float().mean())}


@pytest.mark.outcome
def test_tiny_ctrtnl_learns_to_retrieve_the_target_and_match_its_sentence(bench, tmp_path, outcome):
    from asearch.data.sampler import collate_pairs
    from asearch.training.recipes import build_experiment, build_pair_dataset, load_experiment

    rpn_cfg = load_experiment(experiments_dir() / "siamrpnpp" / "tiny.yaml", [
        f"data.datasets.0.root={bench}", f"train.steps={RPN_STEPS}", "train.lr=0.002",
        f"train.seed={outcome.seed}", *RECIPE])
    local = build_experiment(rpn_cfg, "retrain", out_dir=tmp_path / "siamrpnpp", progress=False).train()
    sets = [f"data.datasets.0.root={bench}", f"model.local_checkpoint={local['checkpoint']}",
            f"train.steps={CTRTNL_STEPS}", "train.batch_size=8", "train.lr=0.003", "train.log_every=10",
            "train.checkpoint_every=0", "train.device=cpu", f"train.seed={outcome.seed}"]
    exp = build_experiment(load_experiment(experiments_dir() / "ctrtnl" / "tiny.yaml", sets), "retrain",
                           out_dir=tmp_path / "ctrtnl", progress=False)
    val_cfg = load_experiment(experiments_dir() / "ctrtnl" / "tiny.yaml",
                              sets + ["data.datasets.0.split=val", f"data.pairs_per_epoch={VAL_PAIRS}"])
    val = build_pair_dataset(val_cfg, exp.model_config, seed=1000)
    batch = collate_pairs([val[i] for i in range(VAL_PAIRS)])
    frozen = {k: v.clone() for k, v in exp.model.local.state_dict().items()}
    before = measure(exp.actor, batch)                          # the fresh init: build_experiment seeds first
    result = exp.train()
    assert result["steps"] == CTRTNL_STEPS and np.isfinite(result["final_loss"])
    for key, value in exp.model.local.state_dict().items():    # the local tracker stayed as it was loaded
        assert torch.equal(value, frozen[key]), key
    after = measure(exp.actor, batch)
    detail = f"untrained {before}, trained {after}"
    failed = []
    for name, key, needed in (("TSR hit gain", "tsr", TSR_MARGIN), ("text AUC gain", "auc", AUC_MARGIN)):
        try:                                                    # every check is recorded before any fails
            outcome.check(name, after[key] - before[key], needed, detail)
        except AssertionError as e:
            failed.append(str(e))
    assert not failed, "; ".join(failed)
