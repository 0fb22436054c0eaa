"""CTRTNL's target-specific retrieval (trackers/models/ctrtnl_tsr.py): windows, top-k, selector, BCE."""
import math

import pytest
import torch

from trackers.models.ctrtnl_tsr import (ProposalSelector, selector_bce_loss, sliding_windows, target_windows,
                                        topk_average, window_labels, window_starts)


# Windows ----------------------------------------------------------------------------------------------------------

def test_window_starts_fit_and_border():
    # 100 long, side 40, stride 20: (100-40)/20 + 1 = 4 windows 0, 20, 40, 60; the last ends at 100, nothing added.
    assert window_starts(100, 40, 20).tolist() == [0, 20, 40, 60]
    # stride 25: floor(60/25) + 1 = 3 windows 0, 25, 50 end at 90 < 100, so one flush with the border at 60.
    assert window_starts(100, 40, 25).tolist() == [0, 25, 50, 60]
    # a side no shorter than the frame: one window at 0.
    assert window_starts(30, 30, 10).tolist() == [0]
    with pytest.raises(ValueError, match="positive"):
        window_starts(100, 40, 0)


def test_sliding_windows_hand_computed_frame():
    # frame 100×60, windows 40×30, strides 20/15: xs 0, 20, 40, 60; ys 0, 15, 30 (30 + 30 = 60) -> 12 windows.
    w = sliding_windows((100, 60), (40, 30), (20, 15))
    assert w.shape == (12, 4)
    assert w[0].tolist() == [0, 0, 40, 30]
    assert w[3].tolist() == [60, 0, 100, 30]          # rows first: x runs fastest
    assert w[4].tolist() == [0, 15, 40, 45]
    assert w[-1].tolist() == [60, 30, 100, 60]
    assert (w[:, 2] <= 100).all() and (w[:, 3] <= 60).all()


def test_target_windows_scales_and_clamping():
    # target 40×30 at scale 1, stride ratio 0.5: the 12 windows above. Scale 2: 80×60 (h clamped to 60), x stride
    # 40: floor(20/40) + 1 = 1 window at 0 (ends at 80 < 100) plus one at 20; y: one window -> 2 windows.
    w = target_windows((100, 60), (40, 30), scales=(1.0, 2.0), stride_ratio=0.5)
    assert w.shape == (14, 4)
    assert torch.equal(w[:12], sliding_windows((100, 60), (40, 30), (20, 15)))
    assert w[12:].tolist() == [[0, 0, 80, 60], [20, 0, 100, 60]]
    # a tiny target is raised to min_size: 2×2 -> 8×8 windows, stride 4 on a 16×8 frame: xs 0, 4, 8; ys 0.
    t = target_windows((16, 8), (2, 2), scales=(1.0,), min_size=8.0)
    assert t.tolist() == [[0, 0, 8, 8], [4, 0, 12, 8], [8, 0, 16, 8]]
    with pytest.raises(ValueError, match="scales"):
        target_windows((16, 8), (2, 2), scales=())


# Top-k averaging, labels, BCE -------------------------------------------------------------------------------------

def test_topk_average_hand_made_scores():
    boxes = torch.tensor([[0., 0., 10., 10.], [10., 0., 20., 10.], [0., 10., 10., 20.], [20., 20., 40., 40.]])
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7])
    box, idx = topk_average(boxes, scores, k=2)            # windows 1 and 3
    assert idx.tolist() == [1, 3]
    assert box.tolist() == [15., 10., 30., 25.]           # ((10+20)/2, (0+20)/2, (20+40)/2, (10+40)/2)
    box1, _ = topk_average(boxes, scores, k=1)
    assert box1.tolist() == boxes[1].tolist()
    box_all, idx_all = topk_average(boxes, scores, k=10)   # k larger than N: all four
    assert idx_all.numel() == 4 and torch.allclose(box_all, boxes.mean(0))
    batched, _ = topk_average(boxes[None].repeat(2, 1, 1), torch.stack([scores, -scores]), k=2)
    assert batched[0].tolist() == [15., 10., 30., 25.]
    assert batched[1].tolist() == [0., 5., 10., 15.]      # lowest two of the original: windows 0 and 2
    with pytest.raises(ValueError, match="k must be"):
        topk_average(boxes, scores, k=0)


def test_window_labels_hand_computed():
    target = torch.tensor([0., 0., 10., 10.])
    windows = torch.tensor([[0., 0., 10., 10.],           # IoU 1 -> foreground
                            [5., 0., 15., 10.],           # 50 / 150 = 1/3: between 0.3 and 0.5 -> ignored
                            [20., 20., 30., 30.],         # 0 -> background
                            [0., 0., 10., 5.]])           # 50 / 100 = 0.5 -> foreground
    labels, valid = window_labels(windows, target)
    assert labels.tolist() == [1., 0., 0., 1.]
    assert valid.tolist() == [True, False, True, True]


