"""SiamCAR head geometry, label assignment and losses on hand-computed cases."""
import math

import pytest
import torch
import torch.nn.functional as F

from trackers.heads.car import (CARHead, SiamCARHead, location_offset, score_locations, score_size,
                                xcorr_depthwise)
from trackers.losses.car import (CARLoss, CARLossConfig, assign_targets, centerness_target, iou_loss,
                                 select_cross_entropy)
from trackers.necks import AdjustNeck, center_crop, center_crop_start, feature_size
from asearch.errors import ConfigError


def test_feature_and_score_sizes():
    # ceil(n/2) three times: 127 -> 64 -> 32 -> 16, 255 -> 32, 63 -> 8, 128 -> 16
    assert [feature_size(n) for n in (127, 255, 63, 64, 128)] == [16, 32, 8, 8, 16]
    assert center_crop_start(16, 7) == 4 and center_crop_start(15, 7) == 4 and center_crop_start(8, 7) == 0
    assert score_size(127, 255) == 26 and score_size(63, 127) == 10 and score_size(64, 128) == 10


def test_location_offset_hand_values():
    # (T-1)/2 - stride * c0: 127 -> 63 - 8*4 = 31; 63 -> 31 - 0; 64 -> 31.5; 128 -> 63.5 - 32 = 31.5
    assert location_offset(127) == 31.0
    assert location_offset(63) == 31.0
    assert location_offset(64) == 31.5
    assert location_offset(128) == 31.5
    assert location_offset(127, center_size=0) == 63.0  # no crop: c0 = 0


def test_score_locations_row_major():
    loc = score_locations(26, 8, 31.0)
    assert loc.shape == (676, 2)
    assert loc[0].tolist() == [31.0, 31.0]
    assert loc[1].tolist() == [39.0, 31.0]      # next column: x moves
    assert loc[26].tolist() == [31.0, 39.0]     # next row: y moves
    assert loc[-1].tolist() == [231.0, 231.0]
    assert loc[12 * 26 + 12].tolist() == [127.0, 127.0]  # zero motion = centre of the 255 crop


def _cell_features(img: torch.Tensor) -> torch.Tensor:
    """A stride-8 'same' map whose cell j is centred on pixel 8j (box filter 9x9, padding 4)."""
    return F.conv2d(img, torch.ones(1, 1, 9, 9), stride=8, padding=4)


def _blob(size: int, cx: float, cy: float, sigma: float = 2.5) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    return torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2)).view(1, 1, size, size)


@pytest.mark.parametrize("px,py", [(71.0, 31.0), (63.0, 63.0), (95.0, 47.0), (39.0, 87.0)])
def test_location_mapping_matches_the_correlation_peak(px, py):
    # template 63 with the target at its centre pixel 31, search 127 with the target at (px, py): the correlation
    # peak must sit at the location whose pixel is (px, py)
    t, s = 63, 127
    z = center_crop(_cell_features(_blob(t, 31.0, 31.0)), 7)
    x = _cell_features(_blob(s, px, py))
    assert z.shape[-1] == 7 and x.shape[-1] == feature_size(s)
    corr = xcorr_depthwise(x, z)
    m = corr.shape[-1]
    assert m == score_size(t, s)
    idx = int(corr.flatten().argmax())
    loc = score_locations(m, 8, location_offset(t))[idx]
    assert loc.tolist() == [px, py]


def test_xcorr_depthwise_hand_case():
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4).repeat(2, 2, 1, 1)
    k = torch.zeros(2, 2, 2, 2)
    k[0, 0, 0, 0] = 1.0      # picks x[i, j]
    k[1, 1, 1, 1] = 2.0      # 2 * x[i+1, j+1]
    out = xcorr_depthwise(x, k)
    assert out.shape == (2, 2, 3, 3)
    assert out[0, 0].tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10]]
    assert out[1, 1, 0].tolist() == [10, 12, 14]
    assert float(out[0, 1].abs().sum()) == 0.0


