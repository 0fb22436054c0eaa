"""The experiment recipe behind `asearch pretrain` / `asearch retrain` (asearch.training.recipes), on the tiny
VLT_SCAR configs and a small synthetic benchmark."""
import json

import numpy as np
import pytest
import torch

from asearch.config import apply_overrides, experiments_dir
from asearch.errors import ArchitectureError, ConfigError
from asearch.training.recipes import (build_experiment, build_pair_dataset, load_experiment, mix_ratios,
                                      run_pretrain, run_retrain, search_space_of)

TINY_SUPERNET = experiments_dir() / "vlt_scar" / "tiny_supernet.yaml"
TINY_RETRAIN = experiments_dir() / "vlt_scar" / "tiny_retrain.yaml"
TINY_SIAMCAR = experiments_dir() / "siamcar" / "tiny.yaml"
GENOME = [[1, 0, 3, 2] * 5, [2, 3, 0, 1] * 5, [0, 1, 2, 3], [3, 3, 0, 0]]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from asearch.data.synthetic import generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("synth"), videos=4, frames=12, size=96, seed=3, distractors=1)


def small(root, steps=2, *extra):
    return [f"data.datasets.0.root={root}", f"train.steps={steps}", "train.warmup_steps=0", "train.batch_size=4",
            "train.log_every=1", "train.checkpoint_every=0", "train.device=cpu", *extra]


@pytest.fixture(scope="module")
def pretrained(bench, tmp_path_factory):
    """A tiny supernet pretrained for 12 steps (shared by the tests below)."""
    out = tmp_path_factory.mktemp("pre") / "run"
    return run_pretrain(TINY_SUPERNET, out_dir=out, overrides=small(bench, 12), progress=False)


# ---------------------------------------------------------------------------------------------------------- config
def test_mix_ratios_worked_examples():
    # 1:3 among the language sources share 1 - 0.5; the only language-free source takes 0.5
    assert mix_ratios([1, 3, 2], [True, True, False], 0.5) == pytest.approx([0.125, 0.375, 0.5])
    assert mix_ratios([1, 3, 2], [True, True, False], None) == pytest.approx([1 / 6, 3 / 6, 2 / 6])
    assert mix_ratios([2, 2], [True, False], 0.25) == pytest.approx([0.75, 0.25])
    with pytest.raises(ConfigError, match="no dataset without language"):
        mix_ratios([1, 1], [True, True], 0.5)
    with pytest.raises(ConfigError, match="no dataset with language"):
        mix_ratios([1], [False], 0.5)


def test_overrides_index_lists_and_leave_the_input_alone():
    data = {"data": {"datasets": [{"name": "a"}, {"name": "b"}]}}
    out = apply_overrides(data, ["data.datasets.1.root=/x", "train.lr=0.5"])
    assert out["data"]["datasets"][1] == {"name": "b", "root": "/x"} and out["train"] == {"lr": 0.5}
    assert data == {"data": {"datasets": [{"name": "a"}, {"name": "b"}]}}
    with pytest.raises(ConfigError, match="'data.datasets' is a list of 2 items; '5' is not a valid index"):
        apply_overrides(data, ["data.datasets.5.root=/x"])


def test_bad_keys_name_the_file_and_the_key():
    with pytest.raises(ConfigError, match=r"tiny_supernet.yaml.*unknown config key 'model.neck.chanels'"):
        load_experiment(TINY_SUPERNET, ["model.neck.chanels=3"])
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        load_experiment(TINY_SUPERNET, ["trian.steps=3"])
    with pytest.raises(ConfigError, match="unknown config key 'loss.cls_wieght'"):
        load_experiment(TINY_SUPERNET, ["loss.cls_wieght=3"])
    with pytest.raises(ConfigError, match="unknown config key 'data.datasets\\[0\\].rot'"):
        load_experiment(TINY_SUPERNET, ["data.datasets.0.rot=/x"])
    with pytest.raises(ConfigError, match="'language.mode' must be 'sentence' or 'attribute'"):
        load_experiment(TINY_SUPERNET, ["language.mode=words"])
    cfg = load_experiment(TINY_SUPERNET, ["language.encoder=default"])
    assert cfg.language.encoder is None and cfg.train.batch_size == 8 and cfg.model["name"] == "vlt_scar"


