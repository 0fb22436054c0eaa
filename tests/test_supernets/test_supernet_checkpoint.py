"""Loading the official SPOS supernet checkpoint (a fake one with the official key/shape layout)."""
import numpy as np
import pytest
import torch
from torch import nn

from asearch.errors import CheckpointError
from supernets import build_supernet, load_spos_checkpoint
from supernets.blocks import make_choice_block, make_divisible

# Facts of the official checkpoint (megvii SinglePathOneShot, ShuffleNetV2_OneShot, width 1.0): 1337 state-dict
# entries, 335 parameter tensors, 8,388,176 parameters; stem 16, stages 64/160/320/640 (4/4/8/4 layers), every
# stage's first block with stride 2 and a projection branch, all BN affine=False; head conv_last (640 -> 1024 1×1 +
# BN) and classifier.0 (Linear 1024 -> 1000, no bias).


class FakeOfficialSPOS(nn.Module):
    """The official classification supernet's layout (names and shapes), randomly filled."""

    def __init__(self, width=1.0):
        super().__init__()
        stem = make_divisible(16 * width)
        self.first_conv = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem, affine=False),
                                        nn.ReLU(inplace=True))
        layers, inp = [], stem
        for repeats, c in zip((4, 4, 8, 4), (64, 160, 320, 640)):
            oup = make_divisible(c * width)
            for i in range(repeats):
                layers.append(nn.ModuleList([make_choice_block(k, inp if i == 0 else oup, oup, 2 if i == 0 else 1,
                                                               i == 0) for k in range(4)]))
            inp = oup
        self.features = nn.Sequential(*layers)
        self.conv_last = nn.Sequential(nn.Conv2d(inp, 1024, 1, 1, 0, bias=False),
                                       nn.BatchNorm2d(1024, affine=False), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Linear(1024, 1000, bias=False))


