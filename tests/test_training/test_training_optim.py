"""Optimizer groups, per-step schedules and the strict TrainConfig."""
import math

import pytest
import torch
from torch import nn

from asearch.config import from_dict, load_config
from asearch.errors import ConfigError
from asearch.training import ScheduleFactor, TrainConfig, build_optimizer, build_scheduler, param_groups


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        self.backbone_extra = nn.Linear(2, 2)  # shares the text prefix but is not under "backbone."
        self.head = nn.Linear(2, 1)


def test_param_groups_by_prefix_longest_wins():
    net = Net()
    groups = param_groups(net, lr=0.1, lr_mult={"backbone": 0.1, "backbone.1": 0.5})
    by_name = {g["name"]: g for g in groups}
    assert [g["name"] for g in groups] == ["default", "backbone", "backbone.1"]
    assert len(by_name["default"]["params"]) == 4  # backbone_extra + head (weight, bias each)
    assert len(by_name["backbone"]["params"]) == 2  # backbone.0 only
    assert len(by_name["backbone.1"]["params"]) == 2
    assert by_name["backbone"]["lr"] == pytest.approx(0.01)
    assert by_name["backbone.1"]["lr"] == pytest.approx(0.05)


def test_param_groups_unknown_prefix_and_frozen():
    net = Net()
    with pytest.raises(ConfigError, match=r"lr_mult\.backbon'.*top-level modules: backbone, backbone_extra, head"):
        param_groups(net, 0.1, {"backbon": 0.1})
    for p in net.head.parameters():
        p.requires_grad_(False)
    groups = param_groups(net, 0.1, {})
    assert sum(len(g["params"]) for g in groups) == 6


def test_build_optimizer_kinds():
    net = Net()
    sgd = build_optimizer(net, TrainConfig(optimizer="sgd", lr=0.2, momentum=0.8, nesterov=True, weight_decay=0.01,
                                           lr_mult={"backbone": 0.1}))
    assert isinstance(sgd, torch.optim.SGD)
    assert [g["name"] for g in sgd.param_groups] == ["default", "default.no_decay", "backbone", "backbone.no_decay"]
    assert [g["lr"] for g in sgd.param_groups] == pytest.approx([0.2, 0.2, 0.02, 0.02])
    assert [g["weight_decay"] for g in sgd.param_groups] == [0.01, 0.0, 0.01, 0.0]  # Linear biases: no decay
    assert sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["momentum"] == 0.8
    adamw = build_optimizer(net, TrainConfig(optimizer="AdamW", lr=1e-3, betas=(0.8, 0.9), weight_decay=0.05))
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["betas"] == (0.8, 0.9) and adamw.param_groups[0]["weight_decay"] == 0.05
    plain = build_optimizer(net, TrainConfig(weight_decay=0.0, lr_mult={"backbone": 0.1}))
    assert [g["name"] for g in plain.param_groups] == ["default", "backbone"]  # no decay split without decay


class Fenced(nn.Module):
    """Stands in for the VLT network: ``mixers`` and ``contrastive`` fenced off from a prefix above them."""

    lr_mult_exempt = ("mixers", "contrastive")

    def __init__(self):
        super().__init__()
        from supernets.contrastive import ContrastiveAlignment

        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.mixers = nn.ModuleList([nn.Conv2d(4, 4, 1, bias=False), nn.GroupNorm(2, 4)])
        self.contrastive = ContrastiveAlignment()


class Tracker(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Fenced()
        self.head = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))


def _per_param(opt, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: (round(g["lr"], 12), g["weight_decay"]) for g in opt.param_groups for p in g["params"]}


def test_weight_decay_and_lr_per_parameter():
    model = Tracker()
    got = _per_param(build_optimizer(model, TrainConfig(lr=0.1, weight_decay=1e-4, lr_mult={"backbone": 0.1})), model)
    assert got == {
        "backbone.conv.weight": (0.01, 1e-4), "backbone.conv.bias": (0.01, 0.0),  # slowed backbone conv
        "backbone.bn.weight": (0.01, 0.0), "backbone.bn.bias": (0.01, 0.0),
        "backbone.mixers.0.weight": (0.1, 1e-4),  # fenced: the full rate under lr_mult.backbone
        "backbone.mixers.1.weight": (0.1, 0.0), "backbone.mixers.1.bias": (0.1, 0.0),  # GroupNorm
        "backbone.contrastive.logit_scale": (0.1, 0.0),  # no decay on the logit scale
        "head.0.weight": (0.1, 1e-4), "head.0.bias": (0.1, 0.0),
        "head.1.weight": (0.1, 0.0), "head.1.bias": (0.1, 0.0),  # LayerNorm
    }
    named = _per_param(build_optimizer(model, TrainConfig(lr=0.1, weight_decay=1e-4, lr_mult={
        "backbone": 0.1, "backbone.mixers": 0.5})), model)
    assert named["backbone.mixers.0.weight"] == (0.05, 1e-4)  # a prefix that names the fence
    assert named["backbone.contrastive.logit_scale"] == (0.1, 0.0)
    assert named["backbone.conv.weight"] == (0.01, 1e-4)


