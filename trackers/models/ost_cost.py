"""Whole-model cost of VLT_OST / OSTrack: the fixed ViT and center head, for the architecture JSON's ``model_cost``.

The ``vlt_ost`` search space's exact cost (:mod:`search_spaces.cost`) counts the searched mixers only; this module
counts the fixed rest analytically, so ``asearch export`` can report the whole network.

Parameters (exact, equal to ``sum(p.numel())`` of the built modules; BatchNorm running statistics are buffers):

* ViT: ``patch_embed.proj`` ``3·P²·C + C``, ``pos_embed_z`` ``Nz·C``, ``pos_embed_x`` ``Nx·C``; per block ``norm1``
  and ``norm2`` ``2C`` each, ``qkv`` ``3C² (+3C bias)``, ``proj`` ``C² + C``, ``fc1`` ``C·H + H``, ``fc2`` ``H·C + C``
  (``H = int(C·mlp_ratio)``); final ``norm`` ``2C``;
* center head: three towers of 3×3 convs ``C → c → c/2 → c/4 → c/8`` (bias, BN with ``2·width`` affine params) and a
  1×1 output conv to 1, 2, 2 channels.

FLOPs are multiply-accumulates (MACs), counted as the rest of the toolkit counts them (conv and linear layers; no
bias, LayerNorm, softmax, GELU or BN), plus the two attention matmuls of every block:

* patch embedding: ``(Nz + Nx)·C·3·P²``;
* each of the ``depth`` blocks over ``N = Nz + Nx`` tokens: ``qkv`` ``N·C·3C``, ``q·kᵀ`` ``N²·C``, ``attn·v``
  ``N²·C``, ``proj`` ``N·C²``, MLP ``2·N·C·H`` (independent of the number of heads);
* center head on the ``Nx`` search cells: ``Nx · Σ (in · out · k²)`` over its convs.

**Without candidate elimination**: every block is counted at the full token count, an upper bound. CE (the blocks of
``vit.ce_layers``, keep ratio ``vit.ce_keep_ratio``) removes search tokens after the attention of each CE block, so
the MLP of a CE block and every later block run on fewer tokens and the real count is lower. The training-only
contrastive logit scale (one parameter) is left out.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

__all__ = ["vit_cost", "center_head_cost", "fixed_cost", "model_cost", "model_cost_function", "model_cost_of_checkpoint",
           "MODEL_COST_NOTE"]

#: (params, MACs)
Cost = Tuple[int, int]

MODEL_COST_NOTE = ("whole model = fixed ViT (patch embedding, position embeddings, all blocks over template+search "
                   "tokens, final norm) + center head + searched mixers (flops/params at the top level); FLOPs are "
                   "MACs counted without candidate elimination (an upper bound: CE removes search tokens)")


def vit_cost(patch_size: int = 16, dim: int = 768, depth: int = 12, mlp_ratio: float = 4.0,
             template_size: int = 128, search_size: int = 256, qkv_bias: bool = True) -> Cost:
    """Parameters and MACs of :class:`trackers.backbones.vit.VisionTransformerCE` (module docstring), no CE."""
    c, hidden = int(dim), int(dim * mlp_ratio)
    n_z, n_x = (template_size // patch_size) ** 2, (search_size // patch_size) ** 2
    n = n_z + n_x
    embed_p = 3 * patch_size ** 2 * c + c + (n_z + n_x) * c
    block_p = 2 * c + 3 * c * c + (3 * c if qkv_bias else 0) + c * c + c + 2 * c + c * hidden + hidden + hidden * c + c
    params = embed_p + depth * block_p + 2 * c
    embed_m = n * c * 3 * patch_size ** 2
    block_m = n * c * 3 * c + 2 * n * n * c + n * c * c + 2 * n * c * hidden
    return params, embed_m + depth * block_m


def center_head_cost(in_channels: int = 768, channels: int = 256, grid: int = 16) -> Cost:
    """Parameters and MACs of :class:`trackers.heads.center.CenterHead` on a ``grid``×``grid`` search map."""
    widths = [in_channels, channels, channels // 2, channels // 4, channels // 8]
    params = macs = 0
    for out in (1, 2, 2):
        for a, b in zip(widths[:-1], widths[1:]):
            params += a * b * 9 + b + 2 * b
            macs += grid * grid * a * b * 9
        params += widths[-1] * out + out
        macs += grid * grid * widths[-1] * out
    return params, macs


def fixed_cost(cfg: Any) -> Dict[str, int]:
    """``{'vit_flops', 'vit_params', 'head_flops', 'head_params', 'fixed_flops', 'fixed_params'}`` of an
    :class:`~trackers.models.ostrack.OSTrackModelConfig` (everything but the searched mixers)."""
    v = cfg.vit
    vp, vm = vit_cost(v.patch_size, v.dim, v.depth, v.mlp_ratio, cfg.template_size, cfg.search_size)
    hp, hm = center_head_cost(v.dim, cfg.head.channels, cfg.search_size // v.patch_size)
    return {"vit_flops": vm, "vit_params": vp, "head_flops": hm, "head_params": hp,
            "fixed_flops": vm + hm, "fixed_params": vp + hp}


def model_cost(cfg: Any, mixer_flops: int, mixer_params: int) -> Dict[str, Any]:
    """The architecture JSON's ``model_cost``: whole-model ``flops``/``params`` = fixed part + the mixers' cost."""
    f = fixed_cost(cfg)
    return {"flops": f["fixed_flops"] + int(mixer_flops), "params": f["fixed_params"] + int(mixer_params),
            "fixed_flops": f["fixed_flops"], "fixed_params": f["fixed_params"], "note": MODEL_COST_NOTE}


def model_cost_function(ckpt: Union[str, Mapping[str, Any]]
                        ) -> Optional[Callable[[int, int], Dict[str, Any]]]:
    """``(mixer_flops, mixer_params) -> model_cost`` for a supernet checkpoint (path or loaded dict), its model
    section read once; ``None`` unless the model is ``vlt_ost`` (the CNN spaces' cost already covers the whole
    backbone). ``asearch search`` gives it to the engine, so ``best.json`` carries ``model_cost`` too."""
    from trackers.models.ostrack import OSTrackModelConfig
    from trackers.registry import model_config_from_checkpoint

    source = "<checkpoint>"
    if not isinstance(ckpt, Mapping):
        from asearch.io import load_torch

        source, ckpt = str(ckpt), load_torch(ckpt)
    cfg = model_config_from_checkpoint(ckpt, source)
    if not isinstance(cfg, OSTrackModelConfig) or cfg.name != "vlt_ost":
        return None
    return lambda flops, params: model_cost(cfg, flops, params)


def model_cost_of_checkpoint(ckpt: Union[str, Mapping[str, Any]], mixer_flops: int, mixer_params: int
                             ) -> Optional[Dict[str, Any]]:
    """:func:`model_cost` from a supernet checkpoint's model section (path or loaded dict); ``None`` unless the
    model is ``vlt_ost``."""
    fn = model_cost_function(ckpt)
    return None if fn is None else fn(mixer_flops, mixer_params)
