"""PJVLT's fusion layers (paper 001 §III-C, §III-D): SAIEL and CCPIL, one pair after each of the 12 joint layers.

At joint layer ``j`` a ViT layer gives the visual tokens ``V_j`` (``B×N×C``: template and search patches, one
stream) and a BERT layer the semantic tokens ``L_j`` (``B×T×C_l`` with a word mask); then

* :class:`SAIEL` aligns them: ``A_j = SAIEL(V_j, L_j)`` (Eq. 1-7), ``B×N×C``;
* :class:`CCPIL` refines them: ``V_{j+1} = R_j = CCPIL(A_j)`` (Eq. 8-11), ``B×N×C``.

Tokens are kept ``B×N×C`` (the paper writes ``C×N`` maps); a 1×1 convolution over a ``C×N`` map is a ``Linear``
over the channel axis, and the one over the token axis (Eq. 10) a ``Linear`` over ``N``.

Choices where the paper is silent (each also in the class docstring):

* SAIEL latent width ("computation in a compressed latent space", §III-C (4)): not given; ``latent_dim`` defaults
  to ``C/4`` (192 for ViT-B), with ``num_heads`` heads of the scaled dot-product attention (default
  ``latent_dim/64``, i.e. 3 heads of 64, as ViT-B's head width); Eq. 3's ``sqrt(C)`` is read per head.
* Eq. 2's Gumbel-Softmax: along the word axis, per latent channel, temperature 1, soft (``hard=False``); padded
  words get weight 0. In eval mode no Gumbel noise is drawn (a plain softmax), so tracking is deterministic.
* Eq. 4's global semantic token is the mean over the real (unmasked) words.
* θ_q's instance normalisation normalises each latent channel over the N visual tokens (``nn.InstanceNorm1d``,
  PyTorch's default: no affine parameters).
* As Eq. 7 and 11 write it, there is no shortcut from ``V_j`` to ``A_j``: ``V_{j+1} = C_n + C_j + A_j``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from asearch.errors import ConfigError

__all__ = ["SAIEL", "CCPIL", "gumbel_word_select"]


def gumbel_word_select(values: torch.Tensor, mask: Optional[torch.Tensor] = None, tau: float = 1.0,
                       noise: bool = True) -> torch.Tensor:
    """Eq. 2: ``L̂_v = GumbelSoftmax(L_v) ⊙ L_v`` over the word axis of ``values`` (``B×T×d``).

    ``mask`` (``B×T`` bool, true on real words) gives padded words weight 0; ``noise=False`` is a plain softmax.
    """
    logits = values
    if mask is not None:
        logits = logits.masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
    if noise:
        weights = F.gumbel_softmax(logits, tau=tau, hard=False, dim=1)
    else:
        weights = torch.softmax(logits / tau, dim=1)
    return weights * values  # Eq. 2


class SAIEL(nn.Module):
    """Semantic-aware instance encoder layer (paper 001 §III-C, Eq. 1-7): vision queries attend to selected words.

    Args:
        dim: visual width ``C`` (768 for ViT-B).
        text_dim: semantic width ``C_l`` (768 for BERT-base, 384 for MiniLM); defaults to ``dim``.
        latent_dim: width of the compressed latent space (**choice**: ``dim // 4``).
        num_heads: attention heads (**choice**: ``latent_dim // 64``, at least 1).
        tau: Gumbel-Softmax temperature (**choice**: 1).

    ``θ_w`` (Eq. 4) is zero-initialised (§III-C (1)): at initialisation ``α = β = γ = 0``, so ``L_o = 0`` and the
    output ``θ_o([θ_m(V), 0])`` does not depend on the language.
    """

    def __init__(self, dim: int, text_dim: Optional[int] = None, latent_dim: Optional[int] = None,
                 num_heads: Optional[int] = None, tau: float = 1.0):
        super().__init__()
        text_dim = dim if text_dim is None else int(text_dim)
        latent = max(1, dim // 4) if latent_dim is None else int(latent_dim)
        heads = max(1, latent // 64) if num_heads is None else int(num_heads)
        if latent % heads:
            raise ConfigError(f"SAIEL latent_dim {latent} is not divisible by num_heads {heads}")
        self.dim, self.text_dim, self.latent_dim, self.num_heads, self.tau = dim, text_dim, latent, heads, float(tau)
        self.q = nn.Linear(dim, latent)                 # θ_q: 1×1 conv ...
        self.q_norm = nn.InstanceNorm1d(latent)         # ... and instance normalisation
        self.k = nn.Linear(text_dim, latent)            # θ_k
        self.v = nn.Linear(text_dim, latent)            # θ_v
        self.w = nn.Linear(text_dim, 3 * latent)        # θ_w, zero-initialised
        self.m = nn.Sequential(nn.Linear(dim, latent), nn.GELU())          # θ_m
        self.o = nn.Sequential(nn.Linear(2 * latent, dim), nn.GELU())      # θ_o
        nn.init.zeros_(self.w.weight)
        nn.init.zeros_(self.w.bias)

    def forward(self, vision: torch.Tensor, text: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``A_j`` (``B×N×C``) from ``V_j`` (``B×N×C``), ``L_j`` (``B×T×C_l``) and the word mask (``B×T`` bool)."""
        b, n, _ = vision.shape
        t = text.shape[1]
        if mask is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=text.device)
        mask = mask.bool()
        q = self.q_norm(self.q(vision).transpose(1, 2)).transpose(1, 2)   # Eq. 1: V_q, B×N×d
        k, v = self.k(text), self.v(text)                                  # Eq. 1: L_k, L_v, B×T×d
        v = gumbel_word_select(v, mask, self.tau, noise=self.training)     # Eq. 2
        h, dh = self.num_heads, self.latent_dim // self.num_heads
        q, k, v = (x.reshape(b, -1, h, dh).transpose(1, 2) for x in (q, k, v))
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])   # Eq. 3
        attn = attn.transpose(1, 2).reshape(b, n, self.latent_dim)         # L_attn, B×N×d
        weights = mask.to(text.dtype).unsqueeze(-1)
        glob = (text * weights).sum(1) / weights.sum(1).clamp(min=1.0)     # L_j^g: mean over real words
        alpha, beta, gamma = self.w(glob).unsqueeze(1).chunk(3, dim=-1)    # Eq. 4
        lang = gamma * ((1 + alpha) * attn + beta)                         # Eq. 5: L_o
        return self.o(torch.cat([self.m(vision), lang], dim=-1))           # Eq. 6-7: A_j = θ_o(V_o © L_o)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, text_dim={self.text_dim}, latent_dim={self.latent_dim}, "
                f"num_heads={self.num_heads}, tau={self.tau}")