def test_sampler_settings_must_agree_with_model_and_language(bench, tmp_path):
    with pytest.raises(ConfigError, match="'data.sampler.search_size' \\(255\\) differs from 'model.search_size'"):
        build_experiment(load_experiment(TINY_SUPERNET, small(bench) + ["data.sampler.search_size=255"]),
                         "pretrain", out_dir=tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="'data.sampler.language_strategy'.*differs from 'language.missing'"):
        build_experiment(load_experiment(TINY_SUPERNET, small(bench) + ["data.sampler.language_strategy=template"]),
                         "pretrain", out_dir=tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match="'data.datasets' is empty"):
        build_experiment(load_experiment(TINY_SUPERNET, small(bench) + ["data.datasets=[]"]), "pretrain",
                         out_dir=tmp_path / "c", progress=False)


@pytest.mark.parametrize("family, rule", [("transt", "ContextFactorCrop"), ("vlt_tt", "ContextFactorCrop"),
                                          ("ostrack", "AreaFactorCrop"), ("vlt_ost", "AreaFactorCrop")])
def test_transt_and_ostrack_recipes_train_on_the_crops_they_track_on(bench, family, rule):
    """The pair sampler of the tiny TransT / OSTrack recipes crops by the family's factor rule (the one its tracker
    uses, trackers.registry.crop_rule), not SiamFC's context: with the jitter off, the side implied by each crop
    box (image width · crop size / box width) is the rule's side of the frame's box, computed here by hand."""
    import math

    from trackers.registry import crop_rule, model_config

    jitter_off = ["data.sampler.search_shift=0.0", "data.sampler.search_scale=0.0", "data.sampler.flip_prob=0.0"]
    cfg = load_experiment(experiments_dir() / family / "tiny.yaml", small(bench) + jitter_off)
    mcfg = model_config(cfg.model)
    ds = build_pair_dataset(cfg, mcfg, seed=0)
    assert type(ds.crop_rule).__name__ == rule and ds.crop_rule == crop_rule(mcfg, cfg.tracker)
    videos = {seq.name: seq for seq in (ds.sources[0][i] for i in range(len(ds.sources[0])))}
    for i in range(6):
        item = ds[i]
        for part, factor, size in (("template", 2.0, mcfg.template_size), ("search", 4.0, mcfg.search_size)):
            w, h = videos[item["video"]].boxes[item[f"{part}_frame"]][2:4]
            if rule == "AreaFactorCrop":  # OSTrack: ceil(sqrt(w h) f)
                want = math.ceil(math.sqrt(w * h) * factor)
            else:  # TransT: ceil(sqrt((w + p)(h + p))), p = (f - 1)(w + h) / 2
                p = (factor - 1) * (w + h) / 2
                want = math.ceil(math.sqrt((w + p) * (h + p)))
            box = item[f"{part}_box"].numpy()
            assert w * size / (box[2] - box[0]) == pytest.approx(want, rel=1e-4)
            assert h * size / (box[3] - box[1]) == pytest.approx(want, rel=1e-4)


def test_the_sampler_context_key_belongs_to_the_siamfc_rule(bench):
    from trackers.registry import model_config

    cfg = load_experiment(experiments_dir() / "transt" / "tiny.yaml", small(bench) + ["data.sampler.context=0.5"])
    with pytest.raises(ConfigError, match="'data.sampler.context' does not apply to model 'transt'"):
        build_pair_dataset(cfg, model_config(cfg.model), seed=0)
    cfg = load_experiment(TINY_SUPERNET, small(bench) + ["data.sampler.context=0.4"])
    with pytest.raises(ConfigError, match="'data.sampler.context' \\(0.4\\) differs from 'tracker.context_amount'"):
        build_pair_dataset(cfg, model_config(cfg.model), seed=0)
    cfg = load_experiment(TINY_SUPERNET, small(bench) + ["data.sampler.context=0.5"])
    assert build_pair_dataset(cfg, model_config(cfg.model), seed=0).crop_rule.context == 0.5


