"""Precise RoI Pooling (trackers/ops/prroi_pool.py): exact bin integrals of the bilinear interpolant."""
import pytest
import torch

from trackers.ops import hat_integral, prroi_pool2d


def brute_force(feat: torch.Tensor, box, out: int, n: int = 400) -> torch.Tensor:
    """Midpoint-rule integral of the zero-padded bilinear interpolant of ``feat`` (C×H×W) over each bin."""
    c, h, w = feat.shape
    x1, y1, x2, y2 = box
    res = torch.zeros(c, out, out, dtype=torch.float64)
    for p in range(out):
        for q in range(out):
            ys = y1 + (y2 - y1) * (p + (torch.arange(n, dtype=torch.float64) + 0.5) / n) / out
            xs = x1 + (x2 - x1) * (q + (torch.arange(n, dtype=torch.float64) + 0.5) / n) / out
            hy = (1 - (ys[:, None] - torch.arange(h, dtype=torch.float64)[None]).abs()).clamp(min=0)   # n×H
            hx = (1 - (xs[:, None] - torch.arange(w, dtype=torch.float64)[None]).abs()).clamp(min=0)   # n×W
            res[:, p, q] = torch.einsum("chw,nh,mw->c", feat.double(), hy, hx) / (n * n)
    return res


def test_hat_integral_pieces():
    t = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    assert torch.allclose(hat_integral(t), torch.tensor([0.0, 0.0, 0.125, 0.5, 0.875, 1.0, 1.0]))


def test_constant_map_gives_the_constant():
    f = torch.full((2, 3, 8, 9), 2.5, dtype=torch.float64)
    rois = torch.tensor([[0, 0.3, 1.2, 6.7, 5.9], [1, 2.0, 2.0, 3.0, 7.0]], dtype=torch.float64)
    out = prroi_pool2d(f, rois, (3, 4))
    assert out.shape == (2, 3, 3, 4)
    assert torch.allclose(out, torch.full_like(out, 2.5))


def test_linear_map_gives_its_value_at_bin_centres():
    a, b, c = 0.7, -1.3, 4.0
    ys, xs = torch.meshgrid(torch.arange(7.0), torch.arange(10.0), indexing="ij")
    f = (a * xs + b * ys + c).double()[None, None]
    x1, y1, x2, y2 = 0.4, 1.1, 8.6, 5.3
    out = prroi_pool2d(f, torch.tensor([[0, x1, y1, x2, y2]], dtype=torch.float64), (3, 5))[0, 0]
    cy = y1 + (torch.arange(3, dtype=torch.float64) + 0.5) * (y2 - y1) / 3
    cx = x1 + (torch.arange(5, dtype=torch.float64) + 0.5) * (x2 - x1) / 5
    assert torch.allclose(out, a * cx[None, :] + b * cy[:, None] + c, atol=1e-12)


def test_hand_computed_2x2():
    # F = [[0, 0], [0, 1]]: the interpolant is f(x, y) = x·y on [0, 1]², (2-x)(2-y) on [1, 2]², 0 beyond 2.
    f = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)[None, None]
    whole = prroi_pool2d(f, torch.tensor([[0, 0.0, 0.0, 1.0, 1.0]], dtype=torch.float64), 1)
    assert whole.item() == pytest.approx(0.25)                               # ∫∫ xy = 1/4
    bins = prroi_pool2d(f, torch.tensor([[0, 0.0, 0.0, 1.0, 1.0]], dtype=torch.float64), 2)[0, 0]
    # bin [a, b]×[c, d] of xy: mean = ((a+b)/2)·((c+d)/2)
    assert torch.allclose(bins, torch.tensor([[0.0625, 0.1875], [0.1875, 0.5625]], dtype=torch.float64))
    # F = [[0, 1], [2, 3]] is the plane x + 2y: the unit square's mean is 1.5.
    g = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64)[None, None]
    assert prroi_pool2d(g, torch.tensor([[0, 0.0, 0.0, 1.0, 1.0]], dtype=torch.float64), 1).item() == 1.5


