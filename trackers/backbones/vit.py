"""One-stream ViT with candidate elimination (OSTrack, Ye et al., ECCV 2022), the backbone of OSTrack and VLT_OST.

Structure (ViT-B/16: patch 16, dim 768, 12 blocks, 12 heads, MLP ratio 4, LayerNorm eps 1e-6):

* input: float RGB 0..255, B×3×H×W, normalised inside with the ImageNet mean/std (buffers);
* ``patch_embed.proj``: Conv2d(3, C, P, P); the template (128 → 8×8 tokens) and the search crop (256 → 16×16
  tokens) get their own position embeddings ``pos_embed_z`` / ``pos_embed_x`` and are concatenated
  ``[template tokens, search tokens]`` (no class token);
* ``blocks.{i}``: pre-norm transformer blocks (``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``,
  ``mlp.fc2``) with joint self-attention over all tokens, stochastic depth ``drop_path`` rising linearly to its value;
* candidate elimination (CE) inside the blocks of ``ce_layers`` (0-based; OSTrack: 3, 6, 9, i.e. the 4th, 7th and
  10th layer, keep ratio 0.7): after the attention, the search tokens are ranked by the attention that the template
  tokens of ``ce_template_range`` give them (``ctr_point``: the centre token of the template grid, index
  ``(n - 1) // 2`` on each axis, as OSTrack's CTR_POINT; ``all``: every template token), averaged over heads; the top
  ``ceil(keep_ratio · n_search)`` stay, the rest leave the sequence for the following layers;
* ``norm`` at the end, then the eliminated search tokens come back as zeros at their original positions, so the head
  always sees the full 16×16 map.

Stage hook (VLT_OST): ``forward(..., stage_hook=fn, stage_every=3)`` calls ``fn(k, z_map, x_map)`` after every
``stage_every`` blocks (k = 0, 1, ...) with the template map B×C×Hz×Wz and the FULL search map B×C×Hs×Ws in which
eliminated tokens are zeros; the returned maps replace the tokens (the eliminated positions stay eliminated).

Weights: :func:`load_vit_weights` reads a local MAE or timm ViT state dict (see its docstring).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from asearch.errors import CheckpointError, ConfigError, ModelNotFoundError
from supernets.pixels import PixelNormalise

__all__ = ["VisionTransformerCE", "Attention", "Mlp", "CEBlock", "DropPath", "candidate_elimination",
           "recover_tokens", "template_center_mask", "load_vit_weights", "ViTLoadReport", "map_vit_state_dict",
           "interpolate_pos_embed", "CE_TEMPLATE_RANGES"]

CE_TEMPLATE_RANGES = ("ctr_point", "all")
StageHook = Callable[[int, torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


class DropPath(nn.Module):
    """Stochastic depth: in training, drop the residual branch of a whole sample with probability ``p``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection; can return the attention map (for CE)."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"ViT: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, return_attn: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``x`` B×N×C -> (B×N×C, attention B×heads×N×N softmax-normalised, or ``None``)."""
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if return_attn:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            out = attn @ v
        else:
            attn = None
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c)), attn


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def template_center_mask(grid: int, mode: str = "ctr_point", device: Any = None) -> Optional[torch.Tensor]:
    """Template tokens whose attention ranks the search tokens: a ``grid²`` bool vector (``None`` for ``all``).

    ``ctr_point`` marks the one token at row and column ``(grid - 1) // 2`` (3 for an 8×8 template, as OSTrack).
    """
    if mode == "all":
        return None
    if mode != "ctr_point":
        raise ConfigError(f"ViT: ce_template_range must be one of {CE_TEMPLATE_RANGES}, got {mode!r}")
    mask = torch.zeros(grid, grid, dtype=torch.bool, device=device)
    c = (grid - 1) // 2
    mask[c, c] = True
    return mask.flatten()


def candidate_elimination(attn: torch.Tensor, tokens: torch.Tensor, lens_t: int, keep_ratio: float,
                          global_index: torch.Tensor, template_mask: Optional[torch.Tensor] = None
                          ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Drop the search tokens that the template attends to least (OSTrack's early elimination).

    Args:
        attn: B×heads×N×N attention of the block (N = ``lens_t`` + current search tokens).
        tokens: B×N×C tokens ``[template, search]``.
        lens_t: number of template tokens.
        keep_ratio: share of the current search tokens kept (``ceil(keep_ratio · n)`` of them).
        global_index: B×n original positions (in the full search grid) of the current search tokens.
        template_mask: ``lens_t`` bool, the template tokens whose attention counts (``None``: all).

    Returns:
        ``(tokens B×(lens_t + k)×C, kept global index B×k, removed global index B×(n - k) or None)``. Kept tokens
        are ordered by decreasing score.
    """
    n = attn.shape[-1] - lens_t
    keep = math.ceil(keep_ratio * n)
    if keep >= n:
        return tokens, global_index, None
    attn_t = attn[:, :, :lens_t, lens_t:]                              # B×H×Lt×n: template queries -> search keys
    if template_mask is not None:
        w = template_mask.to(attn_t.dtype).view(1, 1, -1, 1)
        score = (attn_t * w).sum(dim=2) / w.sum()                       # mean over the chosen template tokens
    else:
        score = attn_t.mean(dim=2)
    score = score.mean(dim=1)                                          # B×n, mean over heads
    order = torch.sort(score, dim=1, descending=True, stable=True).indices
    kept, removed = order[:, :keep], order[:, keep:]
    search = tokens[:, lens_t:]
    search = search.gather(1, kept.unsqueeze(-1).expand(-1, -1, search.shape[-1]))
    return (torch.cat([tokens[:, :lens_t], search], dim=1), global_index.gather(1, kept),
            global_index.gather(1, removed))


