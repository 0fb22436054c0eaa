"""Grounding (TransVG-style, paper 004's ref. [6]): model shapes, the L1 + GIoU loss by hand, the NL-setting first
frame in the evaluation, and ``asearch retrain`` of the tiny recipe -> ``asearch track --init language`` with a tiny
VLT_SCAR and a tiny CTRTNL -> ``asearch evaluate --first-frame predicted``; the paper recipe on ``meta``."""
import json

import numpy as np
import pytest
import torch

from asearch.config import experiments_dir

TINY = experiments_dir() / "grounding" / "tiny.yaml"
GROUNDING_MARGIN = 0.02  # mean first-frame IoU over the centred box's (measured: see the outcome test's docstring)


def test_tiny_model_gives_one_normalised_box_per_image():
    from asearch.training.recipes import load_experiment
    from trackers.language_width import resolve_language_dim
    from trackers.registry import build_model, model_config

    torch.manual_seed(0)
    cfg = model_config(resolve_language_dim(load_experiment(TINY).model, 384, None, "sentence", str(TINY)))
    model = build_model(cfg).eval()
    lang = model.tokenize(["a red star", ""], torch.tensor([True, False]))
    with torch.no_grad():
        out = model(torch.rand(2, 3, 96, 96) * 255, lang)
    assert out["boxes"].shape == (2, 4) and bool(((out["boxes"] > 0) & (out["boxes"] < 1)).all())
    assert model.visual_side == 12 and lang["ids"].shape == (2, 20)


def test_loss_on_a_hand_computed_case():
    from trackers.losses.grounding import GroundingLoss

    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])      # xyxy 0.4..0.6
    gt = torch.tensor([[0.55, 0.5, 0.2, 0.2]])       # xyxy 0.45..0.65
    total, stats = GroundingLoss()(pred, gt)
    # L1: |0.05| / 4; IoU = 0.15*0.2 / (0.04+0.04-0.03) = 0.6; enclosing 0.25*0.2 = 0.05 = union: GIoU = 0.6
    assert stats["loss_l1"] == pytest.approx(0.0125, abs=1e-6)
    assert stats["loss_giou"] == pytest.approx(0.4, abs=1e-5)
    assert total.item() == pytest.approx(0.4125, abs=1e-5)


def test_first_frame_predicted_is_scored_not_copied():
    from asearch.evaluation.metrics import ope

    gt = np.array([[10.0, 10.0, 10.0, 10.0]] * 3)
    pred = gt.copy()
    pred[0] = [40.0, 40.0, 10.0, 10.0]               # a wrong first box
    given = ope([pred], [gt])
    nl = ope([pred], [gt], first_frame="predicted")
    full = 20 / 21                                   # IoU 1 clears 20 of the 21 thresholds (IoU > t)
    assert given["suc"] == pytest.approx(full) and nl["suc"] == pytest.approx(2 / 3 * full)
    bad = pred.copy()
    bad[0] = [0.0, 0.0, 0.0, 0.0]                    # unusable: fails frame 0, not replaced by the ground truth
    assert ope([bad], [gt], first_frame="predicted")["suc"] == pytest.approx(2 / 3 * full)
    g10 = ope([pred], [gt], protocol="got10k", image_sizes=[(100, 100)], first_frame="predicted")
    assert g10["ao"] == pytest.approx(2 / 3) and g10["n_frames"] == 3


def _tiny_vlt_scar():
    """A tiny VLT_SCAR (fixed random subnet, untrained: the tests are about the plumbing) and its track.yaml."""
    from trackers.registry import build_info, build_model

    cfg = dict(name="vlt_scar", template_size=63, search_size=127, neck={"channels": 32, "center_size": 7},
               head={"num_convs": 2, "gn_groups": 8}, supernet={"width_mult": 0.25, "language_dim": 384},
               genome=[[0] * 20, [0] * 20, [0] * 4, [0] * 4])
    return build_model(cfg, pretrained=False), build_info(cfg), experiments_dir() / "vlt_scar" / "track.yaml", []