def fake_checkpoint(path, width=1.0, seed=0, edit=None):
    """Write ``{'state_dict': {'module.' + key: random tensor}}`` like the official checkpoint-*.pth.tar."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in FakeOfficialSPOS(width).state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.randint(0, 10 ** 6, (), generator=g)
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            state[k] = torch.randn(v.shape, generator=g)
    if edit:
        edit(state)
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    return state


def test_fake_matches_official_layout():
    net = FakeOfficialSPOS()
    sd = net.state_dict()
    assert len(sd) == 1337
    assert len(list(net.parameters())) == 335 and sum(p.numel() for p in net.parameters()) == 8388176
    assert tuple(sd["features.4.3.branch_main.2.weight"].shape) == (80, 64, 1, 1)
    assert tuple(sd["features.0.0.branch_proj.2.weight"].shape) == (16, 16, 1, 1)


def test_load_bit_exact_and_mixer_init(tmp_path):
    path = tmp_path / "checkpoint-150000.pth.tar"
    state = fake_checkpoint(path)
    net = build_supernet()
    report = load_spos_checkpoint(net, path)
    target = net.state_dict()
    for k, v in state.items():
        if k.startswith(("first_conv", "features")):
            assert torch.equal(target[f"backbones.shared.{k}"], v), k
    head = [k for k in state if k.startswith(("conv_last", "classifier"))]
    assert sorted(report.skipped) == sorted(head) and len(head) == 5
    assert len(report.loaded) == 1337 - 5 and report.kept_init == []
    # every mixer block (4 stages × 4 choices × 2 branches) copies the stage's last layer (layers 3, 7, 15, 19)
    for branch in ("template", "search"):
        for s, last in enumerate((3, 7, 15, 19)):
            for c in range(4):
                for k, v in net.mixers[branch][s].blocks[str(c)].state_dict().items():
                    assert torch.equal(v, state[f"features.{last}.{c}.{k}"]), (branch, s, c, k)
    n_mixer = sum(len(net.mixers[b][s].blocks[str(c)].state_dict()) for b in ("template", "search")
                  for s in range(4) for c in range(4))
    assert len(report.initialised) == n_mixer
    assert "initialised" in report.to_dict() and "loaded 1332 tensors" in str(report)


def test_load_into_separate_backbones_and_affine_bn(tmp_path):
    path = tmp_path / "small.pth.tar"
    state = fake_checkpoint(path, width=0.25, seed=1)
    net = build_supernet(width_mult=0.25, language_dim=8, shared_branches=False, affine_bn=True)
    report = load_spos_checkpoint(net, path)
    sd = net.state_dict()
    for name in ("template", "search"):
        for k in ("first_conv.0.weight", "features.19.3.branch_main.12.weight", "features.2.1.branch_main.4.running_var"):
            assert torch.equal(sd[f"backbones.{name}.{k}"], state[k])
    # affine BN weights/biases are not in the official file: kept and reported
    assert "backbones.template.first_conv.1.weight" in report.kept_init
    assert all(k.endswith((".weight", ".bias")) for k in report.kept_init)


def test_wrong_width_names_first_key(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"
    fake_checkpoint(path, width=0.25)
    net = build_supernet(width_mult=0.5, language_dim=8)
    with pytest.raises(CheckpointError, match=r"key 'first_conv\.0\.weight' has shape \(4, 3, 3, 3\)"):
        load_spos_checkpoint(net, path)


def test_wrong_shape_deep_key_leaves_model_untouched(tmp_path):
    path = tmp_path / "checkpoint.pth.tar"

    def edit(state):
        state["features.9.2.branch_main.3.weight"] = torch.zeros(3, 1, 7, 7)

    fake_checkpoint(path, width=0.25, edit=edit)
    net = build_supernet(width_mult=0.25, language_dim=8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"'features\.9\.2\.branch_main\.3\.weight'"):
        load_spos_checkpoint(net, path)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_missing_and_foreign_keys(tmp_path):
    path = tmp_path / "missing.pth.tar"
    fake_checkpoint(path, width=0.25, edit=lambda s: s.pop("features.5.1.branch_main.0.weight"))
    net = build_supernet(width_mult=0.25, language_dim=8)
    with pytest.raises(CheckpointError, match=r"lacks key 'features\.5\.1\.branch_main\.0\.weight'"):
        load_spos_checkpoint(net, path)
    path = tmp_path / "foreign.pth.tar"
    fake_checkpoint(path, width=0.25, edit=lambda s: s.update({"head.fc.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"'head\.fc\.weight'"):
        load_spos_checkpoint(net, path)
    with pytest.raises(CheckpointError, match="not found"):
        load_spos_checkpoint(net, tmp_path / "nope.pth.tar")


def test_official_weights_see_the_official_preprocessing(tmp_path):
    """The official SPOS supernet was trained on BGR 0..255 (megvii SinglePathOneShot: the image's channels
    reversed, transposed to 3×H×W and cast to float; no scaling, no mean/std). After loading, the supernet's stem
    on an RGB 0..255 crop equals the official stem on the official preprocessing of the same image."""
    path = tmp_path / "checkpoint-150000.pth.tar"
    state = fake_checkpoint(path, width=0.25, seed=3)
    net = build_supernet(width_mult=0.25, language_dim=8)
    assert net.config.input_format == "imagenet_rgb"
    load_spos_checkpoint(net, path)
    assert net.config.input_format == "spos_bgr"  # set by the loader
    official = FakeOfficialSPOS(width=0.25)
    official.load_state_dict(state)
    net.eval()
    official.eval()
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)   # H×W×3, RGB
    official_input = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1))).float()[None]
    ours = torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32))[None]      # what the crops give the model
    with torch.no_grad():
        expected = official.first_conv(official_input)
        got = net.backbone("template").first_conv(net.normalise(ours))
        imagenet = net.backbone("template").first_conv((ours - net.pixels.mean) / net.pixels.std)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert not torch.allclose(imagenet, expected, atol=1e-2)  # the ImageNet-normalised RGB input would not


def test_tracker_configs_record_the_spos_input_format(tmp_path):
    from asearch.errors import ConfigError
    from asearch.training.recipes import _adopt_input_format
    from trackers.registry import build_info, build_model

    path = tmp_path / "spos.pth.tar"
    fake_checkpoint(path, width=0.25)
    cfg = {"name": "vlt_scar", "template_size": 63, "search_size": 127, "neck": {"channels": 32},
           "head": {"num_convs": 2, "gn_groups": 8}, "supernet": {"width_mult": 0.25, "language_dim": 8},
           "spos_checkpoint": str(path)}
    model = build_model(cfg)
    assert model.backbone.config.input_format == "spos_bgr"
    assert build_info(cfg)["model"]["supernet"]["input_format"] == "spos_bgr"  # recorded in every checkpoint
    rebuilt = build_model(build_info(cfg)["model"], pretrained=False)         # a rebuild from a checkpoint
    assert rebuilt.backbone.config.input_format == "spos_bgr"
    plain = dict(cfg, spos_checkpoint=None)
    assert build_model(plain).backbone.config.input_format == "imagenet_rgb"
    assert "input_format" not in build_info(plain)["model"]["supernet"]
    with pytest.raises(ConfigError, match="model.supernet.input_format.*spos_bgr"):
        build_model(dict(cfg, supernet={"width_mult": 0.25, "language_dim": 8, "input_format": "imagenet_rgb"}))
    with pytest.raises(ConfigError, match="model.supernet.input_format"):
        build_model(dict(plain, supernet={"width_mult": 0.25, "language_dim": 8, "input_format": "rgb"}))
    # retraining from inherited weights keeps their format, and refuses a contradicting config
    retrain = {"name": "vlt_scar", "supernet": {"width_mult": 0.25}}
    _adopt_input_format(retrain, "spos_bgr", "subnet.pt")
    assert retrain["supernet"] == {"width_mult": 0.25, "input_format": "spos_bgr"}
    with pytest.raises(ConfigError, match="subnet.pt was trained on 'spos_bgr'"):
        _adopt_input_format({"supernet": {"input_format": "imagenet_rgb"}}, "spos_bgr", "subnet.pt")
