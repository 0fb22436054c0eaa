"""Whole-model cost of VLT_OST (trackers.models.ost_cost) and its ``model_cost`` field in the architecture JSON."""
from __future__ import annotations

import json

import pytest
import torch

from asearch.config import from_dict
from asearch.errors import ArchitectureError
from search_spaces.cost import count_module
from trackers.backbones.vit import VisionTransformerCE
from trackers.heads.center import CenterHead
from trackers.models.ost_cost import center_head_cost, fixed_cost, model_cost_of_checkpoint, vit_cost
from trackers.models.ostrack import OSTrackModelConfig, build_ostrack_model

TINY = {"name": "vlt_ost", "template_size": 64, "search_size": 128, "head": {"channels": 16},
        "vit": {"dim": 32, "depth": 6, "heads": 2, "mlp_ratio": 2.0, "drop_path": 0.0, "ce_layers": [3, 5]},
        "mixer": {"language_dim": 8, "roi_output": 2}}


def test_vit_macs_hand_case():
    """dim 32, depth 2, MLP 64, 4x4 template + 8x8 search tokens (N = 80), patch 16."""
    n, c, h = 80, 32, 64
    embed = n * c * 3 * 16 * 16                                   # 1 966 080
    block = n * c * 3 * c + 2 * n * n * c + n * c * c + 2 * n * c * h  # qkv, q·kᵀ, attn·v, proj, fc1+fc2
    assert embed + 2 * block == 1_966_080 + 2 * (245_760 + 2 * 204_800 + 81_920 + 2 * 163_840) == 4_096_000
    assert vit_cost(16, 32, 2, 2.0, 64, 128)[1] == 4_096_000
    # the conv + linear part agrees with the toolkit's hook counter on the built ViT (CE off: full token count)
    vit = VisionTransformerCE(16, 32, 2, 2, 2.0, True, 0.0, 64, 128, ce_layers=())
    params, hooked = count_module(vit, (torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 128, 128)))
    assert hooked == 4_096_000 - 2 * 2 * n * n * c
    assert params == vit_cost(16, 32, 2, 2.0, 64, 128)[0]


def test_center_head_cost_matches_the_built_head():
    head = CenterHead(32, 16)
    params, macs = count_module(head, torch.zeros(1, 32, 8, 8))
    assert center_head_cost(32, 16, 8) == (params, macs)
    # one tower by hand: 3x3 convs 32->16->8->4->2, 1x1 2->1, on 64 cells
    assert center_head_cost(32, 16, 8)[1] == 3 * 64 * 9 * (32 * 16 + 16 * 8 + 8 * 4 + 4 * 2) + 64 * 2 * (1 + 2 + 2)


@pytest.mark.parametrize("data", [TINY, {"name": "vlt_ost"}], ids=["tiny", "paper"])
def test_fixed_params_equal_the_built_model(data):
    cfg = from_dict(OSTrackModelConfig, data)
    with torch.device("meta"):
        model = build_ostrack_model(cfg, pretrained=False)
    f = fixed_cost(cfg)
    assert f["vit_params"] == sum(p.numel() for p in model.backbone.parameters())
    assert f["head_params"] == sum(p.numel() for p in model.head.parameters())
    if data is not TINY:  # ViT-B/16 on 128/256 crops (64 + 256 tokens) and OSTrack's head
        assert (f["vit_params"], f["head_params"]) == (85_892_352, 6_474_117)
        assert f["fixed_flops"] == 30_911_537_152  # ~30.9 GMACs without CE, the mixers (~0.4) come on top


def _tiny_supernet(path):
    from trackers.registry import build_info

    cfg = from_dict(OSTrackModelConfig, TINY)
    torch.manual_seed(0)
    model = build_ostrack_model(cfg, pretrained=False)
    torch.save({"model": model.state_dict(), "build_info": build_info(cfg)}, path)
    return cfg, model