# ------------------------------------------------------------------------------------------------------- pretrain
def test_pretrain_tiny_supernet_writes_a_self_describing_checkpoint(pretrained):
    from asearch.training.trainer import load_checkpoint
    from trackers.models.vlt_scar import VLTSCAR
    from trackers.registry import load_model

    assert pretrained["steps"] == 12 and np.isfinite(pretrained["final_loss"]) and not pretrained["stopped"]
    ckpt = load_checkpoint(pretrained["checkpoint"])
    info = ckpt["build_info"]
    assert info["mode"] == "pretrain" and info["model"]["name"] == "vlt_scar" and info["model"]["genome"] is None
    assert info["search_space"]["variant"] == "asymmetric" and info["search_space"]["width_mult"] == 0.25
    assert ckpt["config"]["train"]["steps"] == 12 and ckpt["config"]["seed"] == 0
    model, cfg = load_model(pretrained["checkpoint"])  # what asearch track / search do
    assert isinstance(model, VLTSCAR) and model.needs_genome and cfg.supernet["width_mult"] == 0.25


def test_one_step_leaves_off_path_parameters_untouched(bench, tmp_path):
    exp = build_experiment(load_experiment(TINY_SUPERNET, small(bench, 1)), "pretrain", out_dir=tmp_path / "run",
                           progress=False)
    before = {n: p.detach().clone() for n, p in exp.model.named_parameters()}
    genome = exp.actor.path(0)
    assert exp.space.contains(genome) and genome != exp.actor.path(1)  # a fresh path per step
    exp.train()
    names = {id(p): n for n, p in exp.model.named_parameters()}
    off = {names[id(p)] for p in exp.model.off_path_parameters(genome)}
    assert off and all(n.startswith("backbone.") for n in off)
    params = dict(exp.model.named_parameters())
    for n in off:
        assert torch.equal(params[n], before[n]), n
    on_backbone = [n for n in params if n.startswith("backbone.") and n not in off]
    assert any(not torch.equal(params[n], before[n]) for n in on_backbone)
    for n in ("head.car.cls_logits.weight", "neck.layers.0.0.weight"):  # neck and head are on every path
        assert not torch.equal(params[n], before[n]), n


def test_fair_pretrain_step_trains_every_choice_block(bench, tmp_path):
    """pretrain.sampling: fair (FairNAS): one step runs the 4 strict-fair paths, so no backbone parameter is off
    the step (all move), where a uniform step leaves the off-path choices untouched (the test above)."""
    with pytest.raises(ConfigError, match="'pretrain.sampling' must be one of uniform, fair, got 'fiar'"):
        load_experiment(TINY_SUPERNET, ["pretrain.sampling=fiar"])
    exp = build_experiment(load_experiment(TINY_SUPERNET, small(bench, 1, "pretrain.sampling=fair")), "pretrain",
                           out_dir=tmp_path / "run", progress=False)
    paths = exp.actor.paths(0)
    assert len(paths) == 4 and paths == exp.actor.paths(0) and paths != exp.actor.paths(1)
    for k in range(len(paths[0].genes)):  # every gene takes each of its 4 choices once
        assert sorted(p.genes[k] for p in paths) == [0, 1, 2, 3]
    before = {n: p.detach().clone() for n, p in exp.model.named_parameters()}
    exp.train()
    moved = {n for n, p in exp.model.named_parameters() if not torch.equal(p, before[n])}
    backbone_weights = {n for n in before if n.startswith("backbone.") and n.endswith(".weight")}
    assert backbone_weights and backbone_weights <= moved, sorted(backbone_weights - moved)[:5]


