"""SATracker (paper 002): hand-computed cases of the corner head, the box mask, Eq. 5 and SAM; TEM's asymmetry; the
CvT loader against ``transformers``' CvT; the paper-size model on ``meta`` (shapes, parameter count, FLOPs); the
YAMLs; a self-describing checkpoint; language once per video and ``language.missing``; lockstep tracking; and the
tiny recipe through ``asearch retrain`` / ``track`` / ``evaluate``."""
import math

import numpy as np
import pytest
import torch

from asearch.config import experiments_dir

TINY = experiments_dir() / "satracker" / "tiny.yaml"
PAPER = experiments_dir() / "satracker" / "paper.yaml"


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
    """The part of a featurizer SATracker reads: the ``language.missing`` strategy (and the MiniLM's width)."""

    dim = 384

    def __init__(self, missing):
        self.missing = missing


# --------------------------------------------------------------------------------------------- hand-computed parts
def test_soft_argmax_by_hand():
    from trackers.heads.corner import soft_argmax

    peaked = torch.full((1, 1, 4, 4), -1e4)
    peaked[0, 0, 1, 3] = 0.0                      # row 1, column 3: centre ((3 + 0.5) / 4, (1 + 0.5) / 4)
    assert torch.allclose(soft_argmax(peaked), torch.tensor([[0.875, 0.375]]))
    assert torch.allclose(soft_argmax(torch.zeros(1, 1, 4, 4)), torch.tensor([[0.5, 0.5]]))   # uniform: centre
    two = torch.full((1, 1, 2, 2), -1e4)
    two[0, 0, 0, 0] = two[0, 0, 1, 1] = 0.0       # half at (0.25, 0.25), half at (0.75, 0.75)
    assert torch.allclose(soft_argmax(two), torch.tensor([[0.5, 0.5]]))


def test_box_mask_and_dense_matching_loss_by_hand():
    from trackers.losses.satracker import box_mask, dense_matching_loss

    # 4x4 cells, centres 0.125, 0.375, 0.625, 0.875; the box x 0.3..0.7, y 0.0..0.4 covers columns 1-2, rows 0-1
    mask = box_mask(torch.tensor([[0.3, 0.0, 0.7, 0.4]]), 4)
    want = torch.zeros(1, 4, 4)
    want[0, 0:2, 1:3] = 1.0
    assert torch.equal(mask, want)
    assert box_mask(torch.tensor([[0.3, 0.0, 0.7, 0.4]]), 4, torch.tensor([False])).sum() == 0
    # Eq. 5 with score 0.07 on the box (logit 1) and -0.07 elsewhere (logit -1): every cell costs log(1 + e^-1)
    score = torch.where(want.bool(), torch.tensor(0.07), torch.tensor(-0.07))
    assert math.isclose(float(dense_matching_loss(score, want, 0.07)), math.log1p(math.exp(-1.0)), rel_tol=1e-5)


def test_sam_by_hand():
    """Identity weights, one head, one word: Eq. 3's softmax over one word is 1, so A = the word; the search map
    becomes X_s + X_s ⊙ sigmoid(word) (BN in eval with mean 0, var 1; the CNN an identity 3×3), the text
    T + (T + max over the template map)."""
    from trackers.models.satracker_blocks import SAM

    sam = SAM(2, 2, 1).eval()
    with torch.no_grad():
        for lin in (sam.text_proj, sam.q, sam.k, sam.v, sam.text_in, sam.text_out):
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
        sam.template_conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        sam.template_conv.bias.zero_()
        sam.cnn.weight.zero_()
        sam.cnn.weight[0, 0, 1, 1] = sam.cnn.weight[1, 1, 1, 1] = 1.0
        sam.cnn.bias.zero_()
        sam.bn.eps = 0.0
    template = torch.tensor([[[[1.0, 3.0]], [[-2.0, 0.5]]]])        # 1×2×1×2: channel maxima 3 and 0.5
    search = torch.tensor([[[[2.0]], [[-1.0]]]])                     # 1×2×1×1
    word = torch.tensor([[[0.0, 2.0]]])                              # 1×1×2
    new_search, new_text = sam(template, search, word, torch.ones(1, 1, dtype=torch.bool))
    gate = torch.sigmoid(torch.tensor([0.0, 2.0]))
    assert torch.allclose(new_search.flatten(), torch.tensor([2.0, -1.0]) * (1 + gate), atol=1e-6)
    assert torch.allclose(new_text.flatten(), torch.tensor([0.0 + 0.0 + 3.0, 2.0 + 2.0 + 0.5]), atol=1e-6)
    # a padded word gets no weight: adding one with a huge value changes nothing
    two = torch.cat([word, torch.full((1, 1, 2), 50.0)], dim=1)
    padded, _ = sam(template, search, two, torch.tensor([[True, False]]))
    assert torch.allclose(padded, new_search, atol=1e-6)