def test_vlt_scar_mixers_and_contrastive_outside_backbone_prefix():
    from trackers.registry import build_model, model_config

    model = build_model(model_config({
        "name": "vlt_scar", "template_size": 63, "search_size": 127, "neck": {"channels": 16, "center_size": 7},
        "head": {"num_convs": 1, "gn_groups": 4}, "supernet": {"width_mult": 0.25, "language_dim": 8}}),
        pretrained=False)
    got = _per_param(build_optimizer(model, TrainConfig(lr=1.0, weight_decay=1e-4, lr_mult={"backbone": 0.1})), model)
    for name, (lr, wd) in got.items():
        fenced = name.startswith(("backbone.mixers.", "backbone.contrastive."))
        assert lr == pytest.approx(0.1 if name.startswith("backbone.") and not fenced else 1.0), name
    assert got["backbone.contrastive.logit_scale"] == (1.0, 0.0)
    assert got["backbone.mixers.template.0.linear.weight"] == (1.0, 1e-4)
    assert got["backbone.mixers.template.0.linear.bias"] == (1.0, 0.0)
    assert got["backbone.backbones.shared.first_conv.0.weight"] == (0.1, 1e-4)


def test_schedule_values_by_hand():
    warm = ScheduleFactor("constant", total_steps=10, warmup_steps=4, warmup_start=0.2)
    assert [warm(t) for t in (0, 2, 4, 9)] == pytest.approx([0.2, 0.6, 1.0, 1.0])
    cos = ScheduleFactor("cosine", total_steps=12, warmup_steps=2, min_lr_ratio=0.1)
    # u = (t - 2) / 10: t=2 -> 1, t=7 -> 0.1 + 0.9 * 0.5, t=12 -> 0.1
    assert [cos(2), cos(7), cos(12)] == pytest.approx([1.0, 0.55, 0.1])
    logd = ScheduleFactor("log", total_steps=10, min_lr_ratio=0.01)
    assert [logd(0), logd(5), logd(10)] == pytest.approx([1.0, 0.1, 0.01])
    step = ScheduleFactor("step", total_steps=10, milestones=[3, 6], gamma=0.5)
    assert [step(2), step(3), step(5), step(6)] == pytest.approx([1.0, 0.5, 0.5, 0.25])
    with pytest.raises(ConfigError, match="min_lr_ratio"):
        ScheduleFactor("log", total_steps=10, min_lr_ratio=0.0)


def test_scheduler_keeps_lr_mult_and_round_trips():
    net = Net()
    cfg = TrainConfig(lr=1.0, steps=10, schedule="log", min_lr_ratio=0.01, lr_mult={"backbone": 0.1})
    opt = build_optimizer(net, cfg)
    sched = build_scheduler(opt, cfg)
    for _ in range(5):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.1, 0.01, 0.01])  # 0.01 ** 0.5 = 0.1
    state = sched.state_dict()
    sched2 = build_scheduler(build_optimizer(Net(), cfg), cfg)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 5


def test_train_config_is_strict(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'train.stepz'"):
        from_dict(TrainConfig, {"stepz": 3}, prefix="train.")
    with pytest.raises(ConfigError, match="'schedule' must be one of constant, cosine, step, log"):
        TrainConfig(schedule="poly")
    with pytest.raises(ConfigError, match="'warmup_steps' must be <= steps"):
        TrainConfig(steps=5, warmup_steps=6)
    with pytest.raises(ConfigError, match="'lr_mult.backbone' must be >= 0"):
        TrainConfig(lr_mult={"backbone": -1.0})
    path = tmp_path / "train.yaml"
    path.write_text("steps: 7\namp: off\nlr_mult: {backbone: 0.1}\nbetas: [0.5, 0.6]\n")  # YAML reads `off` as false
    cfg = load_config(TrainConfig, path, ["schedule=log"])
    assert (cfg.steps, cfg.amp, cfg.lr_mult, cfg.betas, cfg.schedule) == (7, "off", {"backbone": 0.1}, (0.5, 0.6), "log")
    assert math.isclose(cfg.lr, 0.01)