def test_outside_the_map_is_zero():
    f = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)[None, None]
    # [1, 2]²: the last pixel's hat fades to 0 one pixel beyond the border: ∫∫ (2-x)(2-y) = 1/4 over area 1.
    beyond = prroi_pool2d(f, torch.tensor([[0, 1.0, 1.0, 2.0, 2.0]], dtype=torch.float64), 1)
    assert beyond.item() == pytest.approx(0.25)
    # [1, 3]²: same integral, divided by the whole bin's area 4 (the bin is not clipped to the map).
    wide = prroi_pool2d(f, torch.tensor([[0, 1.0, 1.0, 3.0, 3.0]], dtype=torch.float64), 1)
    assert wide.item() == pytest.approx(0.0625)
    far = prroi_pool2d(f, torch.tensor([[0, 2.0, -5.0, 4.0, -1.0]], dtype=torch.float64), 2)
    assert torch.count_nonzero(far) == 0


def test_random_against_brute_force_integration():
    torch.manual_seed(0)
    f = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    boxes = [(0, (0.3, 0.8, 4.9, 5.2)), (1, (-1.4, 2.2, 3.1, 7.5)), (1, (5.5, -0.6, 7.4, 2.0))]
    rois = torch.tensor([[b, *box] for b, box in boxes], dtype=torch.float64)
    out = prroi_pool2d(f, rois, 2)
    for k, (b, box) in enumerate(boxes):
        assert torch.allclose(out[k], brute_force(f[b], box, 2), atol=1e-4)


def test_zero_area_bins_give_zero_and_zero_gradient():
    f = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 3.0, 1.0, 2.0, 4.0], [0, 1.0, 2.5, 4.0, 2.5]], dtype=torch.float64, requires_grad=True)
    out = prroi_pool2d(f, rois, 2)
    assert torch.count_nonzero(out) == 0
    out.sum().backward()
    assert torch.count_nonzero(f.grad) == 0 and torch.isfinite(rois.grad).all()


def test_spatial_scale_and_batch_order():
    torch.manual_seed(1)
    f = torch.randn(3, 2, 6, 6)
    rois = torch.tensor([[2, 8.0, 4.0, 30.0, 40.0], [0, 0.0, 0.0, 16.0, 16.0], [2, 4.0, 4.0, 20.0, 12.0]])
    scaled = prroi_pool2d(f, rois, 3, spatial_scale=1 / 8)
    plain = prroi_pool2d(f, torch.cat([rois[:, :1], rois[:, 1:] / 8], 1), 3)
    assert torch.allclose(scaled, plain)
    single = prroi_pool2d(f[2:3], torch.tensor([[0, 1.0, 0.5, 3.75, 5.0]]), 3)
    assert torch.allclose(scaled[0], single[0])


def test_bad_inputs_raise():
    f = torch.zeros(2, 1, 4, 4)
    with pytest.raises(ValueError, match="batch indices"):
        prroi_pool2d(f, torch.tensor([[2, 0.0, 0.0, 1.0, 1.0]]), 2)
    with pytest.raises(ValueError, match="K×5"):
        prroi_pool2d(f, torch.zeros(3, 4), 2)
    assert prroi_pool2d(f, torch.zeros(0, 5), (2, 3)).shape == (0, 1, 2, 3)


def test_gradcheck_features_and_rois():
    torch.manual_seed(2)
    f = torch.randn(2, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.3, 0.2, 3.3, 2.7], [1, -0.6, 1.1, 2.2, 4.4]], dtype=torch.float64, requires_grad=True)

    def fn(feat, box):
        return prroi_pool2d(feat, torch.cat([rois[:, :1].detach(), box], 1), (2, 3))

    assert torch.autograd.gradcheck(fn, (f, rois[:, 1:].detach().clone().requires_grad_(True)), eps=1e-6, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    torch.manual_seed(3)
    f = torch.randn(2, 4, 9, 9)
    rois = torch.tensor([[0, 0.5, 1.0, 7.5, 8.0], [1, -1.0, 2.0, 4.0, 10.0]])
    assert torch.allclose(prroi_pool2d(f.cuda(), rois.cuda(), 3).cpu(), prroi_pool2d(f, rois, 3), atol=1e-5)