def test_tem_is_asymmetric():
    """Eq. 1-2: the template side does not see the search; the search attends to [K_t; K_s] with one softmax; the
    ``self`` ablation ignores the template."""
    from trackers.backbones.cvt import CvTBlock, to_map

    torch.manual_seed(0)
    block = CvTBlock(8, 2, 2.0).eval()
    z, x = torch.randn(1, 16, 8), torch.randn(1, 64, 8)               # 4×4 template, 8×8 search tokens
    out_z, kv = block.template(z, 4, 4)
    out_z2, kv2 = block.template(z.clone(), 4, 4)
    assert torch.equal(out_z, out_z2) and kv[0].shape == (1, 2, 4, 4)   # K_t: 2 heads, 2×2 after stride 2
    out_x = block.search(x, 8, 8, kv)
    with torch.no_grad():                                            # Eq. 1-2 written out with the block's parts
        m = to_map(block.norm1(x), 8, 8)
        q = block._heads(block.q(block.conv_q(m)))
        k = torch.cat([kv[0], block._heads(block.k(block.conv_k(m)))], dim=2)
        v = torch.cat([kv[1], block._heads(block.v(block.conv_v(m)))], dim=2)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1) @ v
        y = x + block.proj(a.transpose(1, 2).reshape(1, 64, 8))
        y = y + block.fc2(block.act(block.fc1(block.norm2(y))))
    assert torch.allclose(out_x, y, atol=1e-5)
    other = block.template(torch.randn(1, 16, 8), 4, 4)[1]
    assert not torch.allclose(block.search(x, 8, 8, other), out_x)   # the search sees the template
    block.attention = "self"
    assert torch.allclose(block.search(x, 8, 8, other), block.search(x, 8, 8, kv))


def test_cvt_loads_transformers_weights_and_matches_its_forward(tmp_path):
    from transformers import CvtConfig, CvtModel

    from asearch.errors import ModelNotFoundError
    from trackers.backbones.cvt import CvT, load_cvt_weights, to_map

    torch.manual_seed(0)
    hf_cfg = CvtConfig(embed_dim=[8, 16, 32], num_heads=[1, 2, 2], depth=[1, 2, 3],
                       cls_token=[False, False, True], drop_path_rate=[0.0, 0.0, 0.0])
    hf = CvtModel(hf_cfg, add_pooling_layer=False).eval()
    with torch.no_grad():
        for mod in hf.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):                 # non-trivial running statistics
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    hf.save_pretrained(tmp_path / "cvt")
    ours = CvT([8, 16, 32], [1, 2, 3], [1, 2, 2], attention="self").eval()
    assert load_cvt_weights(ours, tmp_path / "cvt") == len(ours.state_dict())   # the class token is skipped
    image = torch.randn(1, 3, 64, 64)
    z = image
    for i in range(2):                                               # stages 1-2 (stage 3 of HF adds its cls token)
        (tokens, h, w), _ = ours.template_stage(i, z)
        z = to_map(tokens, h, w)
    with torch.no_grad():
        want = hf(image, output_hidden_states=True).hidden_states[1]
    assert torch.allclose(z, want, atol=1e-5)
    with pytest.raises(ModelNotFoundError, match="put the ImageNet CvT-21 weights there"):
        load_cvt_weights(ours, tmp_path / "nothing")


# ------------------------------------------------------------------------------------------------------ paper size
@pytest.fixture(scope="module")
def paper_meta():
    """The paper-size model (paper.yaml's model section, BERT-base from ``BertConfig()``) on ``meta``, in eval mode,
    and a 30-token language batch: shared by the count and breakdown tests (forward passes do not change it)."""
    from transformers import BertConfig

    from trackers.models.satracker import build_satracker_model

    cfg = _model_cfg(PAPER, 768, "bert-base-uncased")
    assert cfg.text.encoder == "bert-base-uncased" and cfg.text.width == 768 and cfg.text.stages == [1, 4, 7]
    with torch.device("meta"):
        model = build_satracker_model(cfg, pretrained=False, text_config=BertConfig()).eval()
        lang = {"ids": torch.zeros(1, 30, dtype=torch.long), "mask": torch.ones(1, 30, dtype=torch.bool),
                "has_text": torch.ones(1, dtype=torch.bool)}
    return model, lang


