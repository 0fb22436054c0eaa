"""COST (paper 003): CoA on a hand-computed case, the positives of its candidates, the paper-size model on ``meta``
(shapes, parameter count per component against Tab. 9 / §5.9), the YAMLs, a self-describing checkpoint, language
once per video, lockstep tracking, and the tiny recipe through ``asearch retrain`` / ``track`` / ``evaluate``."""
import math

import numpy as np
import pytest
import torch

from asearch.config import experiments_dir

TINY = experiments_dir() / "cost" / "tiny.yaml"
PAPER = experiments_dir() / "cost" / "paper.yaml"


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
    """The part of a featurizer COST reads: the ``language.missing`` strategy."""

    dim = 384

    def __init__(self, missing):
        self.missing = missing


def test_coa_on_two_pairs_by_hand():
    """Eq. 6-8 with b = 2: the denominator holds the one negative only (1[j ≠ i]); τ = 0.5."""
    from supernets.contrastive import contrastive_loss

    e_v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e_l = torch.tensor([[1.0, 1.0], [0.0, 2.0]])        # cosines: s = [[1/√2, 0], [1/√2, 1]]
    s11, s12, s21, s22 = 1 / math.sqrt(2), 0.0, 1 / math.sqrt(2), 1.0
    t = 0.5
    v2l = ((s12 - s11) + (s21 - s22)) / t / 2           # -log(e^{s_ii/τ} / e^{s_ij/τ}), mean over i
    l2v = ((s21 - s11) + (s12 - s22)) / t / 2           # rows of sim(F^l, F^v): the columns of s
    expected = (v2l + l2v) / 2
    assert contrastive_loss(e_v, e_l, 1 / t, exclude_positive=True).item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="needs 2"):
        contrastive_loss(e_v[:1], e_l[:1], 2.0, exclude_positive=True)


def test_coa_of_the_model_leaves_out_pairs_without_language(tiny):
    model, _ = tiny
    lang = model.tokenize(["a red ball", "a blue box", ""], torch.tensor([True, True, False]))
    torch.manual_seed(0)
    f_v = torch.randn(3, model.visual_side ** 2, 32)
    with torch.no_grad():
        words = model.words(lang)
        all3 = model.coa(f_v, words)
        two = model.coa(f_v[:2], {k: v[:2] for k, v in words.items()})
        masked = model.coa(f_v, words, torch.tensor([True, False, True]))   # one pair left: no negative
    assert all3.item() == pytest.approx(two.item(), abs=1e-6) and masked.item() == 0.0


def test_positives_lie_on_the_visual_grid_only():
    from trackers.losses.cost import COSTLoss

    loss = COSTLoss(visual_side=3, offset=16.0)           # cells at 16, 24, 32 px (stride 8)
    pos = loss.positives(torch.tensor([[20.0, 10.0, 33.0, 25.0]]), 3 * 3 + 3, 8)
    grid = pos[0, :9].view(3, 3)
    # columns: 20 <= 16 + 8c < 33 -> c = 1, 2; rows: 10 <= 16 + 8r < 25 -> r = 0, 1
    assert grid.tolist() == [[False, True, True], [False, True, True], [False, False, False]]
    assert not pos[0, 9:].any()                          # words and [OBJ]: background


