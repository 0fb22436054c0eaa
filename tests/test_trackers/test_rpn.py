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
