"""VLT_SCAR on the tiny real supernet/subnet, SiamCAR on a narrow ResNet, the actor, the registry, checkpoints and
`asearch track` end to end (width 0.25, 63/127 crops, neck 32, 2 head convs)."""
import copy
import json

import numpy as np
import pytest
import torch

from asearch.cli import main
from asearch.config import load_yaml
from asearch.errors import ArchitectureError, CheckpointError, ConfigError
from search_spaces.paths import PathSampler
from search_spaces.vlt import VLTSpace
from supernets import extract_subnet
from trackers.actors.siamcar import SiamCARActor
from trackers.inference.siamcar import SiamCARTracker, TrackerConfig
from trackers.losses.car import CARLossConfig
from trackers.models.vlt_scar import VLTSCAR
from trackers.registry import build_actor, build_info, build_model, build_tracker, load_model, model_config

TINY = {"name": "vlt_scar", "template_size": 63, "search_size": 127, "neck": {"channels": 32},
        "head": {"num_convs": 2, "gn_groups": 8}, "supernet": {"width_mult": 0.25, "language_dim": 8}}


def genome(seed=0):
    return VLTSpace().random(seed)


@pytest.fixture(scope="module")
def supernet_model():
    torch.manual_seed(0)
    return build_model(TINY).eval()


def pair_batch(b=2, dim=8):
    g = torch.Generator().manual_seed(1)
    return {"template": torch.rand(b, 3, 63, 63, generator=g) * 255, "search": torch.rand(b, 3, 127, 127, generator=g) * 255,
            "template_box": torch.tensor([[16.0, 16.0, 46.0, 46.0]] * b),
            "search_box": torch.tensor([[40.0, 50.0, 80.0, 84.0]] * b),
            "label": torch.tensor([1] + [0] * (b - 1)),
            "sentence": ["a red ball", ""][:b], "attributes": [None] * b, "has_language": [True, False][:b],
            "language_strategy": [None, "template"][:b]}


def test_shapes_and_template_track_split(supernet_model):
    m = supernet_model
    assert m.needs_genome and m.score_size == 10 and m.location_offset == 31.0
    b = pair_batch()
    lang = torch.randn(2, 8)
    g = genome()
    out = m(b["template"], b["search"], lang, genome=g)
    assert out["cls"].shape == (2, 2, 10, 10) and out["cen"].shape == (2, 1, 10, 10) and out["loc"].shape == (2, 4, 10, 10)
    state = m.template(b["template"], lang, genome=g)
    assert "features" not in state["backbone"]       # big template maps are not cached
    split = m.track(b["search"], state)
    for k in ("cls", "cen", "loc"):
        torch.testing.assert_close(split[k], out[k], atol=1e-5, rtol=1e-5)
    with pytest.raises(ArchitectureError, match="genome"):
        m(b["template"], b["search"], lang)


def test_subnet_model_matches_supernet_model_on_its_path(supernet_model):
    g = genome(3)
    sub = VLTSCAR(extract_subnet(supernet_model.backbone, g), copy.deepcopy(supernet_model.neck),
                  copy.deepcopy(supernet_model.head), template_size=63, search_size=127).eval()
    assert not sub.needs_genome
    b = pair_batch()
    lang = torch.randn(2, 8)
    a = supernet_model(b["template"], b["search"], lang, genome=g)
    c = sub(b["template"], b["search"], lang)
    torch.testing.assert_close(a["cls"], c["cls"], atol=1e-5, rtol=1e-5)
    with pytest.raises(ArchitectureError, match="no genome"):
        sub(b["template"], b["search"], lang, genome=g)


