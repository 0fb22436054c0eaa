"""PJVLT (paper 001): the paper-size model on ``meta`` (shapes, parameter count), the YAMLs, a self-describing
checkpoint, language once per video and ``language.missing``, lockstep tracking, and the tiny recipe through
``asearch retrain`` / ``track`` / ``evaluate``."""
import copy

import numpy as np
import pytest
import torch

from asearch.config import experiments_dir

TINY = experiments_dir() / "pjvlt" / "tiny.yaml"
PAPER = experiments_dir() / "pjvlt" / "paper.yaml"


def _model_cfg(path, width, encoder=None):
    from asearch.training.recipes import load_experiment
    from trackers.language_width import resolve_language_dim
    from trackers.registry import model_config

    cfg = load_experiment(path)
    return model_config(resolve_language_dim(cfg.model, width, encoder, "sentence", str(path)))


@pytest.fixture(scope="module")
def tiny():
    from trackers.registry import build_model

    torch.manual_seed(0)
    cfg = _model_cfg(TINY, 384)
    return build_model(cfg).eval(), cfg


class Missing:
    """The part of a featurizer PJVLT reads: the ``language.missing`` strategy (and the MiniLM's width, checked)."""

    dim = 384

    def __init__(self, missing):
        self.missing = missing


def test_paper_size_shapes_and_parameter_count_on_meta():
    from transformers import BertConfig

    from trackers.models.pjvlt import build_pjvlt_model

    cfg = _model_cfg(PAPER, 768, "bert-base-uncased")
    assert cfg.text.encoder == "bert-base-uncased" and cfg.text.width == 768 and cfg.vit.ce_layers == []
    with torch.device("meta"):
        model = build_pjvlt_model(cfg, pretrained=False, text_config=BertConfig()).eval()
        lang = {"ids": torch.zeros(2, 40, dtype=torch.long), "mask": torch.ones(2, 40, dtype=torch.bool),
                "has_text": torch.ones(2, dtype=torch.bool)}
        state = model.template(torch.empty(2, 3, 128, 128), lang)
        out = model.track(torch.empty(2, 3, 256, 256), state)
    assert state["z"].shape == (2, 64, 768) and state["words"].shape == (2, 12, 40, 768)
    assert out["score_map"].shape == (2, 1, 16, 16) and out["size_map"].shape == (2, 2, 16, 16)
    assert out["offset_map"].shape == (2, 2, 16, 16) and out["pred_boxes"].shape == (2, 4)
    assert model.text.layers == 12 and len(model.saiel) == len(model.ccpil) == 12
    assert model.ccpil[0].num_tokens == 320 and model.ccpil[0].hidden_tokens == 640
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # ViT-B/16 without class token (patch embedding 590,592, positions (64 + 256) x 768, 12 blocks x 7,087,872,
    # norm) 85,892,352; BERT-base without pooler 108,891,648; 12 SAIELs x 1,329,216 (4 x 147,648 + θ_w 442,944
    # + θ_o 295,680); 12 CCPILs x 1,116,672; the center head 6,474,117. The paper states no count.
    parts = (count(model.backbone), count(model.text), count(model.saiel), count(model.ccpil), count(model.head))
    assert parts == (85_892_352, 108_891_648, 15_950_592, 13_400_064, 6_474_117)
    assert count(model) == 230_608_773


def test_every_pjvlt_yaml_loads_and_the_paper_recipe_is_the_papers():
    from asearch.commands.track import load_track_config
    from asearch.config import from_dict
    from asearch.training.recipes import load_experiment
    from trackers.inference.ostrack import OSTrackTrackerConfig

    names = sorted(p.name for p in (experiments_dir() / "pjvlt").glob("*.yaml"))
    assert names == ["paper.yaml", "tiny.yaml", "track.yaml"]
    from_dict(OSTrackTrackerConfig, load_track_config(str(experiments_dir() / "pjvlt" / "track.yaml")).tracker)
    paper = load_experiment(PAPER)
    t = paper.train
    assert (t.optimizer, t.lr, t.weight_decay, t.schedule, t.milestones, t.gamma) == (
        "adamw", 1e-4, 1e-4, "step", [112500], 0.1)
    assert t.lr_mult == {"backbone": 0.1, "text": 0.1, "saiel": 0.1, "ccpil": 0.1}   # 1e-5 for the encoder
    assert t.steps * t.batch_size * 4 == 300 * 60000 and paper.data.pairs_per_epoch == 60000   # 4 x 32 = 128
    assert [d.name for d in paper.data.datasets] == ["lasot", "got10k", "trackingnet", "coco"]
    assert paper.language.encoder == "bert-base-uncased"
    assert (paper.loss["focal_weight"], paper.loss["giou_weight"], paper.loss["l1_weight"]) == (1, 2, 5)
    tiny = _model_cfg(TINY, 384)
    assert tiny.text.encoder == "default" and tiny.vit.depth <= 6   # the packaged MiniLM has 6 layers


def test_config_errors():
    from asearch.errors import ConfigError
    from trackers.language_width import resolve_language_dim
    from trackers.registry import build_model, model_config

    with pytest.raises(ConfigError, match="ce_layers must be"):
        model_config({"name": "pjvlt", "vit": {"ce_layers": [3]}})
    with pytest.raises(ConfigError, match="model.text.encoder is 'x', but language.encoder is 'default'"):
        resolve_language_dim({"name": "pjvlt", "text": {"encoder": "x"}}, 384, None)
    deep = {"name": "pjvlt", "template_size": 64, "search_size": 128, "text": {"encoder": "default"},
            "vit": {"dim": 32, "depth": 7, "heads": 2, "ce_layers": []}, "head": {"channels": 16}}
    with pytest.raises(ConfigError, match="7 joint layers .* has 6"):
        build_model(deep, pretrained=False)


