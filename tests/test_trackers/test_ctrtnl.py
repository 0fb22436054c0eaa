"""CTRTNL (paper 004) wired end to end: the tiny model and its self-describing checkpoint, Algorithm 1 in the
tracker (a threshold above every AdaRS score goes global, one below every score stays local), language once per
video, batched == single, the untrained tiny tracker through ``asearch track`` / ``evaluate``, the loss on
hand-made cases, the tiny recipe through ``asearch retrain``, the YAMLs and the paper-size model on ``meta``."""
import json

import numpy as np
import pytest
import torch

from asearch.config import experiments_dir

TINY = experiments_dir() / "ctrtnl" / "tiny.yaml"
PAPER = experiments_dir() / "ctrtnl" / "paper.yaml"
TRACK = experiments_dir() / "ctrtnl" / "track.yaml"


def _model_cfg(path, width, encoder=None, **changes):
    from asearch.training.recipes import load_experiment
    from trackers.language_width import resolve_language_dim
    from trackers.registry import model_config

    raw = dict(load_experiment(path).model, **changes)
    return model_config(resolve_language_dim(raw, width, encoder, "sentence", str(path)))


@pytest.fixture(scope="module")
def tiny():
    from trackers.registry import build_model

    torch.manual_seed(0)
    cfg = _model_cfg(TINY, 384)
    return build_model(cfg).eval(), cfg


class Missing:
    """The part of a featurizer CTRTNL reads: the ``language.missing`` strategy."""

    dim = 384

    def __init__(self, missing="zero"):
        self.missing = missing


def _frames(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (96, 120, 3), dtype=np.uint8) for _ in range(n)]


def _tracker(model, cfg, threshold, **extra):
    from trackers.registry import build_tracker

    return build_tracker(model, cfg, dict(min_size=4, threshold=threshold, **extra), featurizer=Missing(),
                         device="cpu")


def test_registry_entry_shapes_and_frozen_local(tiny):
    from trackers.models.ctrtnl import CTRTNL
    from trackers.registry import model_names

    model, cfg = tiny
    assert "ctrtnl" in model_names() and isinstance(model, CTRTNL)
    assert not any(p.requires_grad for p in model.local.parameters())
    assert not any(p.requires_grad for p in model.text.parameters())          # frozen MiniLM (tiny.yaml)
    model.train()
    assert not model.local.training and model.adars.training
    model.eval()
    lang = model.tokenize(["a red ball", ""], torch.tensor([True, False]))
    with torch.no_grad():
        state = model.template(torch.rand(2, 3, 63, 63) * 255, lang)
        out = model.track(torch.rand(2, 3, 127, 127) * 255, state)
        boxes = torch.tensor([[[10.0, 10, 40, 50]] * 5] * 2)
        scores = model.score_proposals(out["features"], boxes, state["text"])["scores"]
    assert state["target"].shape == (2, 32, 7, 7) and state["semantic"].shape == (2, 32)
    assert state["words"][1].abs().sum() == 0                                  # no text: zero words
    assert out["features"].shape == (2, 32, 16, 16) and scores.shape == (2, 5)
    assert torch.all(scores.abs() <= 2 + 1e-5)                                 # Eq. 19


def test_checkpoint_rebuilds_the_model(tiny, tmp_path):
    from trackers.registry import build_info, load_model

    model, cfg = tiny
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "build_info": build_info(cfg)}, path)
    rebuilt, cfg2 = load_model(path)
    assert cfg2.name == "ctrtnl" and cfg2.text.encoder == "default" and cfg2.neck.channels == 32
    lang = model.tokenize(["a red ball"], torch.tensor([True]))
    z = torch.rand(1, 3, 63, 63) * 255
    with torch.no_grad():
        a, b = model.template(z, lang), rebuilt.eval().template(z, lang)
    assert torch.allclose(a["semantic"], b["semantic"], atol=1e-5)
    assert torch.allclose(a["text"]["global"], b["text"]["global"], atol=1e-5)