def test_pretrain_refuses_a_fixed_architecture(bench, tmp_path):
    with pytest.raises(ConfigError, match="pretrain trains a supernet.*has a fixed genome"):
        run_pretrain(TINY_RETRAIN, out_dir=tmp_path / "a", overrides=small(bench), progress=False)
    with pytest.raises(ConfigError, match="pretrain trains a supernet.*'siamcar' has no searchable path"):
        run_pretrain(TINY_SIAMCAR, out_dir=tmp_path / "b", overrides=small(bench), progress=False)


# -------------------------------------------------------------------------------------------------------- retrain
def test_retrain_tiny_vlt_scar_from_genome_and_inherited_weights(bench, pretrained, tmp_path):
    from supernets import extract_subnet, save_subnet
    from trackers.registry import load_model

    supernet, _ = load_model(pretrained["checkpoint"])
    subnet = extract_subnet(supernet.backbone, GENOME)
    save_subnet(subnet, tmp_path / "subnet.pt")
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(GENOME))  # the official list-of-lists form

    exp = build_experiment(load_experiment(TINY_RETRAIN, small(bench, 2)), "retrain", out_dir=tmp_path / "re",
                           arch=str(arch), weights=str(tmp_path / "subnet.pt"), progress=False)
    assert not exp.model.needs_genome and exp.model_config.genome == GENOME
    assert exp.info["inherited"]["tensors"] == len(subnet.state_dict())
    own = exp.model.backbone.state_dict()
    assert all(torch.equal(own[k], v) for k, v in subnet.state_dict().items())  # starts from the supernet
    result = exp.train()
    assert result["steps"] == 2 and np.isfinite(result["final_loss"]) and result["mode"] == "retrain"
    model, cfg = load_model(result["checkpoint"])
    assert cfg.genome == GENOME and not model.needs_genome
    # the genome alone (no weights) through the Python API
    again = run_retrain(TINY_RETRAIN, arch=GENOME, out_dir=tmp_path / "re2", overrides=small(bench, 1),
                        progress=False)
    assert again["steps"] == 1


def _export_with_head(pretrained, path, **changes):
    """What `asearch export --weights` writes: the subnet of GENOME plus the supernet's neck and head."""
    from supernets import extract_subnet, save_subnet
    from trackers.registry import load_model

    supernet, _ = load_model(pretrained["checkpoint"])
    rest = {k: v for k, v in supernet.state_dict().items() if not k.startswith("backbone.")}
    rest.update(changes)
    save_subnet(extract_subnet(supernet.backbone, GENOME), path, "vlt_scar", rest)
    return supernet, rest


def test_retrain_inherits_the_pretrained_neck_and_head(bench, pretrained, tmp_path):
    supernet, rest = _export_with_head(pretrained, tmp_path / "subnet.pt")
    assert rest and all(k.startswith(("neck.", "head.")) for k in rest)
    exp = build_experiment(load_experiment(TINY_RETRAIN, small(bench, 1)), "retrain", out_dir=tmp_path / "a",
                           arch=GENOME, weights=str(tmp_path / "subnet.pt"), progress=False)
    assert exp.info["inherited"]["tracker_tensors"] == len(rest)
    assert exp.info["inherited"]["tracker_model"] == "vlt_scar"
    own = exp.model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in rest.items())
    # the whole pretrained tracker on the path: the retraining model computes what the supernet computes on GENOME
    supernet.eval(), exp.model.eval()
    z, x = torch.rand(2, 3, 63, 63) * 255, torch.rand(2, 3, 127, 127) * 255
    lang = torch.randn(2, 384)
    with torch.no_grad():
        a = supernet(z, x, lang, genome=GENOME)
        b = exp.model(z, x, lang)
    for key in ("cls", "cen", "loc"):
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    # retrain.inherit=backbone: the subnet only, neck and head start fresh
    fresh = build_experiment(load_experiment(TINY_RETRAIN, small(bench, 1, "retrain.inherit=backbone")), "retrain",
                             out_dir=tmp_path / "b", arch=GENOME, weights=str(tmp_path / "subnet.pt"), progress=False)
    assert fresh.info["inherited"]["tracker_tensors"] == 0
    head = {k: v for k, v in fresh.model.state_dict().items() if k.startswith("head.") and v.is_floating_point()}
    assert not all(torch.equal(head[k], rest[k]) for k in head)