def test_paper_size_shapes_parameter_count_and_flops_on_meta(paper_meta):
    """The paper states 131.3 M parameters and 28.8 GFLOPs (Table 3); the model as the paper describes it has
    146,902,082 (+11.9 %) and 23.6 G multiply-accumulates (-18 %). Component by component:

    * CvT-21 without its class token, final norm and classifier: 31,236,544 (stages 61,696 / 1,915,968 /
      29,258,880; CvT-21 as published: 31.6 M with the 1000-way classifier);
    * BERT-base without its pooler: 108,891,648 (its word embeddings alone 23,440,896);
    * three SAMs: 202,048 / 924,096 / 2,805,888 (our reading of Fig. 4: 1×1 conv, 5 linear maps, BN, 3×3 conv);
    * STARK's corner head on 384 channels, width 256: 2,546,562; the Eq. 4 projection 768 -> 384: 295,296.

    CvT-21 and BERT-base alone already give 140.1 M, more than the paper's total, so no choice in SAM or the head
    reaches 131.3 M while both are whole; the paper does not say what it counted (leaving out BERT's word embeddings
    would give 123.5 M). FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products and convolutions
    only, 2 FLOPs per multiply-accumulate) gives 9.66 G for the template side with the text and 37.53 G for one
    search frame, 23.6 G multiply-accumulates in all; the paper names neither its counter nor whether "FLOPs" are
    multiply-accumulates, nor its text length (30 here)."""
    from torch.utils.flop_counter import FlopCounterMode

    model, lang = paper_meta
    with torch.device("meta"):
        with FlopCounterMode(display=False) as template_flops:
            state = model.template(torch.empty(1, 3, 128, 128), lang)
        with FlopCounterMode(display=False) as search_flops:
            out = model.track(torch.empty(1, 3, 320, 320), state)
    assert [kv[0][0].shape for kv in state["kv"]] == [(1, 1, 256, 64), (1, 3, 64, 64), (1, 6, 16, 64)]
    assert [len(kv) for kv in state["kv"]] == [1, 4, 16] and state["match_text"].shape == (1, 384)
    assert out["pred_boxes"].shape == (1, 4) and out["tl_map"].shape == (1, 1, 20, 20)
    assert out["match_score"].shape == (1, 40, 40)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    parts = (count(model.cvt), count(model.text), count(model.sam), count(model.head), count(model.match_proj))
    assert parts == (31_236_544, 108_891_648, 3_932_032, 2_546_562, 295_296)
    assert count(model) == 146_902_082
    macs = (template_flops.get_total_flops() + search_flops.get_total_flops()) / 2
    assert abs(macs / 1e9 - 23.6) < 0.05


def test_paper_size_mac_breakdown_sums_to_the_total_on_meta(paper_meta):
    """The README's component table (``python -m trackers.models.satracker_flops``): every operator is charged to
    a component, the components sum to :class:`FlopCounterMode`'s total, and the large parts are what the table
    says (G multiply-accumulates)."""
    from torch.utils.flop_counter import FlopCounterMode

    from trackers.flops import UNATTRIBUTED
    from trackers.models.satracker_flops import ATTENTION_PRODUCTS, mac_breakdown

    model, lang = paper_meta
    with torch.device("meta"):
        with FlopCounterMode(display=False) as flops:
            model.track(torch.empty(1, 3, 320, 320), model.template(torch.empty(1, 3, 128, 128), lang))
    rows = mac_breakdown(model)
    assert all(comp != UNATTRIBUTED for _, comp, _, _ in rows)
    assert sum(n for *_, n in rows) == flops.get_total_flops() / 2
    part = lambda side, prefix, products=None: sum(  # noqa: E731
        n for s, c, op, n in rows if s == side and c.startswith(prefix)
        and (products is None or (op in ATTENTION_PRODUCTS) == products)) / 1e9
    assert abs(part("template", "BERT") - 2.565) < 0.001                # 12 layers x 30 tokens
    assert abs(part("search", "CvT stage 3: TEM") - 10.512) < 0.001
    assert abs(part("search", "CvT stage 1: TEM", products=True) - 1.520) < 0.001   # 6400 queries x 1856 keys
    assert abs(part("search", "SAM") - 1.298) < 0.001
    assert abs(part("search", "corner head") - 1.017) < 0.001
    assert abs(part("template", "") - 4.830) < 0.001 and abs(part("search", "") - 18.766) < 0.001


