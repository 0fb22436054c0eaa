"""SiamRPN++ family (SiamRPN++, VLT_RPN++): anchors, box coding, the RPN head, anchor targets and the loss (hand
cases), the models, the actor, the tracker and the tiny recipes."""
import math

import pytest
import torch

from trackers.heads.car import location_offset, score_size
from trackers.heads.rpn import (MultiRPN, anchor_deltas, anchor_logits, anchor_shapes, decode_boxes, encode_boxes,
                                generate_anchors)


# ----------------------------------------------------------------------------------------------------------------------
# anchors, coding, head
def test_anchor_shapes_are_pysots():
    # stride 8 -> area 64; r = 0.33: ws = int(sqrt(64 / 0.33)) = 13, hs = int(13 * 0.33) = 4 -> 104 x 32 at scale 8
    # r = 0.5: 11, 5; r = 1: 8, 8; r = 2: 5, 10; r = 3: 4, 12
    expected = torch.tensor([[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]], dtype=torch.float32)
    torch.testing.assert_close(anchor_shapes(8), expected)
    # two scales: scale-minor order
    torch.testing.assert_close(anchor_shapes(4, [1.0], [2, 3]), torch.tensor([[8.0, 8.0], [12.0, 12.0]]))


def test_anchor_centres_and_order_on_a_tiny_map():
    # 2x2 map, stride 8, offset 31, ratios 1 and 2 at scale 1: shapes (8, 8) and (5, 10)
    anchors = generate_anchors(2, 8, 31.0, ratios=[1.0, 2.0], scales=[1.0])
    assert anchors.shape == (8, 4)
    centres = torch.tensor([[31.0, 31.0], [39.0, 31.0], [31.0, 39.0], [39.0, 39.0]])  # row-major (x, y)
    torch.testing.assert_close(anchors[:4, :2], centres)
    torch.testing.assert_close(anchors[4:, :2], centres)
    torch.testing.assert_close(anchors[:4, 2:], torch.tensor([[8.0, 8.0]]).expand(4, 2))
    torch.testing.assert_close(anchors[4:, 2:], torch.tensor([[5.0, 10.0]]).expand(4, 2))


def test_paper_geometry_puts_zero_motion_at_the_crop_centre():
    m, off = score_size(127, 255), location_offset(127)
    assert (m, off) == (26, 31.0)          # pysot: 25 locations from 31 (15x15 / 31x31 maps); here 16x16 / 32x32
    anchors = generate_anchors(m, 8, off)
    assert anchors.shape == (5 * 26 * 26, 4)
    assert anchors[12 * 26 + 12, :2].tolist() == [127.0, 127.0]


def test_encode_then_decode_is_the_identity():
    g = torch.Generator().manual_seed(0)
    anchors = torch.cat([torch.rand(50, 2, generator=g) * 200, 10 + torch.rand(50, 2, generator=g) * 90], dim=1)
    boxes = torch.cat([torch.rand(50, 2, generator=g) * 200, 5 + torch.rand(50, 2, generator=g) * 120], dim=1)
    deltas = encode_boxes(boxes, anchors)
    torch.testing.assert_close(decode_boxes(deltas, anchors), boxes)
    torch.testing.assert_close(encode_boxes(decode_boxes(deltas, anchors), anchors), deltas)
    # a hand value: box (14, 20, 16, 8) on anchor (10, 10, 8, 4) -> (0.5, 2.5, log 2, log 2)
    d = encode_boxes(torch.tensor([14.0, 20.0, 16.0, 8.0]), torch.tensor([10.0, 10.0, 8.0, 4.0]))
    torch.testing.assert_close(d, torch.tensor([0.5, 2.5, math.log(2), math.log(2)]))