def test_actor_loss_and_off_path_parameters(fake_featurizer):
    torch.manual_seed(0)
    model = build_model(TINY).train()
    sampler = PathSampler.from_space(VLTSpace(), seed=7)
    actor = build_actor(model, TINY, featurizer=fake_featurizer, loss={"contrastive_weight": 1.0},
                        path_sampler=sampler)
    assert isinstance(actor, SiamCARActor)
    loss, stats = actor(pair_batch(), step=3)
    assert torch.isfinite(loss) and actor.current_path == sampler.sample(3)
    assert {"loss_cls", "loss_loc", "loss_cen", "positives", "loss_contrastive"} <= set(stats)
    assert stats["positives"] > 0
    off = list(actor.off_path_parameters())
    assert off and all(p.grad is None for p in off)
    loss.backward()
    assert all(p.grad is None for p in off)           # nothing off the path took part
    on_head = [p for p in model.head.parameters()]
    assert not {id(p) for p in on_head} & {id(p) for p in off}
    assert all(p.grad is not None for p in on_head)   # neck and head are on every path
    # a fixed architecture has no off-path parameters
    sub_cfg = dict(TINY, genome=genome(1).to_official())
    fixed = build_model(sub_cfg)
    a2 = SiamCARActor(fixed, fake_featurizer, CARLossConfig())
    loss2, _ = a2(pair_batch(), step=0)
    assert torch.isfinite(loss2) and list(a2.off_path_parameters()) == []


def test_tracker_batched_equals_single_on_real_model(supernet_model, fake_featurizer):
    """The lockstep batch tracks each video as alone (the base class's batching). With decoder argmax: the released
    decoder's fine search on a 1-pixel grid turns the model's ~1e-6 batched-conv differences into 1-pixel flips on
    this untrained model's near-flat maps; its own batching is checked exactly in test_siamcar_decoder.py."""
    decoder = "argmax"
    rng = np.random.default_rng(0)
    frames = [[rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(3)] for _ in range(2)]
    boxes = [[30.0, 28.0, 20.0, 24.0], [40.0, 35.0, 18.0, 16.0]]
    langs = [{"sentence": "a red ball", "has_language": True}, None]   # the second uses the template strategy
    g = genome(2)
    single = []
    for v in range(2):
        t = SiamCARTracker(supernet_model, TrackerConfig(decoder=decoder), featurizer=fake_featurizer, genome=g,
                           device="cpu")
        t.initialize(frames[v][0], boxes[v], langs[v])
        single.append([t.track(frames[v][i])["box"] for i in (1, 2)])
    t = SiamCARTracker(supernet_model, TrackerConfig(decoder=decoder), featurizer=fake_featurizer,
                       genome=g.to_official(), device="cpu")
    t.initialize_batch([f[0] for f in frames], boxes, langs)
    batched = [[o["box"] for o in t.track_batch([f[i] for f in frames])] for i in (1, 2)]
    np.testing.assert_allclose(np.array(batched).transpose(1, 0, 2), np.array(single), atol=1e-3)
    with pytest.raises(ArchitectureError, match="needs a genome"):
        SiamCARTracker(supernet_model, device="cpu")


def test_set_genome_and_channels_last_input(supernet_model, fake_featurizer):
    """One tracker scores many genomes (the search): after set_genome it tracks exactly as a tracker built for that
    genome and has forgotten its videos; channels-last crops (no copy) track like NCHW ones."""
    from supernets.blocks import to_channels_last

    rng = np.random.default_rng(1)
    frames = [[rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(3)] for _ in range(2)]
    boxes = [[30.0, 28.0, 20.0, 24.0], [40.0, 35.0, 18.0, 16.0]]
    langs = [{"sentence": "a red ball", "has_language": True}, None]

    def run(t):
        t.initialize_batch([f[0] for f in frames], boxes, langs)
        return np.array([[o["box"] for o in t.track_batch([f[i] for f in frames])] for i in (1, 2)])

    fresh = run(SiamCARTracker(supernet_model, featurizer=fake_featurizer, genome=genome(4), device="cpu"))
    reused = SiamCARTracker(supernet_model, featurizer=fake_featurizer, genome=genome(3), device="cpu")
    first = run(reused)
    reused.set_genome(genome(4).to_official())
    assert reused.num_videos == 0 and reused.genome == genome(4)
    np.testing.assert_array_equal(run(reused), fresh)
    assert not np.array_equal(first, fresh)  # the path matters
    with pytest.raises(ArchitectureError, match="needs a genome"):
        reused.set_genome(None)
    cl_model = to_channels_last(copy.deepcopy(supernet_model))
    cl = SiamCARTracker(cl_model, featurizer=fake_featurizer, genome=genome(4), device="cpu")
    cl.channels_last_input = True
    x = cl._to_tensor([frames[0][0].astype(np.float32)])
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    np.testing.assert_allclose(run(cl), fresh, atol=1e-2)