def test_paper_size_detailed_breakdown_adds_up_and_matches_hand_counts_on_meta(paper_meta):
    """The README's detailed table (``python -m trackers.models.satracker_flops``): the sub-components of each CvT
    stage and BERT stage add up to the coarse breakdown's total, the table's rows to its total row (both columns),
    and single parts equal their hand counts (MACs: tokens x in x out; thop-style: + conv-bias outputs + 2 per
    BatchNorm element)."""
    from trackers.models.satracker_flops import (ATTENTION_PRODUCTS, component_table, count_breakdown,
                                                 cvt21_imagenet_macs, detailed_components, mac_breakdown,
                                                 thop_style)

    model, _ = paper_meta
    parts = detailed_components(model)
    rows, elems = count_breakdown(model, parts=parts)
    coarse = mac_breakdown(model)
    assert sum(n for *_, n in rows) == sum(n for *_, n in coarse) == 23_595_766_272
    for i in (1, 2, 3):
        fine = sum(n for _, c, _, n in rows if c.startswith(f"CvT stage {i}:"))
        assert fine == sum(n for _, c, _, n in coarse if c.startswith(f"CvT stage {i}:"))
    assert sum(n for _, c, _, n in rows if c.startswith("BERT")) == sum(n for _, c, _, n in coarse
                                                                     if c.startswith("BERT"))
    table = component_table(rows, elems, [name for name, _ in parts])
    *body, total = table
    assert total[0] == "total" and len({c for c, *_ in body}) == len(body)
    assert total[1] == sum(r[1] for r in body) and total[2] == sum(r[2] for r in body)
    assert total[1] + total[2] == sum(n for *_, n in rows)
    assert abs(total[3] - sum(r[3] for r in body)) < 1 and abs(total[3] - thop_style(rows, elems)) < 1

    cell = {(s, c): 0.0 for s, c, _, _ in rows}
    for s, c, _, n in rows:
        cell[(s, c)] += n
    # stage 3 MLP, one search frame: 16 blocks x 20*20 tokens x (384*1536 + 1536*384)
    assert cell[("search", "CvT stage 3: MLP")] == 16 * 400 * (384 * 1536 + 1536 * 384)
    # stage 1 linears: q and the output map on 80*80 tokens, k and v on the stride-2 40*40 tokens, 64 -> 64 each
    assert cell[("search", "CvT stage 1: q/k/v/out linears")] == 64 * 64 * (6400 + 1600 + 1600 + 6400)
    # stage 1 attention products: Q K^T and A V, 6400 queries x (16*16 template + 40*40 search keys) x 64
    assert cell[("search", "CvT stage 1: attention products")] == 2 * 6400 * (256 + 1600) * 64
    # corner head on the 20*20 map: towers 384 -> 256 -> 128 -> 64 -> 32 (3x3) -> 1 (1x1), twice
    head_macs = 2 * 400 * (9 * (384 * 256 + 256 * 128 + 128 * 64 + 64 * 32) + 32)
    head = next(r for r in table if r[0] == "corner head")
    assert head[1:3] == (0.0, head_macs)
    assert head[3] == head_macs + 2 * 400 * (256 + 128 + 64 + 32 + 1) + 2 * 2 * 400 * (256 + 128 + 64 + 32)
    cvt_products = sum(n for _, c, op, n in rows if c.startswith("CvT") and op in ATTENTION_PRODUCTS)
    assert abs(thop_style(rows, elems, cvt_products=True) - thop_style(rows, elems) - cvt_products) < 1
    # our counting reproduces CvT-21's published 7.1 / 24.9 GFLOPs at 224 / 384 (their rule: one multiply-add, one
    # FLOP; their class token and classifier are not in ours)
    assert abs(cvt21_imagenet_macs() / 1e9 - 7.146) < 0.001 and abs(cvt21_imagenet_macs(384) / 1e9 - 24.812) < 0.001