def recover_tokens(search: torch.Tensor, global_index: torch.Tensor, total: int) -> torch.Tensor:
    """Put kept search tokens (B×k×C) back at their positions of the full grid (B×total×C), zeros elsewhere."""
    out = search.new_zeros(search.shape[0], total, search.shape[-1])
    return out.scatter(1, global_index.unsqueeze(-1).expand(-1, -1, search.shape[-1]), search)


class CEBlock(nn.Module):
    """Pre-norm transformer block; with ``keep_ratio < 1`` it eliminates search tokens after its attention."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0,
                 keep_ratio: float = 1.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.keep_ratio = float(keep_ratio)

    def forward(self, x: torch.Tensor, lens_t: int, global_index: torch.Tensor,
                template_mask: Optional[torch.Tensor] = None, keep_ratio: Optional[float] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """``(tokens, kept search global index, removed global index or None)``; ``keep_ratio`` overrides the
        block's own ratio (only in CE blocks: a block built with ratio 1 never eliminates)."""
        ratio = self.keep_ratio if keep_ratio is None or self.keep_ratio >= 1.0 else float(keep_ratio)
        eliminate = ratio < 1.0
        a, attn = self.attn(self.norm1(x), return_attn=eliminate)
        x = x + self.drop_path(a)
        removed = None
        if eliminate:
            x, global_index, removed = candidate_elimination(attn, x, lens_t, ratio, global_index, template_mask)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, global_index, removed