def test_siamcar_baseline_and_registry_errors():
    cfg = {"name": "siamcar", "template_size": 63, "search_size": 127, "neck": {"channels": 32},
           "head": {"num_convs": 2, "gn_groups": 8}, "resnet": {"width_mult": 0.25}}
    m = build_model(cfg).eval()
    out = m(torch.rand(1, 3, 63, 63) * 255, torch.rand(1, 3, 127, 127) * 255)
    assert out["cls"].shape == (1, 2, 10, 10) and not m.uses_language
    t = build_tracker(m, cfg, {"decoder": "argmax", "score_upsample": 2}, device="cpu")   # an argmax option
    t.initialize(np.zeros((80, 80, 3), np.uint8), [20, 20, 16, 16])
    assert len(t.track(np.zeros((80, 80, 3), np.uint8))["box"]) == 4
    with pytest.raises(ConfigError, match="unknown model name"):
        build_model({"name": "nope"})
    with pytest.raises(ConfigError, match="model.neck.chanels"):
        model_config({"name": "siamcar", "neck": {"chanels": 3}})
    with pytest.raises(ConfigError, match="tracker.pennalty"):
        build_tracker(m, cfg, {"pennalty": 1})
    with pytest.raises(ConfigError, match="stages"):
        model_config({"name": "siamcar", "stages": [1, 2]})


def test_every_vlt_scar_yaml_builds_its_model_config():
    from asearch.config import experiments_dir
    from asearch.config import from_dict

    for path in sorted((experiments_dir() / "vlt_scar").glob("*.yaml")):
        data = load_yaml(path)
        if "model" in data:
            model_config(data["model"], str(path))
        if "tracker" in data:
            from_dict(TrackerConfig, data["tracker"], str(path))
    build_model(load_yaml(experiments_dir() / "vlt_scar" / "tiny.yaml")["model"])


def test_checkpoint_roundtrip_and_errors(supernet_model, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": supernet_model.state_dict(), "config": {"model": TINY}, "build_info": build_info(TINY)}, path)
    model, cfg = load_model(path)
    assert cfg.name == "vlt_scar" and cfg.supernet["width_mult"] == 0.25
    for a, b in zip(model.state_dict().values(), supernet_model.state_dict().values()):
        assert torch.equal(a, b)
    # the {'state_dict', 'build_info'} form with the model config as build_info itself
    torch.save({"state_dict": supernet_model.state_dict(), "build_info": TINY}, tmp_path / "b.pt")
    assert load_model(tmp_path / "b.pt")[1].neck.channels == 32
    bad = dict(supernet_model.state_dict())
    key = "head.down.weight"
    bad[key] = torch.zeros(1)
    torch.save({"model": bad, "build_info": build_info(TINY)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="head.down.weight"):
        load_model(tmp_path / "bad.pt")
    torch.save({"model": {}}, tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="no model config"):
        load_model(tmp_path / "none.pt")


def test_asearch_track_end_to_end(supernet_model, tmp_path, capsys, check_track_results):
    from asearch.data.synthetic import generate_benchmark

    root = generate_benchmark(tmp_path / "synth", videos=5, frames=5, size=64, seed=0, distractors=0)
    ckpt = tmp_path / "model.pt"
    torch.save({"model": supernet_model.state_dict(), "build_info": build_info(TINY)}, ckpt)
    out = tmp_path / "results"
    args = ["track", "--checkpoint", str(ckpt), "--genome", json.dumps(genome(4).to_official()),
            "--dataset", "synthetic", "--root", str(root), "--split", "all", "--out", str(out), "--batch", "2",
            "--limit-videos", "3", "--max-frames", "4", "--set", "language.enabled=false",
            "--set", "tracker.min_size=4", "--no-progress"]
    assert main(args) == 0
    check_track_results(out, videos=3, frames=4)
    assert main(args) == 0
    assert "0 sequences tracked, 3 already done" in capsys.readouterr().out
    # a supernet model without a genome, and a bad genome, fail with named errors
    assert main([a for a in args if a not in ("--genome", json.dumps(genome(4).to_official()))]) == 2
    assert "needs a genome" in capsys.readouterr().err
    bad = args.copy()
    bad[bad.index("--genome") + 1] = "[[0, 1], [2]]"
    assert main(bad) == 2