def test_every_satracker_yaml_loads_and_the_paper_recipe_is_the_papers():
    from asearch.commands.track import load_track_config
    from asearch.config import from_dict
    from asearch.training.recipes import load_experiment
    from trackers.inference.satracker import SATrackerTrackerConfig
    from trackers.registry import build_model

    names = sorted(p.name for p in (experiments_dir() / "satracker").glob("*.yaml"))
    assert names == ["ablation_baseline.yaml", "ablation_no_dm.yaml", "ablation_tem.yaml", "paper.yaml", "paper_stark.yaml", "tiny.yaml",
                     "track.yaml"]
    track = from_dict(SATrackerTrackerConfig, load_track_config(str(experiments_dir() / "satracker" /
                                                                    "track.yaml")).tracker)
    assert (track.template_factor, track.search_factor) == (2.0, 5.0)
    paper = load_experiment(PAPER)
    t = paper.train
    assert (t.optimizer, t.lr, t.weight_decay, t.schedule, t.milestones, t.gamma) == (
        "adamw", 1e-4, 1e-4, "step", [600000], 0.1)
    assert t.lr_mult == {"backbone": 0.1}     # the synchronous learning backbone (CvT, BERT, SAMs) at 1e-5
    assert t.steps * t.batch_size * 2 == 200 * 60000 and t.milestones[0] * t.batch_size * 2 == 160 * 60000
    assert [d.name for d in paper.data.datasets] == ["tnl2k", "otb99_lang", "lasot"]
    assert (paper.loss["giou_weight"], paper.loss["l1_weight"], paper.loss["dm_weight"],
            paper.loss["temperature"]) == (2, 5, 1, 0.07)
    m = paper.model
    assert (m["template_size"], m["search_size"], m["match_size"], m["text"]["max_length"]) == (128, 320, 40, 30)
    stark = load_experiment(experiments_dir() / "satracker" / "paper_stark.yaml")
    assert [d.name for d in stark.data.datasets] == ["lasot", "got10k", "coco", "trackingnet"]
    assert stark.train.steps * 16 == 500 * 60000
    tem = load_experiment(experiments_dir() / "satracker" / "ablation_tem.yaml")
    no_dm = load_experiment(experiments_dir() / "satracker" / "ablation_no_dm.yaml")
    assert tem.model["sam"] is False and tem.loss["dm_weight"] == 0 and no_dm.loss["dm_weight"] == 0
    # setting ② at tiny size: a vision-only model without a language model, trains without the DM term
    vision = build_model(dict(_model_cfg(TINY, 384).__dict__, sam=False), pretrained=False)
    assert vision.text is None and not vision.uses_language
    out = vision(torch.rand(2, 3, 64, 64) * 255, torch.rand(2, 3, 128, 128) * 255)
    assert "match_score" not in out and out["pred_boxes"].shape == (2, 4)
    from asearch.training.optim import param_groups

    groups = param_groups(vision, 1e-4, tem.train.lr_mult)     # the paper's lr_mult also fits the ablation
    assert sorted({g["lr"] for g in groups}) == [pytest.approx(1e-5), pytest.approx(1e-4)]
    full = build_model(_model_cfg(TINY, 384), pretrained=False)
    slow = {n for n, _ in full.named_parameters() if n.startswith("backbone.")}
    assert any(n.startswith("backbone.sam.") for n in slow) and not any(n.startswith("head.") for n in slow)


def test_ablation_baseline_has_transt_neck_and_tracks():
    """Table 4 setting ①: plain CvT self-attention, no SAM, TransT's ECA/CFA network before the corner head; the
    neck's template tokens are part of the once-per-video state."""
    from asearch.training.recipes import load_experiment
    from trackers.heads.transt import FeatureFusionNetwork
    from trackers.registry import build_model, build_tracker

    paper = load_experiment(experiments_dir() / "satracker" / "ablation_baseline.yaml")
    assert paper.model["cvt"]["attention"] == "self" and paper.model["sam"] is False
    assert paper.model["neck"]["enabled"] and paper.loss["dm_weight"] == 0
    cfg = _model_cfg(TINY, 384)
    tiny = dict(cfg.__dict__, sam=False, cvt=dict(cfg.cvt.__dict__, attention="self"), text=cfg.text.__dict__,
                head=cfg.head.__dict__, neck={"enabled": True, "d_model": 32, "nhead": 2, "num_layers": 1,
                                              "dim_feedforward": 64, "dropout": 0.0})
    torch.manual_seed(0)
    model = build_model(tiny, pretrained=False).eval()
    assert isinstance(model.neck, FeatureFusionNetwork) and model.text is None
    assert all(b.attention == "self" for s in model.cvt.stages for b in s.blocks)
    with torch.no_grad():
        state = model.template(torch.rand(1, 3, 64, 64) * 255)
    assert state["neck_z"].shape == (1, 16, 32) and state["neck_pos_z"].shape == (1, 16, 32)
    trk = build_tracker(model, tiny, {"margin": 4}, device="cpu")
    frame = np.full((96, 96, 3), 90, np.uint8)
    trk.initialize(frame, [30, 30, 20, 20], "ignored words")
    box = trk.track(frame)["box"]
    assert len(box) == 4 and all(np.isfinite(box))