def test_multi_rpn_shapes_and_weighted_fusion():
    torch.manual_seed(0)
    head = MultiRPN(3, channels=16, anchor_num=5).eval()
    kernels = [torch.randn(2, 16, 7, 7) for _ in range(3)]
    search = [torch.randn(2, 16, 16, 16) for _ in range(3)]
    out = head(kernels, search)
    assert out["cls"].shape == (2, 10, 10, 10) and out["loc"].shape == (2, 20, 10, 10)
    assert anchor_logits(out["cls"], 5).shape == (2, 2, 500) and anchor_deltas(out["loc"], 5).shape == (2, 500, 4)
    # the fusion is Σ softmax(w)_l · out_l: with all weight on level 2 it is level 2's output
    with torch.no_grad():
        head.cls_weight.copy_(torch.tensor([-1e4, -1e4, 0.0]))
        head.loc_weight.copy_(torch.tensor([0.0, 0.0, 0.0]))
    out = head(kernels, search)
    level = [rpn(z, x) for rpn, z, x in zip(head.rpns, kernels, search)]
    torch.testing.assert_close(out["cls"], level[2]["cls"])
    torch.testing.assert_close(out["loc"], sum(lv["loc"] for lv in level) / 3)
    with pytest.raises(ValueError, match="expects 3 levels"):
        head(kernels[:2], search)


def test_anchor_layout_is_class_major_then_anchor():
    # channel c * K + k of cls and channel j * K + k of loc belong to anchor k (pysot's view(b, 2, K, h, w))
    k, m = 2, 3
    cls = torch.arange(2 * k * m * m, dtype=torch.float32).reshape(1, 2 * k, m, m)
    logits = anchor_logits(cls, k)
    assert logits[0, 1, m * m + 4].item() == cls[0, k + 1, 1, 1].item()
    loc = torch.arange(4 * k * m * m, dtype=torch.float32).reshape(1, 4 * k, m, m)
    deltas = anchor_deltas(loc, k)
    assert deltas[0, m * m + 4, 3].item() == loc[0, 3 * k + 1, 1, 1].item()


# ----------------------------------------------------------------------------------------------------------------------
# anchor targets and the loss (hand cases)
# five anchors cx, cy, w, h against the box x1, y1, x2, y2 = 5, 5, 15, 15:
# A0 = the box (IoU 1), A1 shifted by 2 (80 / 120 = 0.667), A2 shifted by 5 (50 / 150 = 0.333: ignored),
# A3 far away (0), A4 twice as large around it (100 / 400 = 0.25)
HAND_ANCHORS = torch.tensor([[10.0, 10, 10, 10], [12, 10, 10, 10], [15, 10, 10, 10], [30, 30, 10, 10],
                             [10, 10, 20, 20]])
HAND_BOX = torch.tensor([[5.0, 5, 15, 15]])


