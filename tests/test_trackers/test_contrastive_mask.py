"""Which pairs enter the contrastive loss (paper 000 Eq. 2-4), in every VL family: the data path's ``language_mask``
(a positive pair with the video's own language) reaches the loss through the actor, so a negative pair added to a
batch leaves the loss unchanged (issue 18 item 2)."""
import pytest
import torch

from search_spaces.genome import Genome
from search_spaces.vlt import VLTSpace
from supernets.contrastive import contrastive_mask
from trackers.registry import build_actor, build_model

LANG = 8
SCAR = {"name": "vlt_scar", "template_size": 63, "search_size": 127, "neck": {"channels": 32},
        "head": {"num_convs": 2, "gn_groups": 8}, "supernet": {"width_mult": 0.25, "language_dim": LANG}}
TT = {"name": "vlt_tt", "template_size": 64, "search_size": 128, "d_model": 32, "nhead": 4,
      "num_fusion_layers": 1, "dim_feedforward": 64, "dropout": 0.0,
      "supernet": {"width_mult": 0.25, "language_dim": LANG}}
RPN = {"name": "vlt_rpnpp", "template_size": 63, "search_size": 127, "neck": {"channels": 32},
       "head": {"scales": [4]}, "supernet": {"width_mult": 0.25, "language_dim": LANG}}
OST = {"name": "vlt_ost", "template_size": 64, "search_size": 128,
       "vit": {"dim": 32, "depth": 6, "heads": 2, "mlp_ratio": 2.0, "drop_path": 0.0, "ce_layers": [3, 5],
               "ce_keep_ratio": 0.7},
       "head": {"channels": 16}, "mixer": {"language_dim": LANG, "roi_output": 2}}


def family_config(name):
    if name == "vlt_ost":
        return dict(OST, genome=Genome((), (), (0, 3), (1, 2)).to_official())
    return dict({"vlt_scar": SCAR, "vlt_tt": TT, "vlt_rpnpp": RPN}[name], genome=VLTSpace().random(3).to_official())


def batch(cfg, n, seed):
    """``n`` positive pairs with language of their own (random crops, boxes inside the crops)."""
    g = torch.Generator().manual_seed(seed)
    t, s = cfg["template_size"], cfg["search_size"]
    return {"template": torch.rand(n, 3, t, t, generator=g) * 255, "search": torch.rand(n, 3, s, s, generator=g) * 255,
            "template_box": torch.tensor([[t * 0.25, t * 0.25, t * 0.75, t * 0.75]] * n),
            "search_box": torch.tensor([[s * 0.3, s * 0.35, s * 0.65, s * 0.7]] * n),
            "label": torch.ones(n, dtype=torch.long), "language": torch.randn(n, LANG, generator=g),
            "language_mask": torch.ones(n, dtype=torch.bool)}


def join(a, b):
    return {k: torch.cat([a[k], b[k]]) for k in a}


@pytest.mark.parametrize("name", ["vlt_scar", "vlt_tt", "vlt_ost", "vlt_rpnpp"])
def test_a_negative_pair_leaves_the_contrastive_loss_unchanged(name):
    cfg = family_config(name)
    torch.manual_seed(0)
    model = build_model(cfg).eval()  # BatchNorm on running statistics: items do not influence each other
    actor = build_actor(model, cfg, loss={"contrastive_weight": 1.0})
    pos = batch(cfg, 3, seed=1)
    neg = batch(cfg, 1, seed=2)
    neg["label"][:] = 0
    neg["language_mask"][:] = False  # what the sampler gives a negative pair
    with torch.no_grad():
        base = actor.forward_pass(pos, None)["contrastive"]
        mixed = actor.forward_pass(join(pos, neg), None)["contrastive"]
        unmasked = actor.forward_pass(join(pos, dict(neg, language_mask=torch.ones(1, dtype=torch.bool))),
                                      None)["contrastive"]
    assert float(base) > 0
    torch.testing.assert_close(mixed, base, rtol=1e-5, atol=1e-6)
    assert abs(float(unmasked) - float(base)) > 1e-3  # the check can fail: counted as a positive, it changes the loss


def test_contrastive_mask_combines_language_template_and_data_flags():
    language = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.5, 0.5], [2.0, 1.0]])  # item 1: zero language
    use_template = torch.tensor([False, False, True, False])
    data = torch.tensor([True, True, True, False])
    assert contrastive_mask(language).tolist() == [True, False, True, True]
    assert contrastive_mask(language, use_template).tolist() == [True, False, False, True]
    assert contrastive_mask(language, use_template, data).tolist() == [True, False, False, False]
    assert contrastive_mask(language[:1], batch=3).tolist() == [True, True, True]  # one vector for the batch
    with pytest.raises(ValueError, match="language_mask must hold one flag per batch item"):
        contrastive_mask(language, language_mask=torch.tensor([True]))