def test_config_errors():
    from asearch.errors import ConfigError
    from trackers.registry import build_model, model_config

    with pytest.raises(ConfigError, match="attention must be one of"):
        model_config({"name": "satracker", "cvt": {"attention": "symmetric"}})
    with pytest.raises(ConfigError, match="multiple of the CvT's stride 16"):
        model_config({"name": "satracker", "search_size": 300})
    with pytest.raises(ConfigError, match="one positive count of language layers per CvT stage"):
        model_config({"name": "satracker", "text": {"stages": [1, 4]}})
    deep = {"name": "satracker", "template_size": 64, "search_size": 128, "text": {"encoder": "default",
            "stages": [1, 4, 7]}, "cvt": {"dims": [8, 16, 32], "depths": [1, 1, 1], "heads": [1, 1, 1]}}
    with pytest.raises(ConfigError, match="need 12 language layers"):
        build_model(deep, pretrained=False)


# ------------------------------------------------------------------------------------------- checkpoint, tracking
def test_checkpoint_rebuilds_the_model(tiny, tmp_path):
    from trackers.registry import build_info, load_model

    model, cfg = tiny
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "build_info": build_info(cfg)}, path)
    rebuilt, cfg2 = load_model(path)
    assert cfg2.name == "satracker" and cfg2.text.encoder == "default" and rebuilt.text.layers == 3
    for key, value in model.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key
    torch.manual_seed(1)
    z, x = torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 3, 128, 128) * 255
    lang = model.tokenize(["a red ball"], torch.tensor([True]))
    with torch.no_grad():
        a, b = model(z, x, lang), rebuilt.eval()(z, x, lang)
    assert torch.allclose(a["pred_boxes"], b["pred_boxes"], atol=1e-6)


def test_language_once_per_video_and_missing_language(tiny):
    from trackers.actors.pjvlt import batch_language
    from trackers.registry import build_tracker

    model, cfg = tiny
    batch = {"sentence": ["a red ball", "a red ball", None], "has_language": [True, False, False],
             "attributes": [None, None, None]}
    zero = batch_language(model, batch, Missing("zero"), torch.device("cpu"))
    assert zero["has_text"].tolist() == [True, False, False]
    with torch.no_grad():
        state = model.template(torch.rand(3, 3, 64, 64) * 255, zero)
    assert state["has_text"].tolist() == [True, False, False]
    assert state["match_text"][1:].abs().sum() == 0 and state["match_text"][0].abs().sum() > 0   # zero_missing
    assert torch.allclose(state["selector"][2][1], state["selector"][2][2])   # no text: the same (empty) selector
    attr = batch_language(model, batch, Missing("attribute"), torch.device("cpu"))
    assert attr["has_text"].tolist() == [True, True, True]

    frame = np.full((96, 96, 3), 90, np.uint8)
    frame[30:50, 30:50] = (200, 30, 30)
    calls, got = [], {}
    original = model.template
    model.template = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        runs = (("zero", None), ("zero", ""), ("attribute", None), ("zero", "a red ball"))
        for missing, language in runs:
            trk = build_tracker(model, cfg, {"margin": 4}, featurizer=Missing(missing), device="cpu")
            trk.initialize(frame, [30, 30, 20, 20], language)
            got[(missing, language)] = [trk.track(frame)["box"] for _ in range(3)]
    finally:
        del model.template
    assert len(calls) == len(runs)        # the template side and the text ran once per video, not per frame
    assert got[("zero", None)] == got[("zero", "")]
    assert got[("attribute", None)] != got[("zero", None)]
    assert got[("zero", "a red ball")] != got[("zero", None)]


