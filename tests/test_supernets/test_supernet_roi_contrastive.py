"""ROI align (grid_sample) and the contrastive loss of Eq. 2-4 on hand-computed cases."""
import math

import pytest
import torch

from supernets import ContrastiveAlignment, contrastive_loss, roi_align
from supernets.roi import roi_pool_vector


def ramp(h=4, w=4):
    """Feature 1×1×h×w whose value at row y, column x is x + 10·y (bilinear interpolation is exact on it)."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return (x + 10 * y)[None, None]


def test_roi_align_hand_case():
    # box (4, 4, 8, 12) px at scale 1/4 -> (1, 1, 2, 3) in feature units (pixel j spans [j, j+1], centre j+0.5).
    # 2×2 bins: centres x = 1.25, 1.75 -> pixel coords 0.75, 1.25; y = 1.5, 2.5 -> 1, 2; value = x + 10 y
    out = roi_align(ramp(), torch.tensor([[4.0, 4.0, 8.0, 12.0]]), 2, spatial_scale=0.25)
    assert out.shape == (1, 1, 2, 2)
    assert torch.allclose(out[0, 0], torch.tensor([[10.75, 11.25], [20.75, 21.25]]), atol=1e-5)
    # mean of the four samples: (10.75 + 11.25 + 20.75 + 21.25) / 4 = 16
    vec = roi_pool_vector(ramp(), torch.tensor([[4.0, 4.0, 8.0, 12.0]]), 2, spatial_scale=0.25)
    assert vec.shape == (1, 1) and vec.item() == pytest.approx(16.0, abs=1e-5)


def test_roi_align_batch_index_form_and_border_clamp():
    feats = torch.cat([torch.zeros_like(ramp()), ramp()])  # image 1 holds the ramp
    # whole map, one bin: centre (2, 2) -> pixel coords (1.5, 1.5) -> 1.5 + 15
    out = roi_align(feats, torch.tensor([[1.0, 0.0, 0.0, 4.0, 4.0]]), 1)
    assert out.shape == (1, 1, 1, 1) and out.item() == pytest.approx(16.5)
    # a box beyond the top-left corner takes the border value (pixel (0, 0) = 0); bottom-right corner = 3 + 30
    out = roi_align(feats, torch.tensor([[1.0, -8.0, -8.0, 0.0, 0.0], [1.0, 4.0, 4.0, 12.0, 12.0]]), 1)
    assert out.flatten().tolist() == pytest.approx([0.0, 33.0])


def test_roi_align_errors():
    with pytest.raises(ValueError, match="K×4 or K×5"):
        roi_align(ramp(), torch.zeros(1, 3), 2)
    with pytest.raises(ValueError, match="one box per image"):
        roi_align(ramp(), torch.zeros(2, 4), 2)


def test_contrastive_loss_hand_2x2():
    e_v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e_l = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # cosine ignores the norm
    c = 1 / math.sqrt(2)
    for scale in (1.0, 2.0):
        # m_log = scale · [[1, c], [0, c]]; rows of m_log and of m_log^T against labels [0, 1]
        a, b = scale * 1.0, scale * c
        ce_rows = ((math.log(math.exp(a) + math.exp(b)) - a) + (math.log(1 + math.exp(b)) - b)) / 2
        ce_cols = ((math.log(math.exp(a) + 1) - a) + math.log(2)) / 2
        expected = (ce_rows + ce_cols) / 2
        assert contrastive_loss(e_v, e_l, scale).item() == pytest.approx(expected, rel=1e-6)


def test_contrastive_alignment_scale_and_mask():
    head = ContrastiveAlignment(1 / 0.07)
    assert head.scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    e_v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    e_l = torch.tensor([[2.0, 0.0], [1.0, 1.0], [-1.0, 3.0]])
    masked = head(e_v, e_l, torch.tensor([True, True, False]))
    assert masked.item() == pytest.approx(contrastive_loss(e_v[:2], e_l[:2], 1 / 0.07).item(), rel=1e-6)
    none = head(e_v, e_l, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0
    none.backward()  # still attached to the graph
    assert head.logit_scale.grad is not None
    big = ContrastiveAlignment(1000.0)
    assert big.scale.item() == pytest.approx(100.0)  # CLIP clamp


def test_contrastive_gather_single_process_unchanged_and_configurable():
    from supernets.vlt import SupernetConfig, VLTSupernet

    gen = torch.Generator().manual_seed(3)
    e_v, e_l = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    mask = torch.tensor([True, False, True, True])
    plain = ContrastiveAlignment(gather=False)(e_v, e_l, mask)
    for module in (ContrastiveAlignment(gather=True).train(), ContrastiveAlignment(gather=True).eval()):
        assert torch.equal(module(e_v, e_l, mask), plain)  # no process group: nothing is gathered
    net = VLTSupernet(SupernetConfig(width_mult=0.25, language_dim=8, contrastive_gather=True))
    assert net.contrastive.gather and not VLTSupernet(SupernetConfig(width_mult=0.25, language_dim=8)).contrastive.gather
