"""CTRTNL's adaptive retrieval switch (AdaRS; paper 004 §3.2, §4 Eq. 1-19): OAM, PC and VLC.

SiamRPN++ keeps its top-K proposals (:class:`~trackers.inference.rpn.RPNTracker`, ``tracker.topk``); each is pooled
with :func:`~trackers.ops.prroi_pool2d` into a ``C×h×w`` map, and then, per proposal,

* :class:`ObjectAwareMemory` (OAM, Eq. 1-3) reads N learnable key-value pairs (appearance pattern, foreground
  classifier) for every pixel, scores it (``M``, the logits of ``L_bce``) and keeps ``f^obj = f ⊙ σ(M)``;
* :class:`PartCrossAttention` (PC, Eq. 4-6) lets A learnable part prototypes attend to the pixels of ``f^obj``
  (a transformer decoder without self-attention) and gives ``F^part`` (``A×C``);
* :class:`VisionLanguageContrast` (VLC, Eq. 7-16) pools parts and words with GPO (:class:`GPO`, Chen et al. 2021)
  and aligns them locally through one shared global semantic prototype and L local semantic prototypes;
* :func:`alignment_similarity` (Eq. 19) scores a proposal against the sentence; :func:`diversity_loss` is Eq. 17 and
  18 (:func:`local_diversity_loss`).

:class:`AdaRS` chains them. Shapes: proposals ``B×K×C×h×w``; words ``B×T×D`` with a ``B×T`` mask (true on real
tokens), as :class:`~asearch.language.TokenTextEncoder` gives them (``[CLS] w_1 .. w_N [SEP]``; the caller builds and
runs the encoder, this module only takes its tensors). Equations are numbered as in the paper.

Where the paper is ambiguous, the choices (each also in the class docstring):

* Eq. 1 writes ``s^n = β^n / Σ_n β^n`` with raw dot products ``β``; the ratio is undefined when they sum to 0 and
  no weighting when some are negative, so it is read as a softmax over the N slots (as in the memory of [30]).
* Eq. 5's softmax runs over the pixels (each prototype distributes its attention over ``h·w`` keys); one head.
* Eq. 6's FFN ("the linear layers"): ``Linear(d, C) → ReLU → Linear(C, C)``, no residual (``SV`` is d-wide and
  ``F^part`` C-wide). Projections ``W^Q, W^K, W^V`` have no bias, as the equations write them.
* Eq. 8-9 share ``W_gs^K, W_gs^V`` between parts (C-wide) and words (BERT's D): words are first projected D → C by
  a linear layer (the paper writes ``E ∈ R^{H×C}``).
* Eq. 11 broadcasts the ``1×A`` (``1×T``) score over the value channels: each part (word) is gated by its own score.
* Eq. 12 writes ``P_ls W_gs^Q`` but defines ``W_ls^Q``; the local prototypes use their own ``W_ls^Q``.
* Eq. 13-14 give ``W_ls^K, W_ls^V ∈ R^{C×d}`` applied to d-wide values: they are ``d×d`` here (the same when d = C,
  the default).
* Eq. 15-16's ``σ`` is the sigmoid, as everywhere else in the paper (Eq. 3, 11), not a softmax; padded words get
  weight 0 in Eq. 16 and are left out of the language GPO, so they change nothing.
* GPO (``f^gpo ∈ R^O``): VSE∞'s operator (sinusoidal position code 32, BiGRU 32, linear score, softmax at
  temperature 0.1 over the sorted items), one for the parts and one for the projected words, so ``O = C``.
  Algorithm 1 pools ``F^part`` (line 12) and ``E`` (line 3).
* "concatenate ... and obtain the fine-tuned global representation by fully connected layers": one
  ``Linear(L·d + O, L·d + O)`` per modality on ``[flatten(F^ls), f^gpo]``.
* All real tokens of the mask take part, ``[CLS]`` and ``[SEP]`` included; pass a mask without them to leave them out.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ObjectAwareMemory", "PartCrossAttention", "GPO", "gpo_pool", "VisionLanguageContrast", "AdaRS",
           "diversity_loss", "local_diversity_loss", "alignment_similarity"]


class ObjectAwareMemory(nn.Module):
    """OAM (Eq. 1-3): ``N`` learnable (key, value) pairs; value ``v_n`` is a foreground classifier over C channels.

    ``forward(f)`` with ``f`` ``...×C×h×w`` returns ``(f^obj, M)``: the foreground feature (same shape) and the
    foreground logits ``M`` (``...×h×w``, the input of ``L_bce``). Queries are ``Linear(C, C/reduction)`` of each
    pixel. Eq. 1's normalisation is a softmax over the N slots (see the module docstring).
    """

    def __init__(self, channels: int, slots: int = 16, reduction: int = 16) -> None:
        super().__init__()
        if channels % reduction:
            raise ValueError(f"OAM: channels {channels} must be divisible by reduction {reduction}")
        self.dk = channels // reduction
        self.query = nn.Linear(channels, self.dk)
        self.keys = nn.Parameter(torch.randn(slots, self.dk) * 0.02)
        self.values = nn.Parameter(torch.randn(slots, channels) * 0.02)

    def forward(self, f: torch.Tensor) -> tuple:
        x = f.flatten(-2).transpose(-1, -2)                                   # ...×hw×C: pixels x_{i,j}
        beta = self.query(x) @ self.keys.t() / math.sqrt(self.dk)             # Eq. 1: β = q^T k / sqrt(C/16)
        s = beta.softmax(-1)                                                  # Eq. 1: s over n (softmax, see above)
        w = s @ self.values                                                   # Eq. 2: w = Σ_n s^n v_n
        m = (w * x).sum(-1).unflatten(-1, f.shape[-2:])                       # Eq. 2: M = w^T x
        return f * torch.sigmoid(m).unsqueeze(-3), m                          # Eq. 3: f^obj = f ⊙ σ(M)


class PartCrossAttention(nn.Module):
    """PC (Eq. 4-6): A learnable part prototypes attend to the pixels of ``f^obj``; no self-attention layer.

    ``forward(f_obj)`` with ``f_obj`` ``...×C×h×w`` returns ``F^part`` (``...×A×C``). One head, softmax over the
    pixels, ``W^Q, W^K, W^V`` without bias, FFN ``Linear(d, C) → ReLU → Linear(C, C)``. Prototypes start from
    N(0, 1), like the query embeddings of [25].
    """

    def __init__(self, channels: int, parts: int = 4, dim: Optional[int] = None) -> None:
        super().__init__()
        d = dim or channels
        self.d = d
        self.prototypes = nn.Parameter(torch.randn(parts, channels))          # P ∈ R^{A×C}
        self.w_q = nn.Linear(channels, d, bias=False)
        self.w_k = nn.Linear(channels, d, bias=False)
        self.w_v = nn.Linear(channels, d, bias=False)
        self.ffn = nn.Sequential(nn.Linear(d, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels))

    def forward(self, f_obj: torch.Tensor) -> torch.Tensor:
        x = f_obj.flatten(-2).transpose(-1, -2)                               # ...×hw×C
        q = self.w_q(self.prototypes)                                         # Eq. 4: Q = P W^Q   (A×d)
        k, v = self.w_k(x), self.w_v(x)                                       # Eq. 4: K_i, V_i    (hw×d)
        s = (q @ k.transpose(-1, -2) / math.sqrt(self.d)).softmax(-1)         # Eq. 5: S = Softmax(QK^T/sqrt(d))
        return self.ffn(s @ v)                                                # Eq. 6: F^part = FFN(S V_i)


def _positional_encoding(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """VSE∞'s sinusoidal code (``length×dim``): sin on even channels, cos on odd ones."""
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe.to(dtype)


