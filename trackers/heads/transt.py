"""TransT's feature-fusion network and prediction heads (Chen et al., "Transformer Tracking", CVPR 2021).

Both branches are flattened to token sequences (``B×N×d``, row-major over the map) with a 2-D sine position
encoding (DETR's, :class:`SinePositionEncoding`). :class:`FeatureFusionNetwork` then runs ``num_layers`` fusion
layers, each made of

* **ECA** (ego-context augment), per branch: ``x = LN(x + MHSA(q = k = x + pos, v = x))``;
* **CFA** (cross-feature augment), per branch, both computed from the ECA outputs: ``x = LN(x + MHCA(q = x + pos_x,
  k = y + pos_y, v = y))`` followed by ``x = LN(x + FFN(x))`` with ``FFN = Linear-ReLU-Dropout-Linear``,

and a final CFA (the "decoder") in which the search tokens attend to the template tokens, followed by a LayerNorm.
TransT: ``d_model = 256``, 8 heads, FFN 2048, dropout 0.1, 4 fusion layers; weights Xavier-uniform.

:class:`TransTHead` predicts per search token (location) 2 class logits and a box: a 3-layer MLP each, the box MLP
ending in a sigmoid so that the box is the normalised ``cx, cy, w, h`` of the search crop (``(0, 1)``).
**Class order as TransT**: index 0 = foreground (the target), index 1 = background ("no object"); the tracker's
score is ``softmax(logits)[..., 0]``.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from asearch.errors import ConfigError

__all__ = ["SinePositionEncoding", "FeatureFusionLayer", "CFALayer", "FeatureFusionNetwork", "MLP", "TransTHead",
           "flatten_map", "FOREGROUND", "BACKGROUND"]

#: class indices of the 2-way classification (TransT's order)
FOREGROUND = 0
BACKGROUND = 1


def flatten_map(x: torch.Tensor) -> torch.Tensor:
    """``B×C×H×W`` -> ``B×(H·W)×C`` tokens, row-major (token ``r * W + c`` is cell ``(r, c)``)."""
    return x.flatten(2).transpose(1, 2)


class SinePositionEncoding(nn.Module):
    """DETR's 2-D sine position encoding without a padding mask, as TransT uses it.

    For cell ``(r, c)`` of an ``H×W`` map, ``y = (r + 1) / (H + eps) * 2π`` and ``x = (c + 1) / (W + eps) * 2π``
    (``normalize=True``); with ``k = d_model / 2`` features per axis and ``t_i = T ** (2 * (i // 2) / k)``, the
    features are ``sin(y / t_i)`` for even ``i`` and ``cos(y / t_i)`` for odd ``i`` (interleaved), then the same
    for ``x``; output ``B×d_model×H×W`` (the ``y`` half first). Nothing is learned.
    """

    def __init__(self, d_model: int = 256, temperature: float = 10000.0, normalize: bool = True,
                 scale: float = 2 * math.pi, eps: float = 1e-6):
        super().__init__()
        if d_model % 2:
            raise ConfigError(f"model.d_model must be even for the sine position encoding, got {d_model}")
        self.num_pos_feats = d_model // 2
        self.temperature = float(temperature)
        self.normalize = bool(normalize)
        self.scale = float(scale)
        self.eps = float(eps)

    def encode(self, height: int, width: int, device: Optional[torch.device] = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The ``d_model×H×W`` encoding of an ``H×W`` map."""
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        if self.normalize:
            y = y / (y[-1] + self.eps) * self.scale
            x = x / (x[-1] + self.eps) * self.scale
        i = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / self.num_pos_feats)
        py, px = y[:, None] / dim_t, x[:, None] / dim_t                      # H×k, W×k
        py = torch.stack([py[:, 0::2].sin(), py[:, 1::2].cos()], dim=2).flatten(1)  # interleave sin/cos
        px = torch.stack([px[:, 0::2].sin(), px[:, 1::2].cos()], dim=2).flatten(1)
        pos_y = py[:, None, :].expand(height, width, -1)
        pos_x = px[None, :, :].expand(height, width, -1)
        return torch.cat([pos_y, pos_x], dim=2).permute(2, 0, 1).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encoding for the map ``x`` (``B×C×H×W``): ``B×d_model×H×W``."""
        pos = self.encode(x.shape[-2], x.shape[-1], x.device, x.dtype)
        return pos.unsqueeze(0).expand(x.shape[0], -1, -1, -1)


def _ffn(d_model: int, dim_feedforward: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(dim_feedforward, d_model))


class CFALayer(nn.Module):
    """Cross-feature augment: ``x = LN(x + Drop(MHCA(x + pos_x, y + pos_y, y)))``, ``x = LN(x + Drop(FFN(x)))``."""

    def __init__(self, d_model: int = 256, nhead: int = 8, dim_feedforward: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d_model)
        self.drop1 = nn.Dropout(dropout)
        self.ffn = _ffn(d_model, dim_feedforward, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor, pos_x: torch.Tensor, pos_y: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Tokens ``x`` (``B×N×d``) attend to tokens ``y`` (``B×M×d``); returns the new ``x``. With ``y = x`` and
        ``pos_y = pos_x`` this is a post-LN transformer encoder layer (COST's Eq. 4-5); ``key_padding_mask``
        (``B×M`` bool, true = ignored) leaves padded tokens of ``y`` out of the attention."""
        a = self.attn(x + pos_x, y + pos_y, y, key_padding_mask=key_padding_mask, need_weights=False)[0]
        x = self.norm1(x + self.drop1(a))
        return self.norm2(x + self.drop2(self.ffn(x)))


class FeatureFusionLayer(nn.Module):
    """One TransT fusion layer: ECA on each branch, then CFA in both directions (from the ECA outputs)."""

    def __init__(self, d_model: int = 256, nhead: int = 8, dim_feedforward: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.self_attn_z = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.self_attn_x = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.norm_z = nn.LayerNorm(d_model)
        self.norm_x = nn.LayerNorm(d_model)
        self.drop_z = nn.Dropout(dropout)
        self.drop_x = nn.Dropout(dropout)
        self.cfa_z = CFALayer(d_model, nhead, dim_feedforward, dropout)
        self.cfa_x = CFALayer(d_model, nhead, dim_feedforward, dropout)

    def forward(self, z: torch.Tensor, x: torch.Tensor, pos_z: torch.Tensor, pos_x: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Template tokens ``z`` and search tokens ``x`` (``B×N×d``) -> the fused pair."""
        qz = z + pos_z
        z = self.norm_z(z + self.drop_z(self.self_attn_z(qz, qz, z, need_weights=False)[0]))   # ECA, template
        qx = x + pos_x
        x = self.norm_x(x + self.drop_x(self.self_attn_x(qx, qx, x, need_weights=False)[0]))   # ECA, search
        return self.cfa_z(z, x, pos_z, pos_x), self.cfa_x(x, z, pos_x, pos_z)                  # CFA both ways


class FeatureFusionNetwork(nn.Module):
    """``num_layers`` × :class:`FeatureFusionLayer`, then a CFA decoder on the search branch and a LayerNorm.

    Args:
        d_model: token width (TransT: 256).
        nhead: attention heads (8); must divide ``d_model``.
        num_layers: fusion layers (4).
        dim_feedforward: FFN hidden width (2048).
        dropout: dropout in attention and FFN (0.1).
    """

    def __init__(self, d_model: int = 256, nhead: int = 8, num_layers: int = 4, dim_feedforward: int = 2048,
                 dropout: float = 0.1):
        super().__init__()
        if d_model % nhead:
            raise ConfigError(f"model.nhead ({nhead}) must divide model.d_model ({d_model})")
        if num_layers < 1:
            raise ConfigError(f"model.num_fusion_layers must be >= 1, got {num_layers}")
        self.d_model = int(d_model)
        self.layers = nn.ModuleList(FeatureFusionLayer(d_model, nhead, dim_feedforward, dropout)
                                    for _ in range(num_layers))
        self.decoder = CFALayer(d_model, nhead, dim_feedforward, dropout)
        self.norm = nn.LayerNorm(d_model)
        for p in self.parameters():  # TransT's _reset_parameters
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, z: torch.Tensor, x: torch.Tensor, pos_z: torch.Tensor, pos_x: torch.Tensor) -> torch.Tensor:
        """Template tokens ``B×Nz×d``, search tokens ``B×Nx×d`` and their encodings -> fused search ``B×Nx×d``."""
        if z.shape[-1] != self.d_model or x.shape[-1] != self.d_model:
            raise ValueError(f"fusion network expects tokens of width {self.d_model}, got {z.shape[-1]} (template) "
                             f"and {x.shape[-1]} (search)")
        for layer in self.layers:
            z, x = layer(z, x, pos_z, pos_x)
        return self.norm(self.decoder(x, z, pos_x, pos_z))


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (DETR / TransT's prediction MLP)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 3):
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"MLP needs at least one layer, got {num_layers}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layers (ReLU after all but the last)."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class TransTHead(nn.Module):
    """Classification MLP (2 logits: foreground, background) and box MLP (sigmoid -> normalised ``cx, cy, w, h``).

    Args:
        d_model: token width.
        num_layers: layers per MLP (TransT: 3).
        box_layers: layers of the box MLP when it differs (COST: 2 / 1); ``None``: ``num_layers``.
    """

    def __init__(self, d_model: int = 256, num_layers: int = 3, box_layers: Optional[int] = None):
        super().__init__()
        self.class_embed = MLP(d_model, d_model, 2, num_layers)
        self.bbox_embed = MLP(d_model, d_model, 4, num_layers if box_layers is None else box_layers)

    def forward(self, tokens: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Fused search tokens ``B×N×d`` -> ``{'logits': B×N×2, 'boxes': B×N×4}``."""
        return {"logits": self.class_embed(tokens), "boxes": self.bbox_embed(tokens).sigmoid()}