def test_head_shapes_and_positive_ltrb():
    neck = AdjustNeck([16, 40, 80], 32, 7)
    head = SiamCARHead(3, 32, num_convs=2, gn_groups=8)
    zf = [torch.randn(2, c, 8, 8) for c in (16, 40, 80)]
    xf = [torch.randn(2, c, 16, 16) for c in (16, 40, 80)]
    out = head(neck(zf, crop=True), neck(xf))
    assert out["cls"].shape == (2, 2, 10, 10) and out["cen"].shape == (2, 1, 10, 10)
    assert out["loc"].shape == (2, 4, 10, 10) and bool((out["loc"] > 0).all())
    # the official CAR head (pysot/models/head/car_head.py) sets BOTH classes' bias to -log((1 - 0.01) / 0.01)
    # = -log(99); equal biases and N(0, 0.01) weights start the 2-class softmax near 1/2
    assert head.car.cls_logits.bias.detach().tolist() == pytest.approx([-math.log(99.0)] * 2)
    p = torch.softmax(out["cls"].detach(), 1)[:, 1]
    assert abs(float(p.mean()) - 0.5) < 0.05
    with pytest.raises(ConfigError, match="prior_prob"):
        CARHead(32, gn_groups=8, prior_prob=1.0)
    with pytest.raises(ConfigError, match="gn_groups"):
        CARHead(30, gn_groups=8)


def test_assign_targets_hand_case():
    loc = score_locations(3, 10, 0.0)        # x, y in {0, 10, 20}
    box = torch.tensor([[-5.0, -5.0, 25.0, 25.0]])  # 30 x 30
    labels, targets = assign_targets(loc, box, center_fraction=1.0)
    assert labels.tolist() == [[1] * 9]      # every location strictly inside
    assert targets[0, 0].tolist() == [5.0, 5.0, 25.0, 25.0]
    labels, _ = assign_targets(loc, box, center_fraction=0.4)  # margin 0.3 * 30 = 9: only the centre
    assert labels.tolist() == [[0, 0, 0, 0, 1, 0, 0, 0, 0]]
    labels, _ = assign_targets(loc, box, center_fraction=0.8)  # margin 3 < 5: all
    assert int(labels.sum()) == 9
    labels, _ = assign_targets(loc, box.repeat(2, 1), 1.0, positive_pairs=torch.tensor([1, 0]))
    assert labels.sum(1).tolist() == [9, 0]  # a negative pair has no positive


def test_centerness_and_iou_loss_hand_values():
    c = centerness_target(torch.tensor([[5.0, 5.0, 25.0, 25.0], [10.0, 20.0, 30.0, 40.0], [3.0, 3.0, 3.0, 3.0]]))
    assert torch.allclose(c, torch.tensor([0.2, math.sqrt(1 / 6), 1.0]))
    same = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert float(iou_loss(same, same)) == pytest.approx(0.0)
    pred = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    # second: area 16 vs 4, intersection 4, union 16 -> -log(5/17); weights 1 and 3
    assert float(iou_loss(pred, same.repeat(2, 1), torch.tensor([1.0, 3.0]))) == pytest.approx(
        3 * -math.log(5 / 17) / 4)


def test_select_cross_entropy_hand_value():
    logits = torch.tensor([[[[0.0, 0.0]], [[0.0, math.log(3.0)]]]])  # B=1, 2 classes, 1x2 map
    labels = torch.tensor([[1, 0]])
    # positive: -log 0.5; negative: softmax (1/4, 3/4) -> -log 1/4; 0.5 each
    assert float(select_cross_entropy(logits, labels)) == pytest.approx(1.5 * math.log(2.0))


def test_car_loss_combines_parts_and_handles_negative_pairs():
    torch.manual_seed(0)
    m = 3
    loc = score_locations(m, 10, 0.0)
    outputs = {"cls": torch.randn(2, 2, m, m), "cen": torch.randn(2, 1, m, m),
               "loc": torch.rand(2, 4, m, m) * 20 + 1, "contrastive": torch.tensor(0.7)}
    boxes = torch.tensor([[-5.0, -5.0, 25.0, 25.0], [-5.0, -5.0, 25.0, 25.0]])
    cfg = CARLossConfig(center_fraction=1.0, contrastive_weight=0.5)
    total, stats = CARLoss(cfg)(outputs, loc, boxes, positive_pairs=torch.tensor([1, 0]))
    assert stats["positives"] == 4.5   # 9 positives in the first pair, none in the second, per pair
    expected = stats["loss_cls"] + 3 * stats["loss_loc"] + stats["loss_cen"] + 0.5 * 0.7
    assert float(total) == pytest.approx(expected, rel=1e-5)
    labels, targets = assign_targets(loc, boxes[:1], 1.0)
    pred = outputs["loc"][0].flatten(1).t()
    assert stats["loss_loc"] == pytest.approx(float(iou_loss(pred, targets[0], centerness_target(targets[0]))),
                                              rel=1e-5)
    total, stats = CARLoss(cfg)(outputs, loc, boxes, positive_pairs=torch.tensor([0, 0]))
    assert stats["positives"] == 0 and stats["loss_loc"] == 0.0 and torch.isfinite(total)
    with pytest.raises(ConfigError, match="center_fraction"):
        CARLossConfig(center_fraction=0.0)