def gpo_pool(features: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """GPO's pooling with given weights: each channel of ``features`` (``B×N×C``) sorted descending over its real
    items (``mask`` ``B×N``), then ``Σ_k weights[b, k] · sorted[b, k]``; ``weights`` is ``B×N`` (0 on pads)."""
    m = mask.bool().unsqueeze(-1)
    fill = torch.finfo(features.dtype).min
    ranked = features.masked_fill(~m, fill).sort(dim=1, descending=True).values
    rank_real = torch.arange(features.shape[1], device=features.device)[None, :] < mask.sum(1, keepdim=True)
    ranked = ranked.masked_fill(~rank_real.unsqueeze(-1), 0.0)
    return (ranked * weights.unsqueeze(-1)).sum(1)


class GPO(nn.Module):
    """Generalized Pooling Operator (Chen et al., "Learning the Best Pooling Strategy for Visual Semantic
    Embedding", CVPR 2021; VSE∞): learned weights over the rank of each channel.

    The weights depend only on how many items are real: a BiGRU (hidden ``d_hidden``, the two directions averaged)
    reads the sinusoidal codes of positions ``0..n-1``, a bias-free linear layer scores each, and a softmax at
    temperature ``tau`` gives ``θ_1..θ_n``. ``forward(features B×N×C, mask B×N) -> B×C``.
    """

    def __init__(self, d_pe: int = 32, d_hidden: int = 32, tau: float = 0.1) -> None:
        super().__init__()
        self.d_pe, self.tau = d_pe, tau
        self.gru = nn.GRU(d_pe, d_hidden, 1, batch_first=True, bidirectional=True)
        self.score = nn.Linear(d_hidden, 1, bias=False)

    def weights(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """``θ_1..θ_n`` (length ``n``) for a set of ``n`` real items."""
        pe = _positional_encoding(n, self.d_pe, device, self.score.weight.dtype)[None]
        out, _ = self.gru(pe)
        h = out.shape[-1] // 2
        return (self.score((out[..., :h] + out[..., h:]) / 2)[0, :, 0] / self.tau).softmax(0).to(dtype)

    def forward(self, features: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, n, _ = features.shape
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=features.device)
        counts = mask.bool().sum(1)
        weights = features.new_zeros(b, n)
        for c in counts.unique().tolist():                                    # one GRU run per distinct length
            if c:
                rows = (counts == c).nonzero(as_tuple=True)[0]
                weights[rows, :c] = self.weights(c, features.device, features.dtype)
        return gpo_pool(features, mask, weights)


class VisionLanguageContrast(nn.Module):
    """VLC (Eq. 7-16): GPO global features plus local semantics through shared semantic prototypes.

    ``encode_visual(parts ...×A×C)`` and ``encode_text(words B×T×D, mask B×T)`` each return
    ``{'global': ...×(L·d+O), 'local': ...×L×d, 'gpo': ...×O}``: the fine-tuned global representation
    ``f̂^{vls}`` / ``f̂^{lls}``, the local semantic features ``F^{vls}`` / ``F^{lls}`` and the GPO feature.
    ``W_gs`` is shared by the modalities (Eq. 8-9), and so are ``W_ls`` (Eq. 13-14) and the prototypes; the GPOs
    and the final fully connected layers are per modality. See the module docstring for each reading.
    """

    def __init__(self, channels: int, word_dim: int, local_prototypes: int = 4, dim: Optional[int] = None) -> None:
        super().__init__()
        d = dim or channels
        self.d = d
        self.word_proj = nn.Linear(word_dim, channels) if word_dim != channels else nn.Identity()
        self.p_gs = nn.Parameter(torch.randn(1, channels))                    # shared global semantic prototype
        self.w_gs_q = nn.Linear(channels, d, bias=False)
        self.w_gs_k = nn.Linear(channels, d, bias=False)
        self.w_gs_v = nn.Linear(channels, d, bias=False)
        self.p_ls = nn.Parameter(torch.randn(local_prototypes, channels))     # P_ls ∈ R^{L×C}
        self.w_ls_q = nn.Linear(channels, d, bias=False)
        self.w_ls_k = nn.Linear(d, d, bias=False)
        self.w_ls_v = nn.Linear(d, d, bias=False)
        self.gpo_visual, self.gpo_text = GPO(), GPO()
        width = local_prototypes * d + channels
        self.fc_visual = nn.Linear(width, width)
        self.fc_text = nn.Linear(width, width)

    def _local(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Eq. 7-16 for one modality: ``x`` ``...×n×C`` (parts or projected words) -> ``...×L×d``."""
        q_gs = self.w_gs_q(self.p_gs)                                         # Eq. 7: Q_gs = p_gs W_gs^Q  (1×d)
        k, v = self.w_gs_k(x), self.w_gs_v(x)                                 # Eq. 8 / 9: K, V (n×d)
        s = q_gs @ k.transpose(-1, -2) / math.sqrt(self.d)                    # Eq. 10: S = Q_gs K^T / sqrt(d)  (1×n)
        v_hat = v * torch.sigmoid(s).transpose(-1, -2)                        # Eq. 11: V̂ = V ⊙ σ(S)
        q_ls = self.w_ls_q(self.p_ls)                                         # Eq. 12: Q_ls = P_ls W_ls^Q  (L×d)
        k_ls, v_ls = self.w_ls_k(v_hat), self.w_ls_v(v_hat)                   # Eq. 13 / 14
        a = torch.sigmoid(q_ls @ k_ls.transpose(-1, -2) / math.sqrt(self.d))  # Eq. 15 / 16: σ(Q_ls K^T / sqrt(d))
        if mask is not None:
            a = a * mask.to(a.dtype).unsqueeze(-2)                            # padded words weigh 0
        return a @ v_ls                                                       # Eq. 15 / 16: F^{ls} (L×d)

    def _global(self, local: torch.Tensor, gpo: torch.Tensor, fc: nn.Module) -> torch.Tensor:
        return fc(torch.cat([local.flatten(-2), gpo], -1))                    # [F^ls, f^gpo] -> f̂ (§3.2, last para)

    def encode_visual(self, parts: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``parts`` ``...×A×C`` (``F^part`` of each proposal) -> ``{'global', 'local', 'gpo'}``."""
        lead, (a, c) = parts.shape[:-2], parts.shape[-2:]
        local = self._local(parts, None)
        gpo = self.gpo_visual(parts.reshape(-1, a, c)).reshape(*lead, c)       # Alg. 1 line 12: GPO(F^part)
        return {"global": self._global(local, gpo, self.fc_visual), "local": local, "gpo": gpo}

    def encode_text(self, words: torch.Tensor, mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``words`` ``B×T×D`` (token features), ``mask`` ``B×T`` (true on real tokens) -> ``{'global', 'local',
        'gpo'}``; padded tokens change nothing."""
        mask = mask.bool()
        e = self.word_proj(words).masked_fill(~mask.unsqueeze(-1), 0.0)      # E ∈ R^{T×C}, pads 0
        local = self._local(e, mask)
        gpo = self.gpo_text(e, mask)                                          # Alg. 1 line 3: GPO(E_t)
        return {"global": self._global(local, gpo, self.fc_text), "local": local, "gpo": gpo}


def alignment_similarity(visual: Dict[str, torch.Tensor], text: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 19: ``cos(f̂^{lls}, f̂_i^{vls}) + (1/L) Σ_j cos(f_j^l, f_j^v)``, broadcast over the leading dims of the
    two :class:`VisionLanguageContrast` encodings (e.g. ``B×K`` proposals against ``B×1`` sentences, or ``N×1``
    against ``1×N`` for a similarity matrix)."""
    g = F.cosine_similarity(text["global"], visual["global"], dim=-1)
    loc = F.cosine_similarity(text["local"], visual["local"], dim=-1).mean(-1)
    return g + loc


def diversity_loss(features: torch.Tensor) -> torch.Tensor:
    """Eq. 17: the mean cosine similarity over ordered pairs ``i ≠ j`` of the ``A`` features of one set
    (``...×A×C``), averaged over the leading dims: 0 for orthogonal features, 1 for identical ones."""
    a = features.shape[-2]
    if a < 2:
        raise ValueError(f"diversity_loss needs at least 2 features per set, got {a}")
    u = F.normalize(features, dim=-1)
    cos = u @ u.transpose(-1, -2)
    off = cos.sum((-1, -2)) - cos.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (off / (a * (a - 1))).mean()


def local_diversity_loss(visual_local: torch.Tensor, text_local: torch.Tensor) -> torch.Tensor:
    """Eq. 18: ``1/(2L(L-1)) Σ_{m∈{l,v}} Σ_{i≠j} cos(f_i^m, f_j^m)``, the mean of Eq. 17 over the two modalities'
    local semantic features (``...×L×d`` each)."""
    return 0.5 * (diversity_loss(visual_local) + diversity_loss(text_local))


class AdaRS(nn.Module):
    """OAM -> PC -> VLC on PrRoI-pooled proposals (§3.2, Alg. 1 lines 9-13).

    ``forward(proposals B×K×C×h×w, words B×T×D, word_mask B×T)`` (or ``text=`` the words' encoding) returns
    ``scores`` (``B×K``, Eq. 19 against the item's own sentence), ``fg_logits`` (``B×K×h×w``, OAM's ``M``),
    ``parts`` (``B×K×A×C``), and the two encodings ``visual`` / ``text`` (for the ranking loss over the batch and
    Eq. 17-18).
    """

    def __init__(self, channels: int = 256, word_dim: int = 768, slots: int = 16, parts: int = 4,
                 local_prototypes: int = 4, reduction: int = 16) -> None:
        super().__init__()
        self.oam = ObjectAwareMemory(channels, slots, reduction)
        self.pc = PartCrossAttention(channels, parts)
        self.vlc = VisionLanguageContrast(channels, word_dim, local_prototypes)

    def forward(self, proposals: torch.Tensor, words: Optional[torch.Tensor] = None,
                word_mask: Optional[torch.Tensor] = None,
                text: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, object]:
        """``text``: :meth:`VisionLanguageContrast.encode_text` of the words computed before (Alg. 1 lines 1-3 run
        once per video); without it ``words`` and ``word_mask`` are encoded here."""
        f_obj, m = self.oam(proposals)
        parts = self.pc(f_obj)
        visual = self.vlc.encode_visual(parts)
        if text is None:
            if words is None or word_mask is None:
                raise ValueError("AdaRS: give the words and their mask, or their text encoding")
            text = self.vlc.encode_text(words, word_mask)
        text_b = {k: v.unsqueeze(1) for k, v in text.items()}                  # one sentence per item, K proposals
        return {"scores": alignment_similarity(visual, text_b), "fg_logits": m, "parts": parts,
                "visual": visual, "text": text}