def test_export_writes_model_cost_and_load_checks_it(tmp_path, capsys):
    from asearch.cli import main
    from asearch.search.architecture import architecture_from_dict, load_architecture

    ckpt = tmp_path / "supernet.pt"
    cfg, model = _tiny_supernet(ckpt)
    out = tmp_path / "arch.json"
    assert main(["export", "--genome", "[[], [], [0, 3], [1, 2]]", "--supernet", str(ckpt), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    arch = load_architecture(out)
    whole, f = arch.model_cost, fixed_cost(cfg)
    assert (whole["fixed_flops"], whole["fixed_params"]) == (f["fixed_flops"], f["fixed_params"])
    assert (whole["flops"], whole["params"]) == (f["fixed_flops"] + arch.flops, f["fixed_params"] + arch.params)
    assert arch.flops == model.search_space().cost(arch.genome)["flops"]  # the top level is still the mixers'
    assert f"whole model {whole['flops'] / 1e9:.3f} GFLOPs / {whole['params'] / 1e6:.3f} M params, mixers " in line
    assert model_cost_of_checkpoint(ckpt, arch.flops, arch.params) == whole
    doc = json.loads(out.read_text())
    # files without model_cost (earlier exports) load; a whole that is not fixed + mixers does not
    assert architecture_from_dict({k: v for k, v in doc.items() if k != "model_cost"}).model_cost is None
    bad = dict(doc, model_cost=dict(doc["model_cost"], flops=doc["model_cost"]["flops"] + 1))
    with pytest.raises(ArchitectureError, match="model_cost.flops: .* is not fixed_flops"):
        architecture_from_dict(bad)
    with pytest.raises(ArchitectureError, match="model_cost.extra: unknown field"):
        architecture_from_dict(dict(doc, model_cost=dict(doc["model_cost"], extra=1)))
    with pytest.raises(ArchitectureError, match="model_cost.fixed_params: missing"):
        architecture_from_dict(dict(doc, model_cost={k: v for k, v in doc["model_cost"].items()
                                                     if k != "fixed_params"}))


def test_search_writes_model_cost_so_export_needs_no_supernet(tmp_path, capsys):
    """The whole-model cost depends only on the architecture: the search stores it in best.json and
    ``asearch export --search DIR`` without ``--supernet`` keeps it (issue 19)."""
    from asearch.cli import main
    from asearch.search.architecture import load_architecture
    from asearch.search.evolution import EvolutionConfig, EvolutionSearch, run_local
    from asearch.training.recipes import space_from_checkpoint
    from trackers.models.ost_cost import model_cost_function

    ckpt = tmp_path / "supernet.pt"
    cfg, _ = _tiny_supernet(ckpt)
    engine = EvolutionSearch(space_from_checkpoint(ckpt), EvolutionConfig(population=2, generations=1, topk=1,
                                                                         mutations=0, crossovers=0),
                             tmp_path / "search", model_cost=model_cost_function(ckpt), progress=False, plot=False)
    run_local(engine.start(), lambda genome: {"suc": 0.5})
    best = load_architecture(tmp_path / "search" / "best.json")
    assert best.model_cost == model_cost_of_checkpoint(ckpt, best.flops, best.params)
    assert best.model_cost["fixed_params"] == fixed_cost(cfg)["fixed_params"]
    out = tmp_path / "arch.json"
    assert main(["export", "--search", str(tmp_path / "search"), "--out", str(out)]) == 0
    assert load_architecture(out).model_cost == best.model_cost
    assert "whole model " in capsys.readouterr().out
    assert model_cost_function({"build_info": {"model": {"name": "vlt_scar"}}}) is None


def test_export_weights_of_vlt_ost_says_what_to_do(tmp_path):
    from asearch.errors import ConfigError
    from asearch.training.recipes import save_inherited_weights

    ckpt = tmp_path / "supernet.pt"
    _tiny_supernet(ckpt)
    with pytest.raises(ConfigError, match=r"VLT_OST exports no inherited weights .*without --weights.*vit.pretrained"):
        save_inherited_weights(ckpt, [[], [], [0, 3], [1, 2]], tmp_path / "subnet.pt")