def test_tracker_batched_equals_single(tiny):
    from trackers.inference.satracker import SATrackerTracker
    from trackers.registry import build_tracker

    model, cfg = tiny
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(3)]
    boxes, texts = [[30, 30, 20, 20], [20, 40, 24, 16]], ["a red ball", "the long green sentence about a box"]
    trk = build_tracker(model, cfg, {"margin": 4}, featurizer=Missing("zero"), device="cpu")
    assert isinstance(trk, SATrackerTracker)
    trk.initialize_batch([frames[0]] * 2, boxes, texts)
    both = [trk.track_batch([f, f]) for f in frames[1:]]
    for i in range(2):
        trk.initialize(frames[0], boxes[i], texts[i])
        single = [trk.track(f) for f in frames[1:]]
        for a, b in zip(single, both):
            assert np.allclose(a["box"], b[i]["box"], atol=1e-3) and abs(a["score"] - b[i]["score"]) < 1e-5


def test_tiny_recipe_retrains_tracks_and_evaluates_through_the_cli(tiny_cli_run):
    ckpt, run = tiny_cli_run("satracker", TINY, ["model.text.trainable=true"],   # the paper fine-tunes the words
                             ["tracker.margin=4"])
    assert ckpt["build_info"]["model"]["text"] == {"encoder": "default", "width": 384, "trainable": True,
                                                   "max_length": 16, "stages": [1, 1, 1]}
    assert "loss_dm" in (run / "train_log.csv").read_text().splitlines()[0]


def test_second_stage_starts_from_the_first_stages_checkpoint(tmp_path):
    """paper_stark.yaml then paper.yaml: ``asearch retrain --init <stage 1>/checkpoints/latest.pt`` starts stage 2
    from every model tensor of stage 1 (tiny config, 2 steps each); its steps count from 0 again."""
    from asearch.cli import main
    from asearch.data.synthetic import generate_benchmark
    from asearch.errors import CheckpointError, ConfigError
    from asearch.training.recipes import build_experiment, load_experiment
    from asearch.training.trainer import load_checkpoint

    torch.set_num_threads(1)
    root = generate_benchmark(tmp_path / "synth", videos=4, frames=6, size=96, seed=0, distractors=0)
    sets = [f"data.datasets.0.root={root}", "train.steps=2", "train.batch_size=2", "train.log_every=1",
            "train.checkpoint_every=0", "train.device=cpu", "train.lr=0.01"]
    flags = [a for kv in sets for a in ("--set", kv)]
    assert main(["retrain", "--config", str(TINY), "--out", str(tmp_path / "s1"), "--no-progress", *flags]) == 0
    first = tmp_path / "s1" / "checkpoints" / "latest.pt"
    trained = load_checkpoint(first)["model"]

    cfg = load_experiment(TINY, sets)
    fresh = build_experiment(cfg, "retrain", out_dir=tmp_path / "fresh", progress=False).model.state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in trained.items())       # stage 1 changed the weights
    exp = build_experiment(cfg, "retrain", out_dir=tmp_path / "s2a", progress=False, init=first)
    assert all(torch.equal(exp.model.state_dict()[k], v) for k, v in trained.items())
    assert exp.info["init_checkpoint"] == {"path": str(first), "tensors": len(trained), "step": 2}
    assert all("training checkpoint (--init)" in line for line in exp.info["init"])

    assert main(["retrain", "--config", str(TINY), "--out", str(tmp_path / "s2"), "--no-progress",
                 "--init", str(first), *flags]) == 0
    second = load_checkpoint(tmp_path / "s2" / "checkpoints" / "latest.pt")
    assert second["step"] == 2 and second["config"]["retrain"]["init"] == str(first)

    with pytest.raises(ConfigError, match="not both"):
        build_experiment(cfg, "retrain", out_dir=tmp_path / "x", init=first, weights=first)
    with pytest.raises(ConfigError, match="are for asearch retrain"):
        build_experiment(cfg, "pretrain", out_dir=tmp_path / "x", init=first)
    other = load_experiment(TINY, sets + ["model.head.channels=16"])
    with pytest.raises(CheckpointError, match="--init"):
        build_experiment(other, "retrain", out_dir=tmp_path / "y", init=first)
