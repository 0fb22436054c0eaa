"""Exact parameters/FLOPs: count_module, closed-form hand computations, the per-layer table, whole-model sums."""
import copy

import pytest
import torch
from torch import nn

from search_spaces import Genome, build_cost_table, build_space, count_module
from search_spaces.cost import block_cost, conv_output_size
from supernets.blocks import make_choice_block


@pytest.fixture(scope="module")
def space():
    return build_space("vlt")


def uniform(v, n=20, m=4):
    return Genome((v,) * n, (v,) * n, (v,) * m, (v,) * m)


# ----- count_module --------------------------------------------------------------------------------------------------
def test_count_module_conv_and_linear_closed_form():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2, bias=True)
    # output 5x5: MACs = 16*5*5 outputs x (8/2) inputs x 9 taps; params = 16*4*9 weights + 16 biases
    assert count_module(conv, torch.zeros(1, 8, 9, 9)) == (592, 14400)
    lin = nn.Linear(768, 64)
    assert count_module(lin, torch.zeros(1, 768)) == (768 * 64 + 64, 768 * 64)
    assert count_module(lin, (torch.zeros(2, 5, 768),)) == (768 * 64 + 64, 10 * 768 * 64)


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3, bias=False)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, a, b):
        return self.bn(self.lin(a) + self.lin(b))


def test_count_module_shared_module_runs_twice_and_state_is_kept():
    m = Twice().train()
    before = m.bn.running_mean.clone()
    params, macs = count_module(m, {"a": torch.ones(2, 4), "b": torch.ones(2, 4)})
    assert params == 12 + 6 and macs == 2 * (2 * 4 * 3)  # weights once, two calls counted
    assert m.training and m.bn.training
    assert torch.equal(m.bn.running_mean, before)
    assert not m.lin._forward_hooks


# ----- hand-computed blocks ------------------------------------------------------------------------------------------
def test_shufflenet_k5_projection_block_by_hand():
    # make_choice_block(1, 16, 64, stride 2, project) on 112x112 (SPOS layer 0, choice k5):
    main = 16 * 32 * 112 * 112 + 32 * 25 * 56 * 56 + 32 * 48 * 56 * 56  # 1x1, dw5x5 s2, 1x1 (48 = 64 - 16)
    proj = 16 * 25 * 56 * 56 + 16 * 16 * 56 * 56  # dw5x5 s2, 1x1
    assert main + proj == 15_805_440
    params = 16 * 32 + 32 * 25 + 32 * 48 + 16 * 25 + 16 * 16
    assert block_cost(1, 16, 64, 2, True, 112) == (params, 15_805_440) == (3504, 15_805_440)


def test_xception_block_by_hand():
    # make_choice_block(3, 64, 64, 1, no projection) on 32x32: 32 channels pass through, three (dw3x3 32, 1x1 32->32)
    params = 3 * (32 * 9 + 32 * 32)
    macs = 3 * (32 * 9 * 32 * 32 + 32 * 32 * 32 * 32)
    assert (params, macs) == (3936, 4_030_464)
    assert block_cost(3, 64, 64, 1, False, 32) == (params, macs)
    assert count_module(make_choice_block(3, 64, 64, 1, False), torch.zeros(1, 64, 32, 32)) == (params, macs)


# ----- the table -----------------------------------------------------------------------------------------------------
def test_spatial_sizes_and_widths(space):
    assert conv_output_size(127, 3, 2, 1) == 64 and conv_output_size(255, 7, 2, 3) == 128
    table = build_cost_table(space)
    assert table.sizes == {"template": (64, 32, 16, 16, 16), "search": (128, 64, 32, 32, 32)}
    assert table.channels == (16, 64, 160, 320, 640)
    assert build_cost_table(build_space("vlt")) is table  # cached per configuration
    assert build_space("vlt", width_mult=0.5).cost_table().channels == (8, 32, 80, 160, 320)


def test_table_matches_real_blocks(space):
    table = build_cost_table(space)
    cases = [  # (branch, layer, inp, oup, stride, project, input side)
        ("template", 0, 16, 64, 2, True, 64),
        ("search", 8, 160, 320, 1, True, 32),  # stage 3 keeps stride 1 but has the projection branch
        ("template", 19, 640, 640, 1, False, 16),
    ]
    for branch, layer, inp, oup, stride, project, side in cases:
        for g in range(4):
            real = count_module(make_choice_block(g, inp, oup, stride, project), torch.zeros(1, inp, side, side))
            assert table.backbone[branch][layer][g] == real, (branch, layer, g)
    real = count_module(make_choice_block(2, 640, 640, 1, False), torch.zeros(1, 640, 32, 32))
    assert table.mixer["search"][3][2] == real
    assert table.linear == tuple((768 * c + c, 768 * c) for c in (64, 160, 320, 640))
    # stride-1 blocks without projection: every conv is bias-free at one resolution, so MACs = params x H x W
    for g in range(4):
        p, m = table.backbone["search"][9][g]
        assert m == p * 32 * 32