def test_local_checkpoint_loads_a_trained_siamrpnpp(tmp_path):
    from asearch.errors import CheckpointError, ConfigError
    from trackers.init_report import null_pretrained_warnings
    from trackers.models.ctrtnl import LOCAL_INIT
    from trackers.registry import build_info, build_model

    torch.manual_seed(1)
    rpn_cfg = _model_cfg(experiments_dir() / "siamrpnpp" / "tiny.yaml", 384)
    rpn = build_model(rpn_cfg, pretrained=False)
    path = tmp_path / "rpn.pt"
    torch.save({"model": rpn.state_dict(), "build_info": build_info(rpn_cfg)}, path)
    cfg = _model_cfg(TINY, 384, local_checkpoint=str(path))
    net = build_model(cfg)
    assert all(torch.equal(a, b) for a, b in zip(net.local.state_dict().values(), rpn.state_dict().values()))
    assert null_pretrained_warnings(cfg, (LOCAL_INIT,)) == []
    assert "local_checkpoint is null" in null_pretrained_warnings(_model_cfg(TINY, 384), (LOCAL_INIT,))[0]
    with pytest.raises(ConfigError, match="does not exist"):
        build_model(_model_cfg(TINY, 384, local_checkpoint=str(tmp_path / "none.pt")))
    torch.save({"model": net.state_dict(), "build_info": build_info(cfg)}, tmp_path / "ctr.pt")
    with pytest.raises(CheckpointError, match="must be a siamrpnpp checkpoint"):
        build_model(_model_cfg(TINY, 384, local_checkpoint=str(tmp_path / "ctr.pt")))


def test_threshold_above_every_score_goes_global_below_stays_local(tiny):
    model, cfg = tiny
    frames = _frames()
    for threshold, mode in ((3.0, "global"), (-3.0, "local")):               # Eq. 19 lies in [-2, 2]
        trk = _tracker(model, cfg, threshold)
        trk.initialize(frames[0], [30, 30, 20, 20], "a red ball")
        for f in frames[1:]:
            r = trk.track(f)
            assert r["mode"] == mode and r["threshold"] == threshold
            assert len(r["adars_scores"]) == 5 and r["adars_score"] == pytest.approx(max(r["adars_scores"]))
            assert (r["tsr_score"] is None) == (mode == "local")
            x, y, w, h = r["box"]
            assert r["search_box"] == pytest.approx((x, y, x + w, y + h), abs=1e-3) or mode == "local"
            video = trk._videos[0]
            assert np.allclose(video["center"], [x + w / 2, y + h / 2]) and np.allclose(video["size"], [w, h])
            if mode == "local":                                                # Alg. 1 line 18: B_i = C_id
                assert np.allclose(r["box"], r["proposals"][r["proposal"]], atol=1e-3)


def test_tracker_needs_a_threshold(tiny):
    from asearch.errors import ConfigError
    from trackers.registry import build_tracker

    model, cfg = tiny
    with pytest.raises(ConfigError, match="threshold"):
        build_tracker(model, cfg, {"min_size": 4}, featurizer=Missing(), device="cpu")
    with pytest.raises(ConfigError, match="topk"):
        _tracker(model, cfg, 0.0, topk=0)


def test_language_once_per_video(tiny):
    model, cfg = tiny
    frames = _frames()
    calls = []
    original = model.words
    model.words = lambda language: calls.append(1) or original(language)
    try:
        trk = _tracker(model, cfg, 3.0)
        trk.initialize_batch([frames[0]] * 2, [[30, 30, 20, 20], [20, 40, 24, 16]], ["a red ball", None])
        for f in frames[1:]:
            trk.track_batch([f, f])
    finally:
        del model.words
    assert len(calls) == 1                                                     # both videos, once