def test_checkpoint_from_another_machine_takes_the_encoder_path_it_is_given(tiny, tmp_path):
    """The checkpoint records the training machine's encoder folder; where it is missing, the rebuild fails naming it,
    and the language.encoder that `asearch track` passes (YAML or --set) replaces it: same weights, no file read."""
    from dataclasses import asdict

    from asearch.errors import ModelNotFoundError
    from asearch.language.encoder import default_model_dir
    from trackers.registry import build_info, rebuild_model

    model, cfg = tiny
    info = build_info(cfg)
    info["model"] = dict(info["model"], text=dict(asdict(cfg.text), encoder=str(tmp_path / "elsewhere" / "minilm")))
    ckpt = {"model": model.state_dict(), "build_info": info}
    with pytest.raises(ModelNotFoundError, match="elsewhere"):
        rebuild_model(ckpt, "ckpt.pt")
    rebuilt, cfg2 = rebuild_model(ckpt, "ckpt.pt", str(default_model_dir()))
    assert cfg2.text.encoder == str(default_model_dir())
    for key, value in model.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key


def test_checkpoint_rebuilds_the_model(tiny, tmp_path):
    from trackers.registry import build_info, load_model

    model, cfg = tiny
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "build_info": build_info(cfg)}, path)
    rebuilt, cfg2 = load_model(path)
    assert cfg2.name == "pjvlt" and cfg2.text.encoder == "default" and rebuilt.text.layers == 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key
    torch.manual_seed(1)
    z, x = torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 3, 128, 128) * 255
    lang = model.tokenize(["a red ball"], torch.tensor([True]))
    with torch.no_grad():
        a, b = model(z, x, lang), rebuilt.eval()(z, x, lang)
    assert torch.allclose(a["score_map"], b["score_map"], atol=1e-6)


def test_language_once_per_video_and_missing_language(tiny):
    from trackers.actors.pjvlt import batch_language
    from trackers.registry import build_tracker

    model, cfg = tiny
    batch = {"sentence": ["a red ball", "a red ball", None], "has_language": [True, False, False],
             "attributes": [None, None, None]}
    zero = batch_language(model, batch, Missing("zero"), torch.device("cpu"))
    assert zero["has_text"].tolist() == [True, False, False]
    with torch.no_grad():
        words = model.words(zero)["words"]
    assert words.shape[:2] == (3, 2) and words[0].abs().sum() > 0 and words[1:].abs().sum() == 0   # zero_missing
    attr = batch_language(model, batch, Missing("attribute"), torch.device("cpu"))
    assert attr["has_text"].tolist() == [True, True, True]
    assert batch_language(model, batch, None, torch.device("cpu"))["has_text"].tolist() == [False, False, False]

    frame = np.full((96, 96, 3), 90, np.uint8)
    frame[30:50, 30:50] = (200, 30, 30)

    def scores(net, runs):
        calls, out = [], {}
        original = net.words
        net.words = lambda language: calls.append(1) or original(language)
        try:
            for missing, language in runs:
                trk = build_tracker(net, cfg, {"margin": 4}, featurizer=Missing(missing), device="cpu")
                trk.initialize(frame, [30, 30, 20, 20], language)
                out[(missing, language)] = [trk.track(frame)["score"] for _ in range(3)]
        finally:
            del net.words
        assert len(calls) == len(runs)  # the language layers ran once per video, not per frame
        return out

    runs = (("zero", None), ("zero", ""), ("attribute", None), ("zero", "a red ball"))
    at_init = scores(model, runs)
    assert len({tuple(v) for v in at_init.values()}) == 1   # θ_w zero-initialised: the words do not act yet
    trained = copy.deepcopy(model)
    torch.manual_seed(0)
    for layer in trained.saiel:
        torch.nn.init.normal_(layer.w.weight, std=0.5)
    got = scores(trained, runs)
    assert got[("zero", None)] == got[("zero", "")]                 # no text: zero words either way
    assert got[("attribute", None)] != got[("zero", None)]          # attribute: the fallback words
    assert got[("zero", "a red ball")] != got[("zero", None)]


def test_tracker_batched_equals_single(tiny):
    from trackers.inference.pjvlt import PJVLTTracker
    from trackers.registry import build_tracker

    model, cfg = tiny
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(3)]
    boxes, texts = [[30, 30, 20, 20], [20, 40, 24, 16]], ["a red ball", "the long green sentence about a box"]
    trk = build_tracker(model, cfg, {"margin": 4}, featurizer=Missing("zero"), device="cpu")
    assert isinstance(trk, PJVLTTracker)
    trk.initialize_batch([frames[0]] * 2, boxes, texts)
    both = [trk.track_batch([f, f]) for f in frames[1:]]
    for i in range(2):
        trk.initialize(frames[0], boxes[i], texts[i])
        single = [trk.track(f) for f in frames[1:]]
        for a, b in zip(single, both):
            assert np.allclose(a["box"], b[i]["box"], atol=1e-3) and abs(a["score"] - b[i]["score"]) < 1e-5


def test_tiny_recipe_retrains_tracks_and_evaluates_through_the_cli(tiny_cli_run):
    ckpt, _ = tiny_cli_run("pjvlt", TINY, ["model.text.trainable=true"],   # the paper fine-tunes the language model
                           ["tracker.margin=4"])
    assert ckpt["build_info"]["model"]["text"] == {"encoder": "default", "width": 384, "trainable": True,
                                                   "max_length": 16}
    assert ckpt["build_info"]["language"]["missing"] == "zero"