def test_paper_size_shapes_and_parameter_count_on_meta():
    from transformers import BertConfig

    from trackers.models.cost import build_cost_model

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    totals = {}
    for layers in (6, 4, 2):
        cfg = _model_cfg(PAPER, 768, "bert-base-uncased", vl_layers=layers)
        with torch.device("meta"):
            model = build_cost_model(cfg, pretrained=False, text_config=BertConfig()).eval()
            if layers == 6:
                lang = {"ids": torch.zeros(2, 40, dtype=torch.long), "mask": torch.ones(2, 40, dtype=torch.bool),
                        "has_text": torch.ones(2, dtype=torch.bool)}
                state = model.template(torch.empty(2, 3, 128, 128), lang)
                out = model.track(torch.empty(2, 3, 256, 256), state)
                assert state["f_l"].shape == (2, 40, 768) and state["tokens"].shape == (2, 256, 256)
                assert out["logits"].shape == (2, 441, 2) and out["boxes"].shape == (2, 441, 4)
                assert model.visual_side == 20 and model.window_size == 21 and model.visual_offset == 48
                # BERT-base without pooler 108,891,648; ResNet-50 to layer3 8,543,296, 1x1 conv 262,400,
                # fusion network 13,945,600, three 5x5 convs 4,915,968 (visual 27,667,264); VLT: projections
                # 65,792 + 196,864, [OBJ] 256, positions 441 x 256, 6 layers x 1,315,072; CoA's g_v, g_l 262,656;
                # head 67,334.
                parts = (count(model.text), count(model.backbone), count(model.input_proj), count(model.fusion),
                         count(model.convs), count(model.vl_layers), count(model.g_v) + count(model.g_l),
                         count(model.head))
                assert parts == (108_891_648, 8_543_296, 262_400, 13_945_600, 4_915_968, 7_890_432, 262_656,
                                 67_334)
        totals[layers] = count(model)
    assert totals == {6: 145_155_142, 4: 142_524_998, 2: 139_894_854}
    for layers, paper in ((6, 146.5e6), (4, 143.9e6), (2, 141.3e6)):   # Tab. 9; within 1 %
        assert abs(totals[layers] / paper - 1) < 0.01


def test_every_cost_yaml_loads_and_the_paper_recipe_is_the_papers():
    from asearch.commands.track import load_track_config
    from asearch.config import from_dict
    from asearch.training.recipes import load_experiment
    from trackers.inference.transt import TransTTrackerConfig

    names = sorted(p.name for p in (experiments_dir() / "cost").glob("*.yaml"))
    assert {"paper.yaml", "tiny.yaml", "track.yaml"} <= set(names)
    from_dict(TransTTrackerConfig, load_track_config(str(experiments_dir() / "cost" / "track.yaml")).tracker)
    paper = load_experiment(PAPER)
    t = paper.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size) == ("adamw", 1e-4, 1e-4, 14)
    assert t.steps * t.batch_size == 1000 * 4200 and paper.data.pairs_per_epoch == 4200
    loss = paper.loss
    assert (loss["cls_weight"], loss["l1_weight"], loss["giou_weight"], loss["contrastive_weight"]) == (1, 5, 2, 1)
    m = _model_cfg(PAPER, 768, "bert-base-uncased")
    assert (m.coa_temperature, m.vl_layers, m.vl_dim, m.text.max_length, m.conv_kernel) == (0.5, 6, 256, 40, 5)
    for name in names:
        if name.startswith("ablation_"):
            load_experiment(experiments_dir() / "cost" / name)


def test_config_errors():
    from asearch.errors import ConfigError
    from trackers.registry import build_model, model_config

    with pytest.raises(ConfigError, match="coa_temperature must be > 0"):
        model_config({"name": "cost", "coa_temperature": 0})
    with pytest.raises(ConfigError, match="leave nothing"):
        build_model({"name": "cost", "template_size": 64, "search_size": 128, "num_convs": 4, "conv_kernel": 5,
                     "d_model": 32, "nhead": 4, "resnet": {"width_mult": 0.125}, "text": {"encoder": "default"}},
                    pretrained=False)
    model = build_model({"name": "cost", "template_size": 64, "search_size": 128, "d_model": 32, "nhead": 4,
                         "num_fusion_layers": 1, "dim_feedforward": 32, "resnet": {"width_mult": 0.125},
                         "conv_kernel": 3, "text": {"encoder": "default", "max_length": 21}, "vl_dim": 32,
                         "vl_heads": 4, "vl_layers": 1}, pretrained=False)
    with pytest.raises(ConfigError, match="no square window"):
        model.window_size


def test_checkpoint_rebuilds_the_model(tiny, tmp_path):
    from trackers.registry import build_info, load_model

    model, cfg = tiny
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "build_info": build_info(cfg)}, path)
    rebuilt, cfg2 = load_model(path)
    assert cfg2.name == "cost" and cfg2.text.encoder == "default" and cfg2.text.max_length == 20
    torch.manual_seed(1)
    z, x = torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 3, 128, 128) * 255
    lang = model.tokenize(["a red ball"], torch.tensor([True]))
    with torch.no_grad():
        a, b = model(z, x, lang), rebuilt.eval()(z, x, lang)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-5) and "contrastive" not in a