def _tiny_ctrtnl():
    """The tiny CTRTNL, untrained, with a threshold below every AdaRS score (every frame local)."""
    from asearch.training.recipes import load_experiment
    from trackers.language_width import resolve_language_dim
    from trackers.registry import build_info, build_model, model_config

    path = experiments_dir() / "ctrtnl" / "tiny.yaml"
    cfg = model_config(resolve_language_dim(load_experiment(path).model, 384, None, "sentence", str(path)))
    return (build_model(cfg), build_info(cfg), experiments_dir() / "ctrtnl" / "track.yaml",
            ["--set", "tracker.threshold=-3.0"])


@pytest.fixture(scope="module")
def grounding_run(tmp_path_factory):
    """A tiny grounding model retrained for 2 steps through ``asearch retrain`` on 4 synthetic videos."""
    from asearch.cli import main
    from asearch.data.synthetic import generate_benchmark

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("grounding")
    root = generate_benchmark(tmp / "synth", videos=4, frames=4, size=96, seed=0, distractors=0)
    out = tmp / "grd"
    sets = [f"data.datasets.0.root={root}", "train.steps=2", "train.batch_size=2", "train.device=cpu"]
    assert main(["retrain", "--config", str(TINY), "--out", str(out), "--no-progress",
                 *[a for kv in sets for a in ("--set", kv)]]) == 0
    return root, out / "checkpoints" / "latest.pt"


@pytest.mark.parametrize("family", ["vlt_scar", "ctrtnl"])
def test_track_init_language_and_evaluate(family, grounding_run, tmp_path):
    """``asearch track --init language --grounding CKPT`` with VLT_SCAR and with CTRTNL (NL setting): row 1 of
    every results file is the grounding model's box, then ``asearch evaluate --first-frame predicted``."""
    from asearch.cli import main
    from asearch.data.registry import build_dataset
    from asearch.evaluation.results import read_results
    from trackers.grounding import load_grounding

    torch.set_num_threads(1)
    root, ckpt = grounding_run
    torch.manual_seed(0)
    model, info, track_yaml, extra = {"vlt_scar": _tiny_vlt_scar, "ctrtnl": _tiny_ctrtnl}[family]()
    tracker = tmp_path / f"{family}.pt"
    torch.save({"model": model.state_dict(), "build_info": info}, tracker)
    results = tmp_path / "results" / f"{family}_nl"
    args = ["track", "--checkpoint", str(tracker), "--config", str(track_yaml), "--dataset", "synthetic",
            "--root", str(root), "--split", "all", "--out", str(results), "--batch", "2", "--no-progress",
            "--set", "device=cpu", "--set", "tracker.min_size=4", *extra]
    assert main(args + ["--init", "language"]) == 2                  # no --grounding: a named error
    assert main(args + ["--init", "language", "--grounding", str(ckpt)]) == 0
    grounding = load_grounding(ckpt)
    for seq in build_dataset("synthetic", root=root, split="all"):
        res = read_results(results, seq.name)
        assert res.shape == (4, 4) and np.all(np.isfinite(res))
        assert np.allclose(res[0], grounding(seq), atol=1e-3)        # row 1 is the predicted box, not the GT
        assert not np.allclose(res[0], seq.boxes[0])
    ev = tmp_path / "ev"
    assert main(["evaluate", "--results", str(results), "--dataset", "synthetic", "--root", str(root),
                 "--split", "all", "--out", str(ev), "--first-frame", "predicted"]) == 0
    data = json.loads((ev / "results.json").read_text())
    assert 0.0 <= data["trackers"][f"{family}_nl"]["suc"] <= 1.0


