"""Subnet extraction (inherited weights), equality with the supernet path, save/load, and exact cost."""
import pytest
import torch

from asearch.errors import CheckpointError
from supernets import VLTSubnet, build_supernet, extract_subnet, load_subnet, save_subnet


def trained_tiny(**kw):
    """A tiny supernet whose BN statistics and weights are no longer the initial ones."""
    torch.manual_seed(0)
    net = build_supernet(width_mult=0.25, language_dim=32, template_size=63, search_size=127, **kw)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def assert_same(a, b):
    for x, y in zip(a["template"] + a["search"], b["template"] + b["search"]):
        assert torch.allclose(x, y, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shared", [True, False])
def test_subnet_matches_supernet_path(tiny_inputs, make_genome, shared):
    template, search, language, tbox, sbox = tiny_inputs
    net = trained_tiny(shared_branches=shared)
    genome = make_genome(21)
    sub = extract_subnet(net, genome)
    assert isinstance(sub, VLTSubnet) and not sub.training
    assert set(sub.state_dict()) < set(net.state_dict())  # same names, fewer blocks
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters()) / 2
    flags = torch.tensor([False, True])
    kw = dict(template_box=tbox, search_box=sbox, use_template_language=flags)
    a = net(template, search, language, genome, **kw)
    b = sub(template, search, language, **kw)
    assert_same(a, b)
    assert torch.allclose(a["contrastive"], b["contrastive"], atol=1e-6)
    state = sub.forward_template(template, language, tbox, flags)
    feats = sub.forward_search(search, language, state)
    assert_same(a, {"template": state["features"], "search": feats})


def test_inherited_weights_are_copies(make_genome):
    net = trained_tiny()
    genome = make_genome(22)
    sub = extract_subnet(net, genome)
    key = f"backbones.shared.features.0.{genome.template[0]}.branch_main.0.weight"
    assert torch.equal(sub.state_dict()[key], net.state_dict()[key])
    with torch.no_grad():
        sub.get_parameter(key).add_(1.0)
    assert not torch.equal(sub.state_dict()[key], net.state_dict()[key])


def test_save_load_roundtrip(tmp_path, tiny_inputs, make_genome):
    template, search, language, _, _ = tiny_inputs
    net = trained_tiny()
    genome = make_genome(23)
    sub = extract_subnet(net, genome)
    info = sub.build_info()
    assert info["genome"] == genome.to_official() and info["config"]["width_mult"] == 0.25
    assert info["config"]["contrastive_stages"] == ["template.s1", "search.s1"]
    path = tmp_path / "sub" / "subnet.pth"
    save_subnet(sub, path)
    assert [p.name for p in path.parent.iterdir()] == ["subnet.pth"]  # atomic: no temp file left
    loaded = load_subnet(path).eval()
    assert loaded.genome == genome and loaded.config == sub.config
    assert_same(sub(template, search, language), loaded(template, search, language))


def test_load_subnet_errors(tmp_path, make_genome):
    sub = extract_subnet(trained_tiny(), make_genome(24))
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match="build_info"):
        load_subnet(bad)
    state = {k: v for k, v in sub.state_dict().items()}
    key = next(k for k in state if "mixers.search.2.blocks" in k)
    state.pop(key)
    torch.save({"build_info": sub.build_info(), "state_dict": state}, bad)
    with pytest.raises(CheckpointError, match=f"lacks key '{key}'"):
        load_subnet(bad)


@pytest.mark.parametrize("shared, contrastive", [(True, ("template.s1", "search.s1")), (False, ())])
def test_count_module_equals_space_cost(make_genome, shared, contrastive):
    cost_mod = pytest.importorskip("search_spaces.cost")
    from search_spaces.vlt import VLTSpace

    space = VLTSpace(width_mult=0.25, template_size=63, search_size=127, language_dim=32, shared_branches=shared)
    genome = space.random(5)
    net = build_supernet(width_mult=0.25, language_dim=32, template_size=63, search_size=127,
                         shared_branches=shared, contrastive_stages=contrastive)
    sub = extract_subnet(net, genome)
    inputs = (torch.zeros(1, 3, 63, 63), torch.zeros(1, 3, 127, 127), torch.zeros(1, 32))
    params, macs = cost_mod.count_module(sub, inputs)
    expected = space.cost(genome)
    # the learnable logit scale of the contrastive loss (one scalar) is a loss parameter, not architecture
    assert params == expected["params"] + (1 if contrastive else 0)
    assert macs == expected["flops"]
