"""The VLT supernet: structure, shapes, strides, paths, template-language strategy, contrastive output."""
import time

import pytest
import torch

from asearch.errors import ArchitectureError, ConfigError
from supernets import SupernetConfig, VLTSupernet, build_supernet


def tiny(**kw):
    kw.setdefault("width_mult", 0.25)
    kw.setdefault("language_dim", 32)
    kw.setdefault("template_size", 63)
    kw.setdefault("search_size", 127)
    return build_supernet(**kw)


def test_default_is_the_paper_supernet():
    net = build_supernet()
    cfg = net.config
    assert (cfg.width_mult, cfg.template_size, cfg.search_size, cfg.language_dim) == (1.0, 127, 255, 768)
    assert cfg.shared_branches and cfg.contrastive_stages == ("template.s1", "search.s1")
    assert net.channels == [64, 160, 320, 640] and net.stride == 8
    bb = net.backbones["shared"]
    assert tuple(bb.first_conv[0].weight.shape) == (16, 3, 3, 3)
    # official key names; stage 1 layer 0 choice 0: 1×1 conv 16 -> 32
    sd = net.state_dict()
    assert tuple(sd["backbones.shared.features.0.0.branch_main.0.weight"].shape) == (32, 16, 1, 1)
    assert tuple(sd["mixers.search.3.blocks.3.branch_main.0.weight"].shape) == (320, 1, 3, 3)
    assert tuple(sd["mixers.template.0.linear.weight"].shape) == (64, 768)
    assert len(bb.features) == 20 and all(len(layer) == 4 for layer in bb.features)
    # all BatchNorms affine=False (as in SPOS), no normalisation buffers in the state dict
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.affine for m in bns)
    assert not any("pixel_" in k for k in sd)


def test_shapes_and_stride(tiny_inputs, make_genome):
    template, search, language, _, _ = tiny_inputs
    net = tiny().eval()
    assert net.channels == [16, 40, 80, 160]
    out = net(template, search, language, make_genome(1))
    # 63 -> stem 32 -> s1 16 -> s2 8 (s3, s4 keep it); 127 -> 64 -> 32 -> 16
    assert [tuple(f.shape) for f in out["template"]] == [(2, 16, 16, 16), (2, 40, 8, 8), (2, 80, 8, 8), (2, 160, 8, 8)]
    assert [tuple(f.shape) for f in out["search"]] == [(2, 16, 32, 32), (2, 40, 16, 16), (2, 80, 16, 16),
                                                      (2, 160, 16, 16)]
    assert "contrastive" not in out
    # the paper's sizes: 127 -> 16×16 and 255 -> 32×32 after stage 2
    one = net(torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255, language[:1], make_genome(2))
    assert one["template"][3].shape[-2:] == (16, 16) and one["search"][3].shape[-2:] == (32, 32)


def test_forward_equals_template_once_then_search(tiny_inputs, make_genome):
    template, search, language, _, _ = tiny_inputs
    net = tiny().eval()
    genome = make_genome(3)
    out = net(template, search, language, genome)
    state = net.forward_template(template, language, genome)
    feats = net.forward_search(search, language, genome, state)
    for a, b in zip(out["template"] + out["search"], state["features"] + feats):
        assert torch.equal(a, b)


def test_paths_differ_and_language_matters(tiny_inputs, make_genome):
    template, search, language, _, _ = tiny_inputs
    net = tiny().eval()
    a = net(template, search, language, make_genome(4))["search"][3]
    b = net(template, search, language, make_genome(5))["search"][3]
    c = net(template, search, language * 2, make_genome(4))["search"][3]
    assert not torch.allclose(a, b) and not torch.allclose(a, c)


def test_off_path_parameters_get_no_gradient(tiny_inputs, make_genome):
    template, search, language, tbox, sbox = tiny_inputs
    net = tiny().train()
    genome = make_genome(6)
    start = time.perf_counter()
    out = net(template, search, language, genome, template_box=tbox, search_box=sbox)
    loss = sum(f.mean() for f in out["template"] + out["search"]) + out["contrastive"]
    loss.backward()
    print(f"\ntiny supernet forward+backward (batch 2, 63/127, width 0.25): {time.perf_counter() - start:.3f} s")
    on, off = net.path_parameters(genome), net.off_path_parameters(genome)
    assert len(on) + len(off) == len(list(net.parameters()))
    assert off and all(p.grad is None for p in off)
    assert all(p.grad is not None for p in on)
    assert net.contrastive.logit_scale.grad is not None
    # template gene 0 = choice g -> that block is on the path, the other three of layer 0 are not (unless search
    # picks them)
    layer0 = net.backbones["shared"].features[0]
    on_ids = {id(p) for p in on}
    for c in range(4):
        used = c in (genome.template[0], genome.search[0])
        assert all((id(p) in on_ids) == used for p in layer0.block(c).parameters())