def test_paper_recipe_is_transvgs_and_its_model_builds_at_paper_size_on_meta():
    """experiments/grounding/paper.yaml as TransVG §4.2 states it (AdamW, 1e-4 / 1e-5 for the branches, weight
    decay 1e-4, batch 64, the lr divided by 10 after 60 of 90 epochs) and the 640-pixel model on ``meta``: 400
    visual tokens, BERT-base (108,891,648 parameters without pooler) over 40 tokens, and the box from [REG]."""
    from transformers import BertConfig

    from asearch.training.recipes import load_experiment
    from trackers.language_width import resolve_language_dim
    from trackers.models.grounding import build_grounding_model
    from trackers.registry import model_config

    path = experiments_dir() / "grounding" / "paper.yaml"
    paper = load_experiment(path)
    t = paper.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.schedule) == ("adamw", 1e-4, 1e-4, 64, "step")
    assert t.lr_mult == {"backbone": 0.1, "visual_encoder": 0.1, "text": 0.1}
    epoch = paper.data.pairs_per_epoch / t.batch_size
    assert t.steps == 90 * epoch and t.milestones == [60 * epoch] and t.gamma == 0.1
    assert (paper.loss["l1_weight"], paper.loss["giou_weight"]) == (1.0, 1.0)
    cfg = model_config(resolve_language_dim(paper.model, 768, "bert-base-uncased", "sentence", str(path)))
    with torch.device("meta"):
        model = build_grounding_model(cfg, pretrained=False, text_config=BertConfig()).eval()
        lang = {"ids": torch.zeros(2, 40, dtype=torch.long), "mask": torch.ones(2, 40, dtype=torch.bool),
                "has_text": torch.ones(2, dtype=torch.bool)}
        out = model(torch.empty(2, 3, 640, 640), lang)
    assert out["boxes"].shape == (2, 4)
    assert model.visual_side == 20 and model.vl_pos.shape == (1, 1 + 400 + 40, 256)
    assert sum(p.numel() for p in model.text.parameters()) == 108_891_648
    assert len(model.vl.layers) == 6 and len(model.visual_encoder.layers) == 6


@pytest.mark.outcome
def test_tiny_grounding_beats_a_centred_box_on_first_frames(tmp_path, outcome):
    """Issue 24: a tiny grounding model trained on the synthetic benchmark's first frames (60 videos of 2 frames,
    200 steps) gives test-split first-frame boxes with a mean IoU above that of a centred box of the training
    targets' mean size (the best box that ignores image and sentence), by more than GROUNDING_MARGIN.

    Measured 2026-12-08 (``python benchmarks/outcome_margins.py -k centred --seeds 0 1 2 --threads 1 2``; ~25 s per
    run on one core): IoU gain 0.065 / 0.298 / 0.141 (seeds 0 / 1 / 2, 1 thread), 0.049 / 0.218 / 0.226 (2 threads);
    the centred box scores 0.054. The smallest gain, 0.049 (seed 0 / 2 threads), is 2.45x the 0.02 asserted; seed 0
    is the weak one at both thread counts (grounding IoU 0.10-0.12), so this tiny model is only modestly better than
    the blind box there."""
    from asearch.data.registry import build_dataset
    from asearch.data.synthetic import generate_benchmark
    from asearch.evaluation.metrics import iou
    from asearch.training.recipes import build_experiment, load_experiment
    from trackers.grounding import GroundingPredictor

    root = generate_benchmark(tmp_path / "synth", videos=60, frames=2, size=96, seed=0, distractors=0)
    cfg = load_experiment(TINY, [f"data.datasets.0.root={root}", "train.steps=200", "train.device=cpu",
                                 "train.checkpoint_every=0", f"train.seed={outcome.seed}"])
    exp = build_experiment(cfg, "retrain", out_dir=tmp_path / "run", progress=False)
    exp.train()
    predictor = GroundingPredictor(exp.model, missing="zero")
    train = list(build_dataset("synthetic", root=root, split="train"))
    test = list(build_dataset("synthetic", root=root, split="test"))
    size = np.mean([seq.boxes[0][2:] for seq in train], axis=0)
    predicted, centred, gt = [], [], []
    for seq in test:
        h, w = seq.frame(0).shape[:2]
        predicted.append(predictor(seq))
        centred.append([(w - size[0]) / 2, (h - size[1]) / 2, size[0], size[1]])
        gt.append(seq.boxes[0])
    model_iou = float(iou(np.array(predicted), np.array(gt)).mean())
    centred_iou = float(iou(np.array(centred), np.array(gt)).mean())
    outcome.check("first-frame IoU over the centred box", model_iou - centred_iou, GROUNDING_MARGIN,
                  f"IoU grounding {model_iou:.3f}, centred box {centred_iou:.3f} on {len(test)} test videos")