class CCPIL(nn.Module):
    """Channel communication patch interaction layer (paper 001 §III-D, Eq. 8-11).

    CCM (Eq. 8-9): an SE-style gate ``g = Sig(GELU(GAP(A) W_p1) W_p2)`` with ``C -> C/N_g -> C``, and
    ``C_j = g ⊙ A + A``. PIM (Eq. 10-11): along the token axis ``N -> N_h`` (GELU) ``-> N_h`` (GELU) ``-> N``
    (linear), and ``R_j = C_n + C_j + A_j``. The 1×1 convolutions have biases (**choice**: PyTorch's default).

    Args:
        dim: channels ``C``.
        num_tokens: tokens ``N`` of the stream (template + search patches: 64 + 256 = 320 at 128/256 crops, patch 16).
        hidden_tokens: ``N_h`` (640 in the paper).
        groups: ``N_g``, the channel reduction of the gate (4 in the paper).
    """

    def __init__(self, dim: int, num_tokens: int, hidden_tokens: int = 640, groups: int = 4):
        super().__init__()
        if dim % groups:
            raise ConfigError(f"CCPIL dim {dim} is not divisible by groups N_g = {groups}")
        self.dim, self.num_tokens, self.hidden_tokens, self.groups = dim, num_tokens, hidden_tokens, groups
        self.p1 = nn.Linear(dim, dim // groups)            # W_p1
        self.p2 = nn.Linear(dim // groups, dim)            # W_p2
        self.e = nn.Linear(num_tokens, hidden_tokens)      # W_e
        self.s = nn.Linear(hidden_tokens, hidden_tokens)   # W_s
        self.n = nn.Linear(hidden_tokens, num_tokens)      # W_n

    def gate(self, aligned: torch.Tensor) -> torch.Tensor:
        """Eq. 8: ``f_gc(A) = Sig(GELU(GAP(A) W_p1) W_p2)``, ``B×1×C``."""
        return torch.sigmoid(self.p2(F.gelu(self.p1(aligned.mean(dim=1))))).unsqueeze(1)

    def forward(self, aligned: torch.Tensor) -> torch.Tensor:
        """``R_j`` (``B×N×C``) from ``A_j`` (``B×N×C``)."""
        if aligned.shape[1] != self.num_tokens:
            raise ConfigError(f"CCPIL built for {self.num_tokens} tokens got {aligned.shape[1]} "
                              "(num_tokens = template + search patches)")
        comm = self.gate(aligned) * aligned + aligned      # Eq. 9: C_j
        x = comm.transpose(1, 2)                           # B×C×N: the token axis last
        x = F.gelu(self.e(x))                              # Eq. 10: C_e
        x = F.gelu(self.s(x))                              # Eq. 10: C_s
        x = self.n(x).transpose(1, 2)                      # Eq. 10: C_n, B×N×C
        return x + comm + aligned                          # Eq. 11

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_tokens={self.num_tokens}, hidden_tokens={self.hidden_tokens}, "
                f"groups={self.groups}")