def test_selector_bce_loss_hand_computed():
    logits = torch.tensor([0.0, math.log(3.0)])
    labels = torch.tensor([1.0, 0.0])
    # -log σ(0) = log 2; -log(1 - σ(log 3)) = -log(1 - 3/4) = log 4; mean = 1.5 log 2.
    assert selector_bce_loss(logits, labels).item() == pytest.approx(1.5 * math.log(2.0), rel=1e-6)
    valid = torch.tensor([True, False])
    assert selector_bce_loss(logits, labels, valid).item() == pytest.approx(math.log(2.0), rel=1e-6)
    none = selector_bce_loss(logits, labels, torch.tensor([False, False]))
    assert none.item() == 0.0


# The selector -----------------------------------------------------------------------------------------------------

def _inputs(b=2, c=16, d=24, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    frame = torch.randn(b, c, 12, 16, generator=g)         # stride 8: a 128×96 frame
    template = torch.randn(b, c, 3, 3, generator=g)
    words = torch.randn(b, t, d, generator=g)
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[-1, 4:] = False                                   # the last sentence has 4 real tokens
    windows = torch.stack([target_windows((128, 96), (40, 32))] * b)
    return frame, windows, template, words, mask


def _selector(c=16, d=24):
    torch.manual_seed(0)
    return ProposalSelector(channels=c, word_dim=d, layers=2, heads=2, pool_size=5, slots=4, reduction=4)


def test_selector_shapes():
    frame, windows, template, words, mask = _inputs()
    model = _selector()
    out = model(frame, windows, template, words, mask)
    n = windows.shape[1]
    assert out["logits"].shape == (2, n)
    assert out["fg_logits"].shape == (2, n, 5, 5)
    assert out["semantic"].shape == (2, 16)
    assert torch.isfinite(out["logits"]).all()


def test_padded_words_change_nothing():
    frame, windows, template, words, mask = _inputs()
    model = _selector().eval()
    with torch.no_grad():
        ref = model(frame, windows, template, words, mask)
        noisy = words.clone()
        noisy[1, 4:] = 100.0 * torch.randn(2, 24)          # garbage in the padded slots
        longer = torch.cat([noisy, torch.randn(2, 3, 24)], 1)
        longer_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], 1)
        out = model(frame, windows, template, longer, longer_mask)
        trimmed = model(frame[1:], windows[1:], template[1:], words[1:, :4], mask[1:, :4])
    assert torch.allclose(out["semantic"], ref["semantic"], atol=1e-5)
    assert torch.allclose(out["logits"], ref["logits"], atol=1e-5)
    assert torch.allclose(trimmed["logits"][0], ref["logits"][1], atol=1e-5)


def test_gradient_reaches_every_selector_parameter():
    frame, windows, template, words, mask = _inputs()
    model = _selector()
    target = torch.tensor([[20., 16., 60., 48.], [64., 40., 104., 72.]])
    labels, valid = window_labels(windows, target)
    assert labels.sum() > 0                                # at least one foreground window per batch
    out = model(frame, windows, template, words, mask)
    loss = selector_bce_loss(out["logits"], labels, valid) + out["fg_logits"].mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_retrieve_is_the_topk_average_of_the_scored_windows():
    frame, _, template, words, mask = _inputs(b=1)
    model = _selector().eval()
    res = model.retrieve(frame, (128, 96), (40, 32), template, words, mask, k=3)
    windows = target_windows((128, 96), (40, 32))
    assert torch.equal(res["windows"], windows)
    assert res["topk"].tolist() == res["logits"].topk(3).indices.tolist()
    assert torch.allclose(res["box"], windows[res["topk"]].mean(0))
    assert 0.0 < res["score"].item() < 1.0
    with torch.no_grad():                                  # chunked scoring = one pass over all windows
        whole = model(frame, windows[None], template, words, mask)["logits"][0]
    chunked = model.retrieve(frame, (128, 96), (40, 32), template, words, mask, k=3, chunk=7)
    assert torch.allclose(res["logits"], whole, atol=1e-5) and torch.allclose(chunked["logits"], whole, atol=1e-5)
    with pytest.raises(ValueError, match="one frame"):
        model.retrieve(torch.cat([frame, frame]), (128, 96), (40, 32), template, words, mask)


def test_selector_with_the_token_encoder_and_prroi_template(tiny_words):
    from trackers.models.ctrtnl_tsr import pool_boxes

    words, mask = tiny_words
    torch.manual_seed(0)
    first = torch.randn(2, 16, 12, 16)
    template = pool_boxes(first, torch.tensor([[[16., 8., 56., 40.]], [[40., 24., 80., 64.]]]), 3, 8.0)[:, 0]
    assert template.shape == (2, 16, 3, 3)
    model = ProposalSelector(channels=16, word_dim=32, heads=2, pool_size=5, slots=4, reduction=4)
    frame = torch.randn(2, 16, 12, 16)
    windows = torch.stack([target_windows((128, 96), (40, 32))] * 2)
    out = model(frame, windows, template, words, mask)
    assert out["logits"].shape == windows.shape[:2]
