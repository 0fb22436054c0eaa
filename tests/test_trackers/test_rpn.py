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
