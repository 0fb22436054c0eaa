"""SATracker's Semantic Aware Module (paper 002 §3.1.3, Fig. 4), one after each of the three stages.

Inputs of stage ``i``: the template map ``X_t`` (B×C×H_t×W_t, after the stage's TEMs), the search map ``X_s``
(B×C×H_s×W_s) and the text tokens ``T`` (B×L×D after the stage's BERT layers, with their padding mask).

Visual stream (lower half of Fig. 4)::

    t   = MaxPool(Conv(X_t))                                  template in the common space (B×C)
    A   = Softmax(W_q t (W_k Lin(T))^T / sqrt(C_h)) W_v Lin(T)   (Eq. 3; multi-head, padded words masked)
    X_s' = X_s + CNN(BN(X_s ⊙ sigmoid(A)))                    soft channel selector, BN, CNN, residual

Text stream (upper half)::

    T' = T + Lin_2(Lin_1(T) + t)                              the pooled template fused into every word

Choices where the paper is silent (each also in :class:`SAM`):

* The common embedding space has the stage's visual width ``C``; ``Conv`` is a 1×1 convolution on the template
  and ``Lin`` a linear map ``D -> C``; "Max Pooling" is a global max over the template map (one query per image).
* Eq. 3 uses the stage's number of heads (1 / 3 / 6); ``C`` in the scale is read as the width of one head; there
  is no output projection after the heads (Eq. 3 has none).
* The "soft channel selector" is ``sigmoid(A)`` multiplied channel-wise into the search map (SE-style gating, the
  paper's reference [12]); "another CNN" is one 3×3 convolution (with bias).
* The fusion of the pooled template into the text is an addition (broadcast over the words); ``Lin_1`` maps
  ``D -> C`` and ``Lin_2`` maps ``C -> D``.
* Both streams read the same inputs (the streams run in parallel in Fig. 4): the visual stream uses ``T`` before
  the text update. Everything but the search residual depends only on the template and the text, so the tracker
  computes ``sigmoid(A)`` and ``T'`` once per video (:meth:`SAM.selector`, :meth:`SAM.update_text`).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from asearch.errors import ConfigError

__all__ = ["SAM"]


class SAM(nn.Module):
    """Semantic Aware Module of one stage (module docstring).

    Args:
        dim: visual width ``C`` of the stage (64 / 192 / 384 in CvT-21).
        text_dim: width ``D`` of the text tokens (768 for BERT-base).
        heads: heads of Eq. 3's attention (the stage's heads).
    """

    def __init__(self, dim: int, text_dim: int, heads: int = 1):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"SAM: width {dim} is not divisible by its {heads} heads")
        self.dim, self.heads = dim, heads
        self.template_conv = nn.Conv2d(dim, dim, 1)       # Conv: template into the common space
        self.text_proj = nn.Linear(text_dim, dim)         # Linear: text into the common space
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.bn = nn.BatchNorm2d(dim)
        self.cnn = nn.Conv2d(dim, dim, 3, 1, 1)
        self.text_in = nn.Linear(text_dim, dim)           # Lin_1 of the text stream
        self.text_out = nn.Linear(dim, text_dim)          # Lin_2 of the text stream

    def pooled_template(self, template: torch.Tensor) -> torch.Tensor:
        """``t = MaxPool(Conv(X_t))``: B×C."""
        return self.template_conv(template).amax(dim=(2, 3))

    def selector(self, t: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The soft channel selector ``sigmoid(A)`` (B×C) from the pooled template and the text (Eq. 3)."""
        b, n = text.shape[:2]
        hd = self.dim // self.heads
        e = self.text_proj(text)
        q = self.q(t).view(b, self.heads, 1, hd)
        k = self.k(e).view(b, n, self.heads, hd).transpose(1, 2)
        v = self.v(e).view(b, n, self.heads, hd).transpose(1, 2)
        logits = (q @ k.transpose(-2, -1)) / hd ** 0.5                    # Q_t K_NL^T / sqrt(C)
        logits = logits.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
        a = (torch.softmax(logits, dim=-1) @ v).reshape(b, self.dim)      # Atten_NL^SAM (Eq. 3)
        return torch.sigmoid(a)

    def select(self, search: torch.Tensor, selector: torch.Tensor) -> torch.Tensor:
        """Visual stream: ``X_s + CNN(BN(X_s ⊙ sigmoid(A)))``."""
        return search + self.cnn(self.bn(search * selector[:, :, None, None]))

    def update_text(self, text: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Text stream: ``T + Lin_2(Lin_1(T) + t)`` (the template as a prompt to the words)."""
        return text + self.text_out(self.text_in(text) + t[:, None, :])

    def forward(self, template: torch.Tensor, search: torch.Tensor, text: torch.Tensor, mask: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Both streams at once: ``(X_s', T')``."""
        t = self.pooled_template(template)
        return self.select(search, self.selector(t, text, mask)), self.update_text(text, t)
