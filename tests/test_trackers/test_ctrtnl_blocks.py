"""CTRTNL's AdaRS blocks (trackers/models/ctrtnl_blocks.py): OAM, PC, GPO, VLC, Eq. 17-19."""
import math

import pytest
import torch

from trackers.models.ctrtnl_blocks import (GPO, AdaRS, ObjectAwareMemory, PartCrossAttention,
                                           VisionLanguageContrast, alignment_similarity, diversity_loss,
                                           gpo_pool, local_diversity_loss)


def test_oam_hand_computed():
    torch.manual_seed(0)
    oam = ObjectAwareMemory(channels=16, slots=2, reduction=16)              # queries are 1-wide
    with torch.no_grad():
        oam.query.weight.zero_()
        oam.query.bias.fill_(1.0)                                            # q = 1 for every pixel
        oam.keys.copy_(torch.tensor([[math.log(3.0)], [0.0]]))               # β = (ln 3, 0) -> s = (3/4, 1/4)
        oam.values.copy_(torch.stack([torch.ones(16), -torch.ones(16)]))     # w = 3/4·1 - 1/4·1 = 1/2 · 1
    f = torch.randn(2, 3, 16, 4, 5)
    f_obj, m = oam(f)
    expected_m = 0.5 * f.sum(2)                                              # Eq. 2: M = w^T x
    assert m.shape == (2, 3, 4, 5) and torch.allclose(m, expected_m, atol=1e-5)
    assert torch.allclose(f_obj, f * torch.sigmoid(expected_m)[:, :, None], atol=1e-6)   # Eq. 3


def test_oam_rejects_indivisible_channels():
    with pytest.raises(ValueError, match="divisible"):
        ObjectAwareMemory(channels=20, reduction=16)


def test_pc_uniform_attention_is_the_pixel_mean():
    torch.manual_seed(0)
    pc = PartCrossAttention(channels=8, parts=3)
    with torch.no_grad():
        pc.w_q.weight.zero_()                                                # Q = 0: Eq. 5 is uniform over pixels
    f = torch.randn(2, 5, 8, 3, 4)
    parts = pc(f)
    assert parts.shape == (2, 5, 3, 8)
    expected = pc.ffn(pc.w_v(f.flatten(-2).mean(-1)))                        # Eq. 6 on the mean pixel
    for a in range(3):
        assert torch.allclose(parts[:, :, a], expected, atol=1e-5)


def test_gpo_pool_with_known_weights():
    x = torch.tensor([[[1.0, 5.0], [3.0, -2.0], [2.0, 0.0], [9.0, 9.0]]])    # last item is padding
    mask = torch.tensor([[True, True, True, False]])
    first = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    last_real = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    assert torch.equal(gpo_pool(x, mask, first), torch.tensor([[3.0, 5.0]]))       # max per channel
    assert torch.equal(gpo_pool(x, mask, last_real), torch.tensor([[1.0, -2.0]]))  # min per channel
    mixed = torch.tensor([[0.5, 0.25, 0.25, 0.0]])                                 # sorted (3,2,1) and (5,0,-2)
    assert torch.allclose(gpo_pool(x, mask, mixed), torch.tensor([[2.25, 2.0]]))


def test_gpo_with_zero_scores_is_the_masked_mean():
    torch.manual_seed(0)
    gpo = GPO()
    with torch.no_grad():
        gpo.score.weight.zero_()                                             # equal scores -> θ_k = 1/n
    x = torch.randn(3, 6, 4)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4]).bool()
    out = gpo(x, mask)
    expected = torch.stack([x[i, :int(mask[i].sum())].mean(0) for i in range(3)])
    assert torch.allclose(out, expected, atol=1e-6)


def test_gpo_weights_are_a_distribution_and_pads_change_nothing():
    torch.manual_seed(0)
    gpo = GPO()
    w = gpo.weights(7, torch.device("cpu"), torch.float32)
    assert w.shape == (7,) and w.min() >= 0 and torch.isclose(w.sum(), torch.tensor(1.0))
    x = torch.randn(1, 5, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0]]).bool()
    y = x.clone()
    y[:, 3:] = 100.0
    assert torch.allclose(gpo(x, mask), gpo(y, mask))
    assert torch.allclose(gpo(x, mask), gpo(x[:, :3], mask[:, :3]))


def test_diversity_loss_orthogonal_vs_identical():
    eye = torch.eye(4).expand(2, 3, 4, 4)                                    # four orthogonal parts per proposal
    assert diversity_loss(eye).item() == pytest.approx(0.0)
    same = torch.randn(1, 4).expand(4, 4)[None]                              # four identical parts
    assert diversity_loss(same).item() == pytest.approx(1.0, abs=1e-6)       # the maximum (cosine 1)
    # Eq. 18 is the mean of the two modalities' Eq. 17
    assert local_diversity_loss(eye, same).item() == pytest.approx(0.5, abs=1e-6)
    # a hand case: two features at 60 degrees, A = 2 -> the cosine, 1/2
    pair = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert diversity_loss(pair).item() == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        diversity_loss(torch.ones(3, 1, 4))