# ----- whole model ---------------------------------------------------------------------------------------------------
def test_all0_params_from_official_numbers(space):
    c = space.cost(uniform(0))
    # stem 432 + backbone path (official all-0 path 3,132,448 - shared 1,679,792) + 4 k3 mixers + 4 Linear_s
    template = 432 + (3_132_448 - 1_679_792) + (2336 + 13520 + 52640 + 207680) + 768 * 1184 + 1184
    assert c["params_template"] == c["params_search"] == template == 2_639_760
    assert c["params"] == 2 * template - 432 - (3_132_448 - 1_679_792)
    assert space.cost(uniform(0), shared_branches=False)["params"] == 2 * template
    mixed = Genome((0,) * 20, (3,) * 20, (0,) * 4, (0,) * 4)
    cm = space.cost(mixed)
    assert cm["params"] == cm["params_template"] + cm["params_search"] - 432
    assert c["flops"] == c["flops_template"] + c["flops_search"] and c["flops_search"] > 3 * c["flops_template"]


def test_affine_adds_two_params_per_bn_channel(space):
    # BN channels of the all-0 template branch: stem 16; projection layer inp + 2C, other layers and the mixer 3C/2
    channels = 16 + sum(inp + 2 * c + (r - 1) * 3 * c // 2 + 3 * c // 2
                        for inp, c, r in ((16, 64, 4), (64, 160, 4), (160, 320, 8), (320, 640, 4)))
    assert channels == 11968
    diff = space.cost(uniform(0), affine=True)["params_template"] - space.cost(uniform(0))["params_template"]
    assert diff == 2 * channels


def test_ost_mixers_by_hand():
    ost = build_space("vlt_ost")
    c = ost.cost(Genome((), (), (0,) * 4, (0,) * 4))
    block = 384 * 384 + 384 * 9 + 384 * 384  # k3 block on 768 channels, half passes through
    linear_p, linear_m = 768 * 768 + 768, 768 * 768
    assert c["params_template"] == c["params_search"] == 4 * (block + linear_p) == 3_555_840
    assert c["flops_template"] == 4 * (block * 8 * 8 + linear_m) == 78_741_504
    assert c["flops_search"] == 4 * (block * 16 * 16 + linear_m) == 307_888_128
    assert c["params"] == 2 * 3_555_840


class RefBranch(nn.Module):
    """Independent composition of one branch as the spec describes it (stem, stages, ModaMixer Eq. 1)."""

    def __init__(self, stem, stages, mixers, linears):
        super().__init__()
        self.stem, self.stages = stem, nn.ModuleList(nn.ModuleList(s) for s in stages)
        self.mixers, self.linears = nn.ModuleList(mixers), nn.ModuleList(linears)

    def forward(self, x, lang):
        x = self.stem(x)
        for layers, mixer, linear in zip(self.stages, self.mixers, self.linears):
            for block in layers[:-1]:
                x = block(x)
            w = linear(lang)[:, :, None, None]
            x = mixer(x * w) + layers[-1](x)  # f_m = Block(Linear(f_l) ⊙ f_v) + Block(f_v)
        return x


class RefModel(nn.Module):
    def __init__(self, t, s):
        super().__init__()
        self.t, self.s = t, s

    def forward(self, z, x, lang):
        return self.t(z, lang), self.s(x, lang)


def build_ref(space, genome, shared):
    chans = space.cost_table().channels
    stem = nn.Sequential(nn.Conv2d(3, chans[0], 3, 2, 1, bias=False), nn.BatchNorm2d(chans[0], affine=False),
                         nn.ReLU())
    built = {}

    def layer(stage, j, g, owner):
        c_in, c = (chans[stage], chans[stage + 1]) if j == 0 else (chans[stage + 1], chans[stage + 1])
        key = (stage, j, g) if shared else (owner, stage, j, g)
        if key not in built:
            built[key] = make_choice_block(g, c_in, c, 2 if (j == 0 and stage < 2) else 1, j == 0)
        return built[key]

    branches = []
    for owner in ("template", "search"):
        genes = genome.stage_genes(owner, space.stage_repeats)
        mix = genome.template_mixer if owner == "template" else genome.search_mixer
        stages = [[layer(s, j, g, owner) for j, g in enumerate(gs)] for s, gs in enumerate(genes)]
        mixers = [make_choice_block(g, chans[s + 1], chans[s + 1]) for s, g in enumerate(mix)]
        linears = [nn.Linear(space.language_dim, c) for c in chans[1:]]
        own_stem = stem if (shared or owner == "template") else copy.deepcopy(stem)
        branches.append(RefBranch(own_stem, stages, mixers, linears))
    return RefModel(*branches)


@pytest.mark.parametrize("shared", [True, False])
def test_cost_equals_counted_reference_model(shared):
    space = build_space("vlt", width_mult=0.25, stage_repeats=(2, 2, 3, 2), template_size=31, search_size=63,
                        language_dim=12)
    assert space.cost_table().sizes == {"template": (16, 8, 4, 4, 4), "search": (32, 16, 8, 8, 8)}
    genome = Genome((0, 1, 2, 3, 3, 2, 1, 0, 1), (0, 2, 2, 3, 0, 2, 1, 3, 1), (3, 0, 1, 2), (2, 3, 3, 1))
    ref = build_ref(space, genome, shared)
    z, x, lang = torch.zeros(1, 3, 31, 31), torch.zeros(1, 3, 63, 63), torch.zeros(1, 12)
    c = space.cost(genome, shared_branches=shared)
    assert count_module(ref, (z, x, lang)) == (c["params"], c["flops"])
    assert count_module(ref.t, (z, lang)) == (c["params_template"], c["flops_template"])
    assert count_module(ref.s, (x, lang)) == (c["params_search"], c["flops_search"])