class VisionTransformerCE(nn.Module):
    """The one-stream ViT of OSTrack (module docstring).

    Args:
        patch_size, dim, depth, heads, mlp_ratio, qkv_bias: ViT shape (ViT-B/16: 16, 768, 12, 12, 4, True).
        drop_path: stochastic-depth rate of the last block (linear from 0; OSTrack 0.1).
        template_size, search_size: crop sides in pixels (multiples of ``patch_size``; OSTrack-256: 128 / 256).
        ce_layers: 0-based indices of the CE blocks (OSTrack: 3, 6, 9).
        ce_keep_ratio: share of search tokens kept at each CE block (one value, or one per CE block; 0.7).
        ce_template_range: ``ctr_point`` or ``all`` (which template tokens rank the search tokens).
    """

    def __init__(self, patch_size: int = 16, dim: int = 768, depth: int = 12, heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.1, template_size: int = 128,
                 search_size: int = 256, ce_layers: Sequence[int] = (3, 6, 9),
                 ce_keep_ratio: Union[float, Sequence[float]] = 0.7, ce_template_range: str = "ctr_point"):
        super().__init__()
        for name, size in (("template_size", template_size), ("search_size", search_size)):
            if size % patch_size or size < patch_size:
                raise ConfigError(f"ViT: {name} {size} must be a positive multiple of patch_size {patch_size}")
        ce_layers = [int(i) for i in ce_layers]
        bad = [i for i in ce_layers if not 0 <= i < depth]
        if bad:
            raise ConfigError(f"ViT: ce_layers index {bad[0]} is outside the {depth} blocks (0-based)")
        ratios = [float(ce_keep_ratio)] * len(ce_layers) if isinstance(ce_keep_ratio, (int, float)) \
            else [float(r) for r in ce_keep_ratio]
        if len(ratios) != len(ce_layers):
            raise ConfigError(f"ViT: {len(ratios)} ce_keep_ratio values for {len(ce_layers)} ce_layers")
        if any(not 0.0 < r <= 1.0 for r in ratios):
            raise ConfigError(f"ViT: ce_keep_ratio values must be in (0, 1], got {ratios}")
        if ce_template_range not in CE_TEMPLATE_RANGES:
            raise ConfigError(f"ViT: ce_template_range must be one of {CE_TEMPLATE_RANGES}, got {ce_template_range!r}")
        self.patch_size, self.dim, self.depth, self.heads = patch_size, dim, depth, heads
        self.template_size, self.search_size = template_size, search_size
        self.grid_z, self.grid_x = template_size // patch_size, search_size // patch_size
        self.stride = patch_size
        self.ce_layers = ce_layers
        self.ce_keep_ratios = ratios
        self.ce_template_range = ce_template_range
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch_size, patch_size)
        self.pos_embed_z = nn.Parameter(torch.zeros(1, self.grid_z ** 2, dim))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, self.grid_x ** 2, dim))
        keep = {i: r for i, r in zip(ce_layers, ratios)}
        dpr = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList([CEBlock(dim, heads, mlp_ratio, qkv_bias, dpr[i], keep.get(i, 1.0))
                                     for i in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        mask = template_center_mask(self.grid_z, ce_template_range)
        self.register_buffer("template_mask", mask if mask is not None else torch.ones(0, dtype=torch.bool),
                             persistent=False)
        self.pixels = PixelNormalise("imagenet_rgb")
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed_z, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_x, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ----- embedding ------------------------------------------------------------------------------------------------
    def _embed(self, image: torch.Tensor, size: int, pos: torch.Tensor, name: str) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != (size, size):
            raise ValueError(f"ViT: {name} images must be B×3×{size}×{size} (RGB 0..255), got {tuple(image.shape)}")
        x = self.patch_embed.proj(self.pixels(image))
        return x.flatten(2).transpose(1, 2) + pos

    def embed_template(self, template: torch.Tensor) -> torch.Tensor:
        """Template crop B×3×T×T -> tokens B×(T/P)²×C with their position embedding (cacheable per video)."""
        return self._embed(template, self.template_size, self.pos_embed_z, "template")

    def embed_search(self, search: torch.Tensor) -> torch.Tensor:
        """Search crop B×3×S×S -> tokens B×(S/P)²×C with their position embedding."""
        return self._embed(search, self.search_size, self.pos_embed_x, "search")

    # ----- forward --------------------------------------------------------------------------------------------------
    def to_map(self, tokens: torch.Tensor, grid: int) -> torch.Tensor:
        """Row-major tokens B×grid²×C -> map B×C×grid×grid."""
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], grid, grid)

    def forward_tokens(self, z: torch.Tensor, x: torch.Tensor, ce_keep_ratio: Optional[float] = None,
                       stage_hook: Optional[StageHook] = None, stage_every: int = 3) -> Dict[str, Any]:
        """Run the blocks on embedded tokens ``z`` (B×Nz×C) and ``x`` (B×Nx×C).

        ``ce_keep_ratio`` overrides the ratio of every CE block (OSTrack's warm-up schedule; 1 disables CE).
        Returns ``search`` (B×C×Hs×Ws, final norm, eliminated tokens as zeros), ``template`` (B×C×Hz×Wz),
        ``keep_index`` (B×k original positions of the search tokens that survived every CE block) and
        ``removed_index`` (list of B×r per CE block that removed tokens).
        """
        b, lens_t, n_x = z.shape[0], z.shape[1], x.shape[1]
        tokens = torch.cat([z, x], dim=1)
        index = torch.arange(n_x, device=x.device).unsqueeze(0).expand(b, -1)
        mask = self.template_mask if self.template_mask.numel() else None
        removed: List[torch.Tensor] = []
        for i, blk in enumerate(self.blocks):
            tokens, index, rem = blk(tokens, lens_t, index, mask, ce_keep_ratio)
            if rem is not None:
                removed.append(rem)
            if stage_hook is not None and (i + 1) % stage_every == 0:
                z_map = self.to_map(tokens[:, :lens_t], self.grid_z)
                x_map = self.to_map(recover_tokens(tokens[:, lens_t:], index, n_x), self.grid_x)
                z_map, x_map = stage_hook((i + 1) // stage_every - 1, z_map, x_map)
                x_tok = x_map.flatten(2).transpose(1, 2)
                x_tok = x_tok.gather(1, index.unsqueeze(-1).expand(-1, -1, x_tok.shape[-1]))
                tokens = torch.cat([z_map.flatten(2).transpose(1, 2), x_tok], dim=1)
        tokens = self.norm(tokens)
        search = recover_tokens(tokens[:, lens_t:], index, n_x)
        return {"search": self.to_map(search, self.grid_x), "template": self.to_map(tokens[:, :lens_t], self.grid_z),
                "keep_index": index, "removed_index": removed}

    def forward(self, template: torch.Tensor, search: torch.Tensor, ce_keep_ratio: Optional[float] = None,
                stage_hook: Optional[StageHook] = None, stage_every: int = 3) -> Dict[str, Any]:
        """Images (0..255) -> :meth:`forward_tokens` outputs."""
        return self.forward_tokens(self.embed_template(template), self.embed_search(search), ce_keep_ratio,
                                   stage_hook, stage_every)


# ----------------------------------------------------------------------------------------------------------------------
# pretrained weights
#: keys of MAE / timm ViT files that the one-stream tracker has no use for
SKIPPED_PREFIXES: Tuple[str, ...] = ("cls_token", "head.", "fc_norm.", "decoder", "mask_token", "dist_token",
                                     "pre_logits.", "head_dist.")
_WRAPPERS = ("model", "state_dict", "net", "module")
_PREFIXES = ("module.", "backbone.", "encoder.")


@dataclass
class ViTLoadReport:
    """What :func:`load_vit_weights` did: keys copied, skipped (file) and the position-embedding resizing."""

    path: str
    loaded: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    pos_grid: int = 0

    def __str__(self) -> str:
        return (f"ViT weights {self.path}: loaded {len(self.loaded)} tensors (position embedding {self.pos_grid}x"
                f"{self.pos_grid} interpolated), skipped {len(self.skipped)} ({', '.join(self.skipped[:4])}"
                f"{', ...' if len(self.skipped) > 4 else ''})")


def interpolate_pos_embed(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """Resize a 1×G²×C (or G²×C) position embedding to 1×grid²×C (bicubic, as OSTrack)."""
    pos = pos.reshape(-1, pos.shape[-1])
    g = int(round(math.sqrt(pos.shape[0])))
    if g * g != pos.shape[0]:
        raise CheckpointError(f"pos_embed has {pos.shape[0]} positions, not a square grid")
    if g == grid:
        return pos.unsqueeze(0).clone()
    m = pos.reshape(1, g, g, -1).permute(0, 3, 1, 2).float()
    m = F.interpolate(m, size=(grid, grid), mode="bicubic", align_corners=False)
    return m.permute(0, 2, 3, 1).reshape(1, grid * grid, -1).to(pos.dtype)


def _unwrap_state(obj: Any, source: str) -> Dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(torch.is_tensor(v) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPERS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not any(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{source}: no ViT state dict found (expected tensors, possibly under 'model')")
    out = {}
    for k, v in obj.items():
        if not torch.is_tensor(v):
            continue
        for p in _PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def map_vit_state_dict(state: Mapping[str, torch.Tensor], vit: VisionTransformerCE, source: str = "<state dict>"
                       ) -> Tuple[Dict[str, torch.Tensor], List[str], int]:
    """Map MAE / timm ViT keys onto ``vit``: ``(new state, skipped file keys, source position grid)``.

    ``patch_embed.proj``, ``blocks.{i}.*`` and ``norm`` keep their names; ``pos_embed`` (with or without its class
    position) is interpolated to ``pos_embed_z`` and ``pos_embed_x``; ``cls_token`` and classifier/decoder keys
    are skipped. A model key the file lacks, a file key the model has no place for, or a shape mismatch raise
    :class:`CheckpointError` naming the key.
    """
    own = vit.state_dict()
    mapped: Dict[str, torch.Tensor] = {}
    skipped: List[str] = []
    grid = 0
    for key, value in state.items():
        if key.startswith(SKIPPED_PREFIXES):
            skipped.append(key)
            continue
        if key == "pos_embed":
            pos = value.reshape(-1, value.shape[-1])
            n = pos.shape[0]
            g = int(round(math.sqrt(n)))
            if g * g != n:
                g = int(round(math.sqrt(n - 1)))
                if g * g != n - 1:
                    raise CheckpointError(f"{source}: key 'pos_embed' has {n} positions, neither G² nor 1 + G²")
                pos = pos[1:]  # drop the class-token position
            if pos.shape[-1] != vit.dim:
                raise CheckpointError(f"{source}: key 'pos_embed' has width {pos.shape[-1]}, the model {vit.dim}")
            grid = g
            mapped["pos_embed_z"] = interpolate_pos_embed(pos, vit.grid_z)
            mapped["pos_embed_x"] = interpolate_pos_embed(pos, vit.grid_x)
            continue
        if key not in own:
            raise CheckpointError(f"{source}: key '{key}' has no place in the ViT (depth {vit.depth}, dim {vit.dim})")
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(f"{source}: key '{key}' has shape {tuple(value.shape)} in the file, "
                                  f"{tuple(own[key].shape)} in the model")
        mapped[key] = value
    missing = ["pos_embed" if k.startswith("pos_embed_") else k for k in own if k not in mapped]
    if missing:
        raise CheckpointError(f"{source}: key '{missing[0]}' of the ViT is missing from the file")
    return mapped, skipped, grid


def load_vit_weights(vit: VisionTransformerCE, path: Union[str, os.PathLike]) -> ViTLoadReport:
    """Load a local MAE (``{'model': ...}``) or timm ViT state dict into ``vit`` (key mapping: see
    :func:`map_vit_state_dict`; ``module.`` / ``backbone.`` prefixes are removed).

    A missing file raises :class:`ModelNotFoundError` saying where to put it; wrong keys or shapes raise
    :class:`CheckpointError` naming the key. Nothing is downloaded.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"ViT weights not found at {path}: put the MAE ViT-B/16 encoder file there (mae_pretrain_vit_base.pth "
            "of the MAE release, or a timm vit_base_patch16_224 state dict), or set model.vit.pretrained to null "
            "to start from random weights")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which one
        raise CheckpointError(f"cannot read ViT weights {path}: {exc}") from exc
    state = _unwrap_state(obj, str(path))
    mapped, skipped, grid = map_vit_state_dict(state, vit, str(path))
    with torch.no_grad():
        own = vit.state_dict()
        for key, value in mapped.items():
            own[key].copy_(value.to(own[key].dtype))
    from trackers.init_report import note_init

    note_init(vit, "ViT weights (MAE)", path, len(mapped))
    return ViTLoadReport(str(path), sorted(mapped), skipped, grid)