def test_vlc_shapes_and_padded_words_change_nothing():
    torch.manual_seed(0)
    vlc = VisionLanguageContrast(channels=16, word_dim=12, local_prototypes=3)
    parts = torch.randn(2, 5, 4, 16)
    vis = vlc.encode_visual(parts)
    assert vis["local"].shape == (2, 5, 3, 16) and vis["gpo"].shape == (2, 5, 16)
    assert vis["global"].shape == (2, 5, 3 * 16 + 16)
    words = torch.randn(2, 7, 12)
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3]).bool()
    txt = vlc.encode_text(words, mask)
    assert txt["global"].shape == (2, 64) and txt["local"].shape == (2, 3, 16)
    noisy = words.clone()
    noisy[1, 4:] = 50 * torch.randn(3, 12)                                   # padded words change
    txt2 = vlc.encode_text(noisy, mask)
    short = vlc.encode_text(words[1:, :4], mask[1:, :4])                     # the same sentence without padding
    for key in ("global", "local", "gpo"):
        assert torch.allclose(txt[key], txt2[key], atol=1e-6)
        assert torch.allclose(txt[key][1:], short[key], atol=1e-5)
    # real words do matter
    changed = words.clone()
    changed[1, 0] += 1.0
    assert not torch.allclose(vlc.encode_text(changed, mask)["global"][1], txt["global"][1])


def test_alignment_similarity_eq19():
    torch.manual_seed(0)
    enc = {"global": torch.randn(3, 10), "local": torch.randn(3, 2, 4)}
    assert torch.allclose(alignment_similarity(enc, enc), torch.full((3,), 2.0), atol=1e-6)
    neg = {k: -v for k, v in enc.items()}
    assert torch.allclose(alignment_similarity(neg, enc), torch.full((3,), -2.0), atol=1e-6)
    # hand case: global cosine 0, local cosines 1 and 0 -> 0 + 1/2
    v = {"global": torch.tensor([1.0, 0.0]), "local": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    t = {"global": torch.tensor([0.0, 2.0]), "local": torch.tensor([[3.0, 0.0], [1.0, 0.0]])}
    assert alignment_similarity(v, t).item() == pytest.approx(0.5)
    # a similarity matrix by broadcasting: N visual × N texts
    m = alignment_similarity({k: x[:, None] for k, x in enc.items()}, {k: x[None] for k, x in enc.items()})
    assert m.shape == (3, 3) and torch.allclose(m.diagonal(), torch.full((3,), 2.0), atol=1e-6)


def test_adars_end_to_end_with_the_token_encoder(tiny_words):
    from trackers.ops import prroi_pool2d

    words, mask = tiny_words
    torch.manual_seed(0)
    feat = torch.randn(2, 32, 16, 16)
    boxes = torch.tensor([[0, 1.0, 1.0, 7.0, 9.0], [0, 4.0, 3.0, 12.0, 10.0], [0, 0.5, 8.0, 6.0, 15.0],
                          [1, 2.0, 2.0, 9.0, 9.0], [1, 6.0, 1.0, 14.0, 8.0], [1, 3.0, 7.5, 10.0, 15.5]])
    proposals = prroi_pool2d(feat, boxes, 7).view(2, 3, 32, 7, 7)
    model = AdaRS(channels=32, word_dim=32, slots=4, parts=3, local_prototypes=2)
    out = model(proposals, words, mask)
    assert out["scores"].shape == (2, 3) and out["fg_logits"].shape == (2, 3, 7, 7)
    assert out["parts"].shape == (2, 3, 3, 32)
    assert (out["scores"].abs() <= 2 + 1e-5).all()
    loss = out["scores"].sum() + out["fg_logits"].mean() + diversity_loss(out["parts"]) \
        + local_diversity_loss(out["visual"]["local"], out["text"]["local"])
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    with torch.no_grad():                                 # the words encoded once per video give the same scores
        cached = model(proposals, text=model.vlc.encode_text(words, mask))["scores"]
        assert torch.allclose(cached, model(proposals, words, mask)["scores"], atol=1e-6)
    with pytest.raises(ValueError, match="give the words"):
        model(proposals)


# VSE++ hinge triplet ranking loss (trackers/losses/ctrtnl.py) ------------------------------------------------------

S3 = torch.tensor([[0.9, 0.5, 0.5],
                   [0.2, 0.6, 0.65],
                   [0.4, 0.55, 0.8]])
# margin 0.2. Text side (row i, negatives j): only [0.2 + 0.65 - 0.6] = 0.25 (row 1) is positive.
# Visual side (column j, negatives i): column 1 has 0.2 + 0.5 - 0.6 = 0.1 and 0.2 + 0.55 - 0.6 = 0.15,
# column 2 has 0.2 + 0.65 - 0.8 = 0.05, column 0 none.  Hardest: 0.25 + 0.15 + 0.05; all: 0.25 + 0.25 + 0.05.


def test_hinge_triplet_loss_hand_computed():
    from trackers.losses.ctrtnl import hinge_triplet_loss

    assert hinge_triplet_loss(S3).item() == pytest.approx(0.45)
    assert hinge_triplet_loss(S3, max_violation=False).item() == pytest.approx(0.55)
    keep = torch.zeros(3, 3, dtype=torch.bool)
    keep[2, 1] = True                                                        # (2, 1) is not a negative
    assert hinge_triplet_loss(S3, not_negative=keep).item() == pytest.approx(0.40)
    assert hinge_triplet_loss(S3, margin=0.0).item() == pytest.approx(0.05)  # only 0.65 - 0.6
    assert hinge_triplet_loss(torch.eye(3) * 5).item() == 0.0


def test_hinge_triplet_loss_hardest_negative_gradient():
    from trackers.losses.ctrtnl import hinge_triplet_loss

    s = S3.clone().requires_grad_(True)
    hinge_triplet_loss(s).backward()
    expected = torch.tensor([[0.0, 0.0, 0.0],
                             [0.0, -2.0, 2.0],                               # (1, 2) hardest for row 1 and column 2
                             [0.0, 1.0, -1.0]])                              # (2, 1) hardest for column 1
    assert torch.equal(s.grad, expected)                                     # (0, 1) violates but is not hardest
    with pytest.raises(ValueError, match="square"):
        hinge_triplet_loss(torch.zeros(2, 3))
