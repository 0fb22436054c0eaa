"""PJVLT's SAIEL and CCPIL (paper 001 Eq. 1-11) on hand-computed cases, and their shapes at paper size."""
import math

import pytest
import torch

from asearch.errors import ConfigError
from trackers.models.pjvlt_blocks import CCPIL, SAIEL, gumbel_word_select


def gelu(x: float) -> float:
    return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_gumbel_word_select_hand_case():
    values = torch.tensor([[[0.0], [math.log(3.0)]]])                  # B=1, T=2 words, d=1
    out = gumbel_word_select(values, noise=False)                       # softmax over words: 1/4, 3/4
    assert torch.allclose(out, torch.tensor([[[0.0], [0.75 * math.log(3.0)]]]))
    out = gumbel_word_select(values + 1.0, torch.tensor([[True, False]]), noise=False)
    assert torch.allclose(out, torch.tensor([[[1.0], [0.0]]]))           # the padded word has weight 0
    torch.manual_seed(0)
    v = torch.randn(2, 5, 3)
    a, b = gumbel_word_select(v), gumbel_word_select(v)                 # Gumbel noise: stochastic in training
    assert not torch.allclose(a, b)
    w = a / v
    assert torch.allclose(w.sum(1), torch.ones(2, 3), atol=1e-5)        # weights over the words sum to 1


def _saiel(latent: int = 4) -> SAIEL:
    torch.manual_seed(0)
    return SAIEL(8, text_dim=6, latent_dim=latent, num_heads=2).eval()


def test_saiel_zero_init_ignores_language_and_still_learns():
    m = _saiel()
    vision, text = torch.randn(2, 5, 8), torch.randn(2, 3, 6)
    out = m(vision, text)
    assert out.shape == (2, 5, 8)
    assert torch.equal(out, m(vision, torch.randn(2, 3, 6)))            # alpha = beta = gamma = 0: L_o = 0
    expected = m.o(torch.cat([m.m(vision), torch.zeros(2, 5, 4)], dim=-1))   # Eq. 7 with L_o = 0
    assert torch.allclose(out, expected)
    m.train()
    m(vision, text).sum().backward()
    assert m.w.weight.grad.abs().sum() > 0                               # the zero-init gate receives gradients


def test_saiel_one_word_hand_case_and_padding_ignored():
    m = _saiel()
    with torch.no_grad():                                                # alpha = 1, beta = 2, gamma = 0.5
        m.w.bias.copy_(torch.tensor([1.0] * 4 + [2.0] * 4 + [0.5] * 4))
    vision = torch.randn(1, 5, 8)
    text = torch.randn(1, 2, 6)
    mask = torch.tensor([[True, False]])
    out = m(vision, text, mask)
    # one real word: its Gumbel-Softmax weight is 1 (Eq. 2) and every query attends to it alone (Eq. 3)
    l_attn = m.v(text[:, :1]).expand(1, 5, 4)
    l_o = 0.5 * ((1 + 1.0) * l_attn + 2.0)                               # Eq. 5
    assert torch.allclose(out, m.o(torch.cat([m.m(vision), l_o], dim=-1)), atol=1e-6)
    other = text.clone()
    other[0, 1] = 100.0                                                   # a padded word changes nothing
    assert torch.allclose(m(vision, other, mask), out, atol=1e-6)


def test_ccpil_gate_hand_case():
    m = CCPIL(4, num_tokens=2, hidden_tokens=3, groups=2)
    a = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [3.0, 2.0, 1.0, 0.0]]])     # GAP = (2, 2, 2, 2)
    with torch.no_grad():
        m.p1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, -1.0]]))
        m.p1.bias.zero_()
        m.p2.weight.copy_(torch.tensor([[1.0, 0], [0, 1.0], [1.0, 1.0], [0, 0]]))
        m.p2.bias.zero_()
    h = [gelu(2.0), gelu(-2.0)]
    expected = torch.tensor([sigmoid(h[0]), sigmoid(h[1]), sigmoid(h[0] + h[1]), 0.5])   # Eq. 8
    assert torch.allclose(m.gate(a)[0, 0], expected, atol=1e-6)
    with torch.no_grad():                                                # W_n = 0: C_n = 0, R = C_j + A (Eq. 11)
        m.n.weight.zero_()
        m.n.bias.zero_()
    assert torch.allclose(m(a), expected * a + 2 * a, atol=1e-6)        # Eq. 9 + 11


def test_ccpil_patch_interaction_hand_case():
    m = CCPIL(2, num_tokens=2, hidden_tokens=2, groups=1)
    a = torch.tensor([[[1.0, -1.0], [0.5, 2.0]]])                       # B=1, N=2 tokens, C=2
    with torch.no_grad():
        m.p2.weight.zero_()
        m.p2.bias.fill_(-100.0)                                           # gate ~ 0: C_j = A
        for lin in (m.e, m.s, m.n):
            lin.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))     # swap the two tokens
            lin.bias.zero_()
    # token axis: expand (swap, GELU), select (swap, GELU), narrow (swap): C_n[t] = GELU(GELU(A[t])) per channel
    c_n = torch.tensor([[[gelu(gelu(x)) for x in row] for row in a[0].tolist()]])
    assert torch.allclose(m(a), c_n.flip(1) + 2 * a, atol=1e-6)
    with pytest.raises(ConfigError, match="built for 2 tokens got 3"):
        m(torch.zeros(1, 3, 2))


def test_paper_size_shapes_and_parameters_on_meta():
    with torch.device("meta"):
        saiel, ccpil = SAIEL(768), CCPIL(768, num_tokens=64 + 256, hidden_tokens=640, groups=4)
        a = saiel(torch.empty(2, 320, 768), torch.empty(2, 30, 768), torch.ones(2, 30, dtype=torch.bool))
        r = ccpil(a)
    assert a.shape == (2, 320, 768) and r.shape == (2, 320, 768)
    assert saiel.latent_dim == 192 and saiel.num_heads == 3
    lin = lambda i, o: i * o + o  # noqa: E731
    assert sum(p.numel() for p in saiel.parameters()) == (lin(768, 192) * 4 + lin(768, 576) + lin(384, 768))
    assert sum(p.numel() for p in ccpil.parameters()) == (lin(768, 192) + lin(192, 768) + lin(320, 640)
                                                          + lin(640, 640) + lin(640, 320))