@pytest.mark.parametrize("threshold", [3.0, -3.0])
def test_tracker_batched_equals_single(tiny, threshold):
    model, cfg = tiny
    frames = _frames()
    boxes, texts = [[30, 30, 20, 20], [20, 40, 24, 16]], ["a red ball", "the long green sentence about a box"]
    trk = _tracker(model, cfg, threshold)
    trk.initialize_batch([frames[0]] * 2, boxes, texts)
    both = [trk.track_batch([f, f]) for f in frames[1:]]
    for i in range(2):
        trk.initialize(frames[0], boxes[i], texts[i])
        single = [trk.track(f) for f in frames[1:]]
        for a, b in zip(single, both):
            assert a["mode"] == b[i]["mode"]
            assert np.allclose(a["box"], b[i]["box"], atol=1e-3)
            assert np.allclose(a["adars_scores"], b[i]["adars_scores"], atol=1e-4)


def test_untrained_tiny_tracker_through_track_and_evaluate(tiny, tmp_path, check_track_results):
    from asearch.cli import main
    from asearch.data.synthetic import generate_benchmark
    from trackers.registry import build_info

    model, cfg = tiny
    torch.set_num_threads(1)
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "build_info": build_info(cfg)}, ckpt)
    root = generate_benchmark(tmp_path / "synth", videos=3, frames=4, size=96, seed=0, distractors=0)
    results = tmp_path / "results" / "ctrtnl"
    sets = ["device=cpu", "tracker.min_size=4", "tracker.threshold=3.0"]      # every frame goes through TSR
    assert main(["track", "--checkpoint", str(ckpt), "--config", str(TRACK), "--dataset", "synthetic",
                 "--root", str(root), "--split", "all", "--out", str(results), "--batch", "2", "--no-progress",
                 *[a for kv in sets for a in ("--set", kv)]]) == 0
    check_track_results(results, videos=3, frames=4)
    names = sorted(p.stem for p in results.glob("*.txt"))
    for name in names:  # the switch's decision per frame, beside the boxes
        info = json.loads((results / f"{name}_info.json").read_text())
        assert [row["mode"] for row in info["frames"]] == ["init", "global", "global", "global"]
        assert all(row["threshold"] == 3.0 and row["adars_score"] < 3.0 for row in info["frames"][1:])
    ev = tmp_path / "ev"
    assert main(["evaluate", "--results", str(results), "--dataset", "synthetic", "--root", str(root),
                 "--split", "all", "--out", str(ev)]) == 0
    assert 0.0 <= json.loads((ev / "results.json").read_text())["trackers"]["ctrtnl"]["suc"] <= 1.0
    assert sorted(p.stem for p in (ev / "switch" / "ctrtnl").glob("*.png")) == names   # plotted over each video


def test_foreground_targets_by_hand():
    from trackers.losses.ctrtnl import foreground_targets

    # one 2x2-bin proposal over [0, 4] x [0, 4]: bin centres at 1 and 3; the box [2, 0, 4, 2] holds (3, 1) only
    t = foreground_targets(torch.tensor([[[0.0, 0, 4, 4]]]), torch.tensor([[2.0, 0, 4, 2]]), 2)
    assert t.tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]


def test_loss_parts_positives_and_gradients(tiny):
    from trackers.losses.ctrtnl import CTRTNLLoss, CTRTNLLossConfig

    model, _ = tiny
    torch.manual_seed(0)
    z, x = torch.rand(3, 3, 63, 63) * 255, torch.rand(3, 3, 127, 127) * 255
    gt = torch.tensor([[40.0, 40, 80, 80], [50, 30, 90, 70], [30, 30, 70, 60]])
    lang = model.tokenize(["a red ball", "a blue box", ""], torch.tensor([True, True, False]))
    model.train()
    try:
        out = model(z, x, lang, search_box=gt, proposals=4)
        assert out["proposals"].shape == (3, 5, 4) and torch.equal(out["proposals"][:, -1], gt)
        loss, stats = CTRTNLLoss(CTRTNLLossConfig(proposals=4))(out, gt)
        # positives: at least the ground-truth proposal of each of the two items with text, none of the third
        assert stats["positives"] >= 2 and set(stats) >= {"aln", "div_p", "div_lv", "bce", "selector", "total"}
        assert stats["total"] == pytest.approx(stats["aln"] + stats["div_p"] + stats["div_lv"] + stats["bce"]
                                               + stats["selector"], rel=1e-5)
        model.zero_grad()
        loss.backward()
    finally:
        model.eval()
    assert model.adars.oam.keys.grad is not None and model.selector.guide.grad is not None
    assert all(p.grad is None for p in model.local.parameters())
    _, neg = CTRTNLLoss()(out, gt, positive_pairs=torch.tensor([1, 0, 1]))    # one pair with text left
    assert neg["positives"] < stats["positives"] and neg["aln"] == 0.0