def test_anchor_targets_hand_case():
    from trackers.losses.rpn import RPNLossConfig, anchor_targets

    labels, deltas, weights = anchor_targets(HAND_ANCHORS, HAND_BOX, RPNLossConfig())
    assert labels.tolist() == [[1, 1, -1, 0, 0]]
    torch.testing.assert_close(weights, torch.tensor([[0.5, 0.5, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(deltas[0, 0], torch.zeros(4))
    torch.testing.assert_close(deltas[0, 1], torch.tensor([-0.2, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(deltas[0, 4], torch.tensor([0.0, 0.0, math.log(0.5), math.log(0.5)]))
    # at most pos_num positives and total_num - pos_num negatives, drawn by the generator (reproducibly)
    cfg = RPNLossConfig(pos_num=1, total_num=2)
    draws = set()
    for seed in range(20):
        lab, _, w = anchor_targets(HAND_ANCHORS, HAND_BOX, cfg, generator=torch.Generator().manual_seed(seed))
        assert (lab == 1).sum() == 1 and (lab == 0).sum() == 1 and lab[0, 2] == -1
        assert w.sum().item() == pytest.approx(1.0) and w[lab == 1].item() == 1.0
        draws.add(tuple(lab[0].tolist()))
        again, _, _ = anchor_targets(HAND_ANCHORS, HAND_BOX, cfg, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(lab, again)
    assert len(draws) == 4   # both positives and both negatives get drawn


def test_negative_pair_gets_only_negatives_near_the_target():
    from trackers.losses.rpn import RPNLossConfig, anchor_targets

    # a 5x5 grid (stride 8, offset 0), one shape; the box centre (25, 15) is nearest to location (row 2, col 3)
    anchors = generate_anchors(5, 8, 0.0, ratios=[1.0], scales=[1.0])
    box = torch.tensor([[17.0, 7.0, 33.0, 23.0]])
    labels, _, weights = anchor_targets(anchors, box, RPNLossConfig(neg_radius=1), positive_pairs=torch.tensor([0]))
    grid = labels.reshape(5, 5)
    expected = torch.full((5, 5), -1)
    expected[1:4, 2:5] = 0                                   # rows 1-3, columns 2-4 (clipped at the border)
    assert torch.equal(grid, expected) and weights.sum() == 0
    labels, _, _ = anchor_targets(anchors, box, RPNLossConfig(neg_radius=1, neg_num=4), positive_pairs=[False])
    assert (labels == 0).sum() == 4 and (labels == 1).sum() == 0


def test_rpn_loss_hand_case():
    from trackers.losses.rpn import RPNLoss, RPNLossConfig

    # K = 5 anchors on a 1x1 map: cls channel c * 5 + k; background logits 0, target logits x_k
    x = torch.tensor([2.0, -1.0, 0.5, 1.0, -3.0])
    cls = torch.cat([torch.zeros(5), x]).reshape(1, 10, 1, 1)
    loc = torch.zeros(1, 20, 1, 1)
    p = torch.sigmoid(x)                                     # softmax over (0, x_k)
    loss_cls = 0.5 * -(torch.log(p[0]) + torch.log(p[1])) / 2 + 0.5 * -(torch.log(1 - p[3]) + torch.log(1 - p[4])) / 2
    loss_loc = 0.5 * 0.0 + 0.5 * 0.2                         # positives A0 (delta 0) and A1 (|-0.2|), weight 1/2 each
    loss = RPNLoss(RPNLossConfig())
    total, stats = loss({"cls": cls, "loc": loc, "contrastive": torch.tensor(0.5)}, HAND_ANCHORS, HAND_BOX)
    assert stats["loss_cls"] == pytest.approx(float(loss_cls), rel=1e-5)
    assert stats["loss_loc"] == pytest.approx(loss_loc, rel=1e-5)
    assert stats["loss_contrastive"] == 0.5 and stats["positives"] == 2
    assert float(total) == pytest.approx(float(loss_cls) + 1.2 * loss_loc + 0.5, rel=1e-5)
    total, stats = RPNLoss(RPNLossConfig(contrastive_weight=0.0))({"cls": cls, "loc": loc}, HAND_ANCHORS, HAND_BOX)
    assert "loss_contrastive" not in stats
    assert float(total) == pytest.approx(float(loss_cls) + 1.2 * loss_loc, rel=1e-5)
    with pytest.raises(ValueError, match="5 anchors"):
        loss({"cls": torch.zeros(1, 10, 2, 2), "loc": torch.zeros(1, 20, 2, 2)}, HAND_ANCHORS, HAND_BOX)


# ----------------------------------------------------------------------------------------------------------------------
# tracker (hand case with a known peak)
class PeakRPN(torch.nn.Module):
    """Model-interface fake: one 32x32 anchor shape on the 10x10 map of 63/127 crops; ``track`` returns the logits
    and deltas set in ``self.peaks`` (one ``(anchor index, deltas)`` per video of the batch)."""

    def __init__(self):
        super().__init__()
        self.uses_language, self.template_size, self.search_size, self.stride = False, 63, 127, 8
        self.location_offset, self.score_size, self.anchor_num = location_offset(63), score_size(63, 127), 1
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.peaks = []

    def anchors(self, size=None, device=None):
        return generate_anchors(size or self.score_size, 8, self.location_offset, [1.0], [4.0], device)

    def template(self, template, language=None, genome=None, template_box=None, use_template_language=None):
        return {"kernels": [template.mean(dim=(2, 3))], "genome": genome}

    def track(self, search, state):
        m = self.score_size
        cls = torch.zeros(search.shape[0], 2, m * m)
        cls[:, 1] = -10.0
        loc = torch.zeros(search.shape[0], 4, m * m)
        for i, (index, deltas) in enumerate(self.peaks):
            cls[i, 1, index] = 10.0
            loc[i, :, index] = torch.tensor(deltas)
        return {"cls": cls.view(-1, 2, m, m), "loc": loc.view(-1, 4, m, m)}


def test_tracker_decodes_the_peak_anchor_by_hand():
    import numpy as np

    from trackers.inference.rpn import RPNTracker, RPNTrackerConfig

    model = PeakRPN()
    cfg = RPNTrackerConfig(topk=3)
    tracker = RPNTracker(model, cfg, device="cpu")
    image = np.full((200, 200, 3), 90, np.uint8)
    tracker.initialize(image, [84.0, 84.0, 32.0, 32.0])           # centre (100, 100), size 32 x 32
    # the peak: location row 6, col 5 -> crop pixel (31 + 40, 31 + 48) = (71, 79); dx = 0.25, dw = log 1.25:
    # box (71 + 8, 79, 40, 32) in crop pixels
    model.peaks = [(6 * 10 + 5, [0.25, 0.0, math.log(1.25), 0.0])]
    out = tracker.track(image)
    s = 63 / 64                                                   # s_z = sqrt(64 * 64): crop scale T / s_z
    cx, cy = 100 + (79 - 63) / s, 100 + (79 - 63) / s            # the crop centre 63 sits on the previous centre

    def sz(w, h):
        return math.sqrt((w + (w + h) / 2) * (h + (w + h) / 2))

    s_c = sz(40, 32) / sz(32 * s, 32 * s)
    r_c = 1.25
    penalty = math.exp(-(r_c * s_c - 1) * cfg.penalty_k)
    score = 1 / (1 + math.exp(-10))
    lr = penalty * score * cfg.lr
    w, h = 32 * (1 - lr) + 40 / s * lr, 32 * (1 - lr) + 32 / s * lr
    np.testing.assert_allclose(out["box"], [cx - w / 2, cy - h / 2, w, h], rtol=1e-5)
    assert out["score"] == pytest.approx(score) and out["pscore"] == pytest.approx(penalty * score, rel=1e-5)
    assert len(out["proposals"]) == 3 and out["proposal_scores"][0] == pytest.approx(penalty * score, rel=1e-5)
    np.testing.assert_allclose(out["proposals"][0], [cx - 20 / s, cy - 16 / s, 40 / s, 32 / s], rtol=1e-5)
    np.testing.assert_allclose(out["proposal_crop_boxes"][0], [79 - 20, 79 - 16, 79 + 20, 79 + 16], rtol=1e-5)
    assert out["proposal_scores"][1] < 1e-3


def test_tracker_batched_equals_single():
    import numpy as np

    from trackers.inference.rpn import RPNTracker

    image = np.full((200, 200, 3), 90, np.uint8)
    boxes = [[84.0, 84.0, 32.0, 32.0], [40.0, 60.0, 24.0, 40.0]]
    peaks = [(6 * 10 + 5, [0.25, 0.0, math.log(1.25), 0.0]), (2 * 10 + 7, [-0.1, 0.3, 0.0, math.log(0.8)])]
    single = []
    for box, peak in zip(boxes, peaks):
        model = PeakRPN()
        t = RPNTracker(model, device="cpu")
        t.initialize(image, box)
        model.peaks = [peak]
        single.append([t.track(image)["box"] for _ in range(3)])
    model = PeakRPN()
    t = RPNTracker(model, device="cpu")
    t.initialize_batch([image, image], boxes)
    model.peaks = peaks
    batched = [[], []]
    for _ in range(3):
        for k, out in enumerate(t.track_batch([image, image])):
            batched[k].append(out["box"])
    np.testing.assert_allclose(np.array(batched), np.array(single), atol=1e-9)


# ----------------------------------------------------------------------------------------------------------------------
# models, registry, actor, checkpoints
# anchor scale 4 on 63/127 crops: the target is ~T/2 = 32 px wide in the crops, the square anchor 32 x 32 (scale 8
# gives 64 x 64, IoU 0.25 with a centred 32 x 32 target: no positive)
TINY_VLT = {"name": "vlt_rpnpp", "template_size": 63, "search_size": 127, "neck": {"channels": 16},
            "head": {"scales": [4.0]}, "supernet": {"width_mult": 0.25, "language_dim": 8}}
TINY_RES = {"name": "siamrpnpp", "template_size": 63, "search_size": 127, "neck": {"channels": 16},
            "head": {"scales": [4.0]}, "resnet": {"width_mult": 0.125}}


def pair_batch(b=2):
    g = torch.Generator().manual_seed(1)
    return {"template": torch.rand(b, 3, 63, 63, generator=g) * 255,
            "search": torch.rand(b, 3, 127, 127, generator=g) * 255,
            "template_box": torch.tensor([[16.0, 16.0, 46.0, 46.0]] * b),
            "search_box": torch.tensor([[40.0, 50.0, 80.0, 84.0]] * b),
            "label": torch.tensor([1] + [0] * (b - 1)), "language_mask": torch.tensor([True] * b),
            "sentence": ["a red ball", "a dog"][:b], "attributes": [None] * b, "has_language": [True] * b,
            "language_strategy": [None] * b}


def test_models_shapes_split_and_subnet_equivalence():
    import copy

    from search_spaces.vlt import VLTSpace
    from supernets import extract_subnet
    from trackers.models.rpn import SiamRPNPP, VLTRPNPP
    from trackers.registry import build_model

    torch.manual_seed(0)
    base = build_model(TINY_RES).eval()
    assert isinstance(base, SiamRPNPP) and base.score_size == 10 and base.anchor_num == 5
    b = pair_batch()
    out = base(b["template"], b["search"])
    assert out["cls"].shape == (2, 10, 10, 10) and out["loc"].shape == (2, 20, 10, 10)
    split = base.track(b["search"], base.template(b["template"]))
    torch.testing.assert_close(split["cls"], out["cls"], atol=1e-4, rtol=1e-4)
    assert base.anchors().shape == (500, 4)
    vlt = build_model(TINY_VLT).eval()
    assert isinstance(vlt, VLTRPNPP) and vlt.needs_genome and vlt.uses_language
    g, lang = VLTSpace().random(3), torch.randn(2, 8)
    a = vlt(b["template"], b["search"], lang, genome=g)
    torch.testing.assert_close(vlt.track(b["search"], vlt.template(b["template"], lang, genome=g))["loc"], a["loc"],
                               atol=1e-4, rtol=1e-4)
    sub = VLTRPNPP(extract_subnet(vlt.backbone, g), copy.deepcopy(vlt.neck), copy.deepcopy(vlt.head),
                   template_size=63, search_size=127).eval()
    torch.testing.assert_close(sub(b["template"], b["search"], lang)["cls"], a["cls"], atol=1e-5, rtol=1e-5)


def test_model_config_errors():
    from asearch.errors import ArchitectureError, ConfigError
    from trackers.heads.rpn import MultiRPN
    from trackers.backbones.resnet import resnet50
    from trackers.models.rpn import SiamRPNPP
    from trackers.necks import AdjustNeck
    from trackers.registry import model_config

    with pytest.raises(ConfigError, match="SiamRPN\\+\\+ family"):
        model_config({"name": "vlt_rpnpp", "resnet": {}}).__class__(name="siamcar")
    with pytest.raises(ConfigError, match="model.genome applies to vlt_rpnpp only"):
        model_config({"name": "siamrpnpp", "genome": [[0]]})
    with pytest.raises(ConfigError, match="ratios and model.head.scales"):
        model_config({"name": "siamrpnpp", "head": {"ratios": []}})
    with pytest.raises(ArchitectureError, match="5 anchors per location"):
        SiamRPNPP(resnet50(0.125), AdjustNeck([8, 8, 8], 8), MultiRPN(3, 8, anchor_num=5), ratios=[1.0])


def test_actor_loss_contrastive_and_off_path(fake_featurizer):
    from search_spaces.paths import PathSampler
    from search_spaces.vlt import VLTSpace
    from trackers.actors.rpn import RPNActor
    from trackers.registry import build_actor, build_model

    torch.manual_seed(0)
    model = build_model(TINY_VLT).train()
    sampler = PathSampler.from_space(VLTSpace(), seed=7)
    actor = build_actor(model, TINY_VLT, featurizer=fake_featurizer, loss={"contrastive_weight": 1.0},
                        path_sampler=sampler)
    assert isinstance(actor, RPNActor)
    loss, stats = actor(pair_batch(), step=3)
    assert torch.isfinite(loss) and {"loss_cls", "loss_loc", "positives", "loss_contrastive"} <= set(stats)
    assert stats["positives"] > 0
    off = list(actor.off_path_parameters())
    loss.backward()
    assert off and all(p.grad is None for p in off)
    assert all(p.grad is not None for p in model.head.parameters())
    # the same step draws the same anchors (a resumed run samples what the first run sampled)
    model.eval()
    again = [actor(pair_batch(), step=5)[1]["loss_cls"] for _ in range(2)]
    assert again[0] == again[1]
    # language_mask reaches the contrastive loss: no pair kept, a zero term
    batch = dict(pair_batch(), language_mask=torch.tensor([False, False]))
    assert stats["loss_contrastive"] > 0 and actor(batch, step=3)[1]["loss_contrastive"] == 0.0


def test_checkpoint_rebuilds_the_model(tmp_path):
    from trackers.registry import build_info, build_model, load_model

    torch.manual_seed(0)
    model = build_model(TINY_RES)
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "build_info": build_info(TINY_RES)}, path)
    rebuilt, cfg = load_model(path)
    assert cfg.name == "siamrpnpp" and cfg.head.weighted
    for key, value in model.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key


# ----------------------------------------------------------------------------------------------------------------------
# YAMLs, the paper-size parameter count, tiny recipes end to end
def test_every_rpn_family_yaml_is_valid():
    from asearch.config import experiments_dir, from_dict, load_yaml
    from asearch.training.recipes import load_experiment
    from trackers.inference.rpn import RPNTrackerConfig
    from trackers.registry import model_config

    loaded = {}
    for family in ("siamrpnpp", "vlt_rpnpp"):
        for path in sorted((experiments_dir() / family).glob("*.yaml")):
            data = load_yaml(path)
            if "model" in data:
                loaded[f"{family}/{path.name}"] = model_config(load_experiment(path).model, str(path))
            elif "tracker" in data:
                from_dict(RPNTrackerConfig, data["tracker"], str(path))
    assert {"siamrpnpp/siamrpnpp.yaml", "siamrpnpp/tiny.yaml", "vlt_rpnpp/supernet.yaml", "vlt_rpnpp/retrain.yaml",
            "vlt_rpnpp/tiny.yaml", "vlt_rpnpp/tiny_supernet.yaml", "vlt_rpnpp/tiny_retrain.yaml"} <= set(loaded)
    assert {cfg.name for key, cfg in loaded.items() if key.startswith("vlt_rpnpp")} == {"vlt_rpnpp"}
    otb = load_yaml(experiments_dir() / "siamrpnpp" / "track_otb.yaml")["tracker"]
    assert (otb["penalty_k"], otb["window_influence"], otb["lr"]) == (0.24, 0.5, 0.25)   # pysot's released OTB set


def test_paper_size_siamrpnpp_parameter_count():
    """The toolkit's paper-size SiamRPN++: 31,930,528 parameters. pysot's released siamrpn_r50_l234_dwxcorr has
    53,950,624: its resnet_atrous.py gives layers 2-4 a 3x3 projection shortcut (256->512, 512->1024, 1024->2048,
    22,020,096 more weights); the toolkit keeps torchvision's 1x1 ones (trackers/backbones/resnet.py, a choice)."""
    from asearch.config import experiments_dir
    from asearch.training.recipes import load_experiment
    from trackers.registry import build_model

    model = build_model(load_experiment(experiments_dir() / "siamrpnpp" / "siamrpnpp.yaml").model, pretrained=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # ResNet-50 (no fc, 1x1 shortcuts) 23,508,032 + adjust layers 919,040 (as pysot's) + three DepthwiseRPNs and the 6
    # fusion weights 7,503,456 (as pysot's: 2,501,150 per level x 3 + 6)
    assert (count(model.backbone), count(model.neck), count(model.head)) == (23_508_032, 919_040, 7_503_456)
    assert count(model) == 31_930_528
    assert count(model) + 8 * (256 * 512 + 512 * 1024 + 1024 * 2048) == 53_950_624  # pysot's 3x3 shortcuts
    assert model.score_size == 26 and model.anchors().shape == (5 * 26 * 26, 4)


def _losses(out_dir):
    rows = (out_dir / "train_log.csv").read_text().strip().splitlines()
    col = rows[0].split(",").index("loss")
    return [float(row.split(",")[col]) for row in rows[1:]]


@pytest.mark.parametrize("family,config", [("siamrpnpp", "siamrpnpp/tiny.yaml"),
                                           ("vlt_rpnpp", "vlt_rpnpp/tiny_retrain.yaml")])
def test_tiny_recipe_trains_tracks_and_evaluates(family, config, tmp_path, check_track_results):
    import json

    import numpy as np

    from asearch.cli import main
    from asearch.config import experiments_dir
    from asearch.data.synthetic import generate_benchmark
    from asearch.training.recipes import train_experiment
    from trackers.inference.rpn import RPNTracker
    from trackers.registry import build_tracker, load_model

    torch.set_num_threads(1)
    root = generate_benchmark(tmp_path / "synth", videos=4, frames=6, size=96, seed=0, distractors=0)
    result = train_experiment(experiments_dir() / config, "retrain", out_dir=tmp_path / "run", progress=False,
                              overrides=[f"data.datasets.0.root={root}", "train.steps=40", "train.batch_size=4",
                                         "train.optimizer=adamw", "train.lr=0.002", "train.warmup_steps=0",
                                         "train.grad_clip=0", "train.log_every=5", "train.checkpoint_every=0",
                                         "train.device=cpu", "train.seed=0"])
    assert result["steps"] == 40 and np.isfinite(result["final_loss"])
    losses = _losses(tmp_path / "run")
    assert np.all(np.isfinite(losses)) and np.mean(losses[-2:]) < 0.9 * np.mean(losses[:2]), losses
    model, cfg = load_model(result["checkpoint"])
    assert cfg.name == family and not getattr(model, "needs_genome", False)
    tracker = build_tracker(model, cfg, {"min_size": 4, "topk": 3}, device="cpu")
    assert isinstance(tracker, RPNTracker)
    tracker.initialize(np.zeros((96, 96, 3), np.uint8), [30, 30, 20, 20], "a red ball")
    out = tracker.track(np.zeros((96, 96, 3), np.uint8))
    assert len(out["box"]) == 4 and len(out["proposals"]) == 3 and len(out["proposal_scores"]) == 3
    results = tmp_path / "results" / family
    args = ["track", "--checkpoint", str(result["checkpoint"]), "--config", str(experiments_dir() / config),
            "--dataset", "synthetic", "--root", str(root), "--split", "all", "--out", str(results), "--batch", "2",
            "--set", "tracker.min_size=4", "--no-progress"]
    assert main(args) == 0
    check_track_results(results, videos=4, frames=6)
    ev = tmp_path / "ev"
    assert main(["evaluate", "--results", str(results), "--dataset", "synthetic", "--root", str(root),
                 "--split", "all", "--out", str(ev)]) == 0
    data = json.loads((ev / "results.json").read_text())
    assert 0.0 <= data["trackers"][family]["suc"] <= 1.0


def test_vlt_rpnpp_retrains_a_vlt_scar_architecture(tmp_path):
    """VLT_RPN++ searches the VLT_SCAR space: an architecture JSON of a VLT_SCAR search (here the released genome,
    ``official:vlt_scar``) is what its retraining takes, through the CLI, and the checkpoint keeps that genome."""
    from asearch.cli import main
    from asearch.config import experiments_dir
    from asearch.data.synthetic import generate_benchmark
    from asearch.search.architecture import OFFICIAL_GENOMES
    from trackers.registry import load_model

    torch.set_num_threads(1)
    root = generate_benchmark(tmp_path / "synth", videos=3, frames=6, size=96, seed=0, distractors=0)
    out = tmp_path / "rt"
    assert main(["retrain", "--config", str(experiments_dir() / "vlt_rpnpp" / "tiny_retrain.yaml"),
                 "--arch", "official:vlt_scar", "--out", str(out), "--set", f"data.datasets.0.root={root}",
                 "--set", "train.steps=2", "--set", "train.warmup_steps=0", "--set", "train.batch_size=2",
                 "--no-progress"]) == 0
    model, cfg = load_model(out / "checkpoints" / "step_00000002.pt")
    assert cfg.name == "vlt_rpnpp"
    assert [list(g) for g in cfg.genome] == OFFICIAL_GENOMES["vlt_scar"]