def test_inherited_neck_and_head_errors(bench, pretrained, tmp_path, caplog):
    from asearch.errors import CheckpointError
    from supernets import extract_subnet, save_subnet
    from trackers.registry import load_model

    with pytest.raises(ConfigError, match="'retrain.inherit' must be one of all, backbone, got 'head'"):
        load_experiment(TINY_RETRAIN, small(bench, 1, "retrain.inherit=head"))
    # a head tensor of the wrong shape names the file, the field and the key
    _, rest = _export_with_head(pretrained, tmp_path / "bad.pt")
    key = next(k for k in rest if k.endswith("cls_logits.weight"))
    _export_with_head(pretrained, tmp_path / "bad.pt", **{key: torch.zeros(3, *rest[key].shape[1:])})
    with pytest.raises(CheckpointError, match=f"bad.pt: key '{key}' of field 'tracker.state_dict' has shape"):
        build_experiment(load_experiment(TINY_RETRAIN, small(bench, 1)), "retrain", out_dir=tmp_path / "a",
                         arch=GENOME, weights=str(tmp_path / "bad.pt"), progress=False)
    # a key the model does not have
    _export_with_head(pretrained, tmp_path / "extra.pt", **{"head.nothing": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="key 'head.nothing' of field 'tracker.state_dict' is not a vlt_scar"):
        build_experiment(load_experiment(TINY_RETRAIN, small(bench, 1)), "retrain", out_dir=tmp_path / "b",
                         arch=GENOME, weights=str(tmp_path / "extra.pt"), progress=False)
    # another family's head is skipped with a warning: the subnet is still inherited
    supernet, _ = load_model(pretrained["checkpoint"])
    save_subnet(extract_subnet(supernet.backbone, GENOME), tmp_path / "tt.pt", "vlt_tt", {"head.x": torch.zeros(1)})
    with caplog.at_level("WARNING", logger="asearch.training"):
        exp = build_experiment(load_experiment(TINY_RETRAIN, small(bench, 1)), "retrain", out_dir=tmp_path / "c",
                               arch=GENOME, weights=str(tmp_path / "tt.pt"), progress=False)
    assert exp.info["inherited"]["tracker_tensors"] == 0 and exp.info["inherited"]["tensors"] > 0
    assert "belong to a vlt_tt supernet, not to vlt_scar" in caplog.text
    # a malformed entry
    obj = torch.load(tmp_path / "tt.pt", weights_only=True)
    obj["tracker"] = {"model": "vlt_scar", "state_dict": [1, 2]}
    torch.save(obj, tmp_path / "mal.pt")
    with pytest.raises(CheckpointError, match="mal.pt: field 'tracker.state_dict' must map parameter names"):
        build_experiment(load_experiment(TINY_RETRAIN, small(bench, 1)), "retrain", out_dir=tmp_path / "d",
                         arch=GENOME, weights=str(tmp_path / "mal.pt"), progress=False)


def test_retrain_errors(bench, pretrained, tmp_path):
    from supernets import extract_subnet, save_subnet
    from trackers.registry import load_model

    with pytest.raises(ConfigError, match="'siamcar' is a vision-only baseline: it takes no architecture"):
        run_retrain(TINY_SIAMCAR, arch=GENOME, out_dir=tmp_path / "a", overrides=small(bench), progress=False)
    with pytest.raises(ConfigError, match="retrain needs the searched architecture"):
        run_retrain(TINY_SUPERNET, out_dir=tmp_path / "b", overrides=small(bench), progress=False)
    supernet, _ = load_model(pretrained["checkpoint"])
    save_subnet(extract_subnet(supernet.backbone, GENOME), tmp_path / "subnet.pt")
    other = [[0] * 20, [0] * 20, [0] * 4, [0] * 4]
    with pytest.raises(ArchitectureError, match="holds the subnet .* but the architecture is"):
        run_retrain(TINY_RETRAIN, arch=other, weights=tmp_path / "subnet.pt", out_dir=tmp_path / "c",
                    overrides=small(bench), progress=False)
    with pytest.raises(ConfigError, match="retrain.arch' / 'retrain.weights' are for asearch retrain"):
        run_pretrain(TINY_SUPERNET, out_dir=tmp_path / "d", overrides=small(bench, 1, f"retrain.arch={tmp_path}"),
                     progress=False)


def test_retrain_vision_only_siamcar(bench, tmp_path):
    result = run_retrain(TINY_SIAMCAR, out_dir=tmp_path / "run", overrides=small(bench, 2), progress=False)
    assert result["steps"] == 2 and np.isfinite(result["final_loss"])
    assert "loss_contrastive" not in result["stats"]


def test_search_space_of_the_tiny_supernet():
    from trackers.registry import build_model

    cfg = load_experiment(TINY_SUPERNET)
    space = search_space_of(build_model(cfg.model, pretrained=False))
    assert space.name == "vlt" and space.width_mult == 0.25 and space.num_genes == 48
    assert (space.template_size, space.search_size, space.language_dim) == (63, 127, 384)
    assert search_space_of(build_model(load_experiment(TINY_SIAMCAR).model, pretrained=False)) is None


def test_every_vlt_scar_and_siamcar_training_yaml_loads_and_tiny_ones_build():
    from asearch.config import load_yaml
    from trackers.registry import build_model, model_config

    loaded = {}
    for family in ("vlt_scar", "siamcar"):
        for path in sorted((experiments_dir() / family).glob("*.yaml")):
            if "model" not in load_yaml(path):  # tracking / search configs belong to other commands
                continue
            cfg = load_experiment(path)
            loaded[f"{family}/{path.name}"] = cfg
            mcfg = model_config(cfg.model, str(path))
            width = mcfg.supernet.get("width_mult", 1.0) if mcfg.name == "vlt_scar" else mcfg.resnet.width_mult
            if width < 1.0:
                build_model(mcfg, pretrained=False)
    assert {"vlt_scar/supernet.yaml", "vlt_scar/retrain.yaml", "vlt_scar/tiny_supernet.yaml",
            "vlt_scar/tiny_retrain.yaml", "siamcar/siamcar.yaml", "siamcar/tiny.yaml"} <= set(loaded)
    paper = loaded["vlt_scar/supernet.yaml"]
    gpus = 4  # the released setup (SOTS VLT_SCAR.yaml: 16 pairs per GPU on 4 GPUs); batch_size is per process
    assert paper.train.batch_size == 16
    assert paper.train.steps * paper.train.batch_size * gpus == 5 * 1_200_000 == 5 * paper.data.pairs_per_epoch
    assert paper.train.warmup_steps * paper.train.batch_size * gpus == paper.data.pairs_per_epoch  # one epoch
    assert paper.train.lr_mult == {"backbone": 0.1} and paper.data.no_language_share == 0.5
    assert paper.loss["loc_weight"] == 3.0 and "language_dim" not in paper.model["supernet"]
    assert paper.language.encoder == "bert-base-uncased"  # the width (768) follows from the encoder
    retrain = loaded["vlt_scar/retrain.yaml"]
    assert retrain.model["genome"] is None
    assert retrain.train.steps * retrain.train.batch_size * gpus == 20 * retrain.data.pairs_per_epoch
    assert retrain.train.warmup_steps * retrain.train.batch_size * gpus == 5 * retrain.data.pairs_per_epoch
    assert retrain.train.lr_mult == {"backbone": 0.1, "backbone.mixers": 0.1}
    assert loaded["siamcar/siamcar.yaml"].language.enabled is False