def test_contrastive_output(tiny_inputs, make_genome):
    template, search, language, tbox, sbox = tiny_inputs
    net = tiny().eval()
    genome = make_genome(7)
    both = net(template, search, language, genome, template_box=tbox, search_box=sbox)["contrastive"]
    only_t = net(template, search, language, genome, template_box=tbox)["contrastive"]
    assert both.dim() == 0 and torch.isfinite(both) and both.item() > 0
    assert not torch.allclose(both, only_t)
    # pairs without language are excluded: one pair left -> CE of a 1×1 logit matrix = 0
    lang = language.clone()
    lang[1] = 0
    one = net(template, search, lang, genome, template_box=tbox, search_box=sbox)["contrastive"]
    assert one.item() == pytest.approx(0.0, abs=1e-6)
    masked = net(template, search, language, genome, template_box=tbox, search_box=sbox,
                 language_mask=torch.tensor([True, False]))["contrastive"]
    assert masked.item() == pytest.approx(0.0, abs=1e-6)
    none = tiny(contrastive_stages=()).eval()
    assert "contrastive" not in none(template, search, language, genome, template_box=tbox, search_box=sbox)
    assert none.contrastive is None


def test_template_language_strategy(tiny_inputs, make_genome):
    template, search, language, tbox, sbox = tiny_inputs
    net = tiny().eval()
    genome = make_genome(8)
    flags = torch.tensor([True, False])
    base = net(template, search, language, genome, template_box=tbox, use_template_language=flags)
    other_lang = language.clone()
    other_lang[0] = torch.randn(32)
    changed = net(template, search, other_lang, genome, template_box=tbox, use_template_language=flags)
    for a, b in zip(base["template"] + base["search"], changed["template"] + changed["search"]):
        assert torch.equal(a[0], b[0])  # item 0 ignores its language vector (template feature instead)
    other_box = tbox.clone()
    other_box[0] += 4
    moved = net(template, search, language, genome, template_box=other_box, use_template_language=flags)
    assert not torch.allclose(moved["search"][0][0], base["search"][0][0])  # search uses the template's vector
    plain = net(template, search, language, genome)
    assert torch.equal(plain["search"][3][1], base["search"][3][1])  # item 1 keeps its language
    # the state carries the per-stage template vectors: 4 stages, B×C_s
    state = net.forward_template(template, language, genome, tbox, flags)
    assert [tuple(v.shape) for v in state["template_vectors"]] == [(2, 16), (2, 40), (2, 80), (2, 160)]
    with pytest.raises(ValueError, match="template_box"):
        net(template, search, language, genome, use_template_language=flags)


def test_separate_backbones_and_symmetric_variant(tiny_inputs, make_genome):
    template, search, language, _, _ = tiny_inputs
    shared, separate = tiny(), tiny(shared_branches=False)
    assert set(separate.backbones.keys()) == {"template", "search"}
    n_bb = sum(p.numel() for p in shared.backbones.parameters())
    assert sum(p.numel() for p in separate.parameters()) == sum(p.numel() for p in shared.parameters()) + n_bb
    out = separate.eval()(template, search, language, make_genome(9))
    assert out["search"][3].shape == (2, 160, 16, 16)
    sym = tiny(variant="symmetric").eval()
    sym(template, search, language, make_genome(10, symmetric=True))
    with pytest.raises(ArchitectureError, match="'search'"):
        sym(template, search, language, make_genome(10))


def test_errors(tiny_inputs, make_genome):
    template, search, language, _, _ = tiny_inputs
    net = tiny()
    g = make_genome(11)
    with pytest.raises(ArchitectureError, match="genome field 'template_mixer'"):
        net(template, search, language, type(g)(g.template, g.search, (0, 1), g.search_mixer))
    with pytest.raises(ValueError, match="language must be B×32"):
        net(template, search, torch.randn(2, 768), g)
    with pytest.raises(ConfigError, match="variant"):
        build_supernet(variant="sideways")
    with pytest.raises(ConfigError, match="unknown config key 'widht'"):
        build_supernet(widht=0.5)
    with pytest.raises(ConfigError, match=r"contrastive_stages\[1\]"):
        SupernetConfig(contrastive_stages=("template.s1", "search.s5"))
    assert isinstance(build_supernet(SupernetConfig(width_mult=0.25), language_dim=16), VLTSupernet)