def test_ablations_obj_token_and_no_vlt(tiny):
    from trackers.registry import build_model

    _, cfg = tiny
    torch.manual_seed(0)
    z, x = torch.rand(2, 3, 64, 64) * 255, torch.rand(2, 3, 128, 128) * 255
    for changes in ({"obj_token": False}, {"vl_layers": 0}):
        net = build_model(dict(cfg.__dict__, text=dict(cfg.text.__dict__), resnet=dict(cfg.resnet.__dict__),
                               **changes), pretrained=True).eval()
        lang = net.tokenize(["a red ball", ""], torch.tensor([True, False]))
        with torch.no_grad():
            out = net(z, x, lang)
        assert out["logits"].shape == (2, 121, 2)
        assert (net.obj is None) == ("obj_token" in changes) and len(net.vl_layers) == (0 if "vl_layers" in changes
                                                                                       else 2)


def test_language_once_per_video_and_missing_language(tiny):
    from trackers.actors.base import batch_language
    from trackers.registry import build_tracker

    model, cfg = tiny
    batch = {"sentence": ["a red ball", "a red ball", None], "has_language": [True, False, False],
             "attributes": [None, None, None]}
    zero = batch_language(model, batch, Missing("zero"), torch.device("cpu"))
    assert zero["has_text"].tolist() == [True, False, False] and zero["ids"].shape == (3, 20)
    with torch.no_grad():
        f_l = model.words(zero)["f_l"]
    assert f_l[0].abs().sum() > 0 and f_l[1:].abs().sum() == 0            # zero_missing

    frame = np.full((96, 96, 3), 90, np.uint8)
    frame[30:50, 30:50] = (200, 30, 30)
    calls, got = [], {}
    original = model.words
    model.words = lambda language: calls.append(1) or original(language)
    try:
        for missing, language in (("zero", None), ("zero", ""), ("attribute", None), ("zero", "a red ball")):
            trk = build_tracker(model, cfg, {"min_size": 4}, featurizer=Missing(missing), device="cpu")
            trk.initialize(frame, [30, 30, 20, 20], language)
            got[(missing, language)] = [trk.track(frame)["score"] for _ in range(3)]
    finally:
        del model.words
    assert len(calls) == 4                                                   # once per video, not per frame
    assert got[("zero", None)] == got[("zero", "")]
    assert got[("attribute", None)] != got[("zero", None)]
    assert got[("zero", "a red ball")] != got[("zero", None)]


def test_tracker_batched_equals_single(tiny):
    from trackers.inference.cost import COSTTracker
    from trackers.registry import build_tracker

    model, cfg = tiny
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(3)]
    boxes, texts = [[30, 30, 20, 20], [20, 40, 24, 16]], ["a red ball", "the long green sentence about a box"]
    trk = build_tracker(model, cfg, {"min_size": 4}, featurizer=Missing("zero"), device="cpu")
    assert isinstance(trk, COSTTracker) and trk.window.numel() == 121
    trk.initialize_batch([frames[0]] * 2, boxes, texts)
    both = [trk.track_batch([f, f]) for f in frames[1:]]
    for i in range(2):
        trk.initialize(frames[0], boxes[i], texts[i])
        single = [trk.track(f) for f in frames[1:]]
        for a, b in zip(single, both):
            assert np.allclose(a["box"], b[i]["box"], atol=1e-3) and abs(a["score"] - b[i]["score"]) < 1e-5


def test_tiny_recipe_retrains_tracks_and_evaluates_through_the_cli(tiny_cli_run):
    ckpt, run = tiny_cli_run("cost", TINY, [], ["tracker.min_size=4"], metrics=["cauc", "macc"])
    assert ckpt["build_info"]["model"]["text"] == {"encoder": "default", "width": 384, "trainable": False,
                                                   "max_length": 20}
    log = (run / "train_log.csv").read_text()
    assert "loss_contrastive" in log.splitlines()[0]