def test_tiny_recipe_retrains_and_the_checkpoint_rebuilds(tiny_cli_run):
    from trackers.registry import rebuild_model

    ckpt, run = tiny_cli_run("ctrtnl", TINY, ["train.steps=4"], ["tracker.min_size=4", "tracker.threshold=0.0"])
    assert ckpt["build_info"]["model"]["name"] == "ctrtnl" and int(ckpt["step"]) == 4
    model, cfg = rebuild_model(ckpt)
    assert cfg.text.encoder == "default" and cfg.text.width == 384
    header = (run / "train_log.csv").read_text().splitlines()[0]
    assert "aln" in header and "selector" in header


def test_yamls_load_and_config_errors():
    from asearch.commands.track import load_track_config
    from asearch.config import from_dict
    from asearch.errors import ConfigError
    from trackers.inference.ctrtnl import CTRTNLTrackerConfig
    from trackers.registry import model_config

    t = from_dict(CTRTNLTrackerConfig, load_track_config(str(TRACK)).tracker)
    assert t.topk == 5 and t.tsr_topk == 3
    from asearch.training.recipes import load_experiment
    from trackers.losses.ctrtnl import CTRTNLLossConfig

    paper = load_experiment(PAPER)
    loss = from_dict(CTRTNLLossConfig, paper.loss)
    assert (loss.margin, loss.max_violation, loss.div_weight, loss.bce_weight) == (0.2, True, 1.0, 1.0)
    assert from_dict(CTRTNLTrackerConfig, paper.tracker).threshold is not None
    m = _model_cfg(PAPER, 768, "bert-base-uncased")
    assert (m.neck.channels, m.pool_size, m.adars.slots, m.adars.parts, m.adars.local_prototypes) == (256, 7, 16, 4, 4)
    with pytest.raises(ConfigError, match="genome"):
        model_config({"name": "ctrtnl", "genome": [[0]]})
    with pytest.raises(ConfigError, match="must divide model.neck.channels"):
        model_config({"name": "ctrtnl", "neck": {"channels": 40}})


def test_paper_size_parameter_count_on_meta():
    from transformers import BertConfig

    from trackers.models.ctrtnl import build_ctrtnl_model

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    cfg = _model_cfg(PAPER, 768, "bert-base-uncased")
    with torch.device("meta"):
        model = build_ctrtnl_model(cfg, pretrained=False, text_config=BertConfig())
        state = model.eval().local.template(torch.empty(2, 3, 127, 127))     # (GPO's unique() has no meta kernel)
        out = model.track(torch.empty(2, 3, 255, 255), state)
        assert out["features"].shape == (2, 256, 32, 32) and model.fuse(state["kernels"]).shape == (2, 256, 7, 7)
    parts = (count(model.local), count(model.text), count(model.adars), count(model.selector))
    assert parts == PAPER_PARTS and count(model) == sum(PAPER_PARTS)


# SiamRPN++ 31,930,528 (the toolkit's ResNet-50 with 1x1 projection shortcuts, as experiments/siamrpnpp/
# siamrpnpp.yaml says: pysot's has 54.0 M), BERT-base without pooler 108,891,648, AdaRS 4,233,808, TSR's selector
# 1,260,817: 146,316,801 in all. The paper gives no parameter count (nor a speed) to compare with.
PAPER_PARTS = (31_930_528, 108_891_648, 4_233_808, 1_260_817)
