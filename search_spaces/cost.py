"""Exact size and cost (parameters, FLOPs) of a path through the VLT supernet.

FLOPs here are multiply-accumulates (MACs) of ``Conv*d`` and ``Linear`` layers, as SPOS counts them; biases,
BatchNorm, activations, the channel shuffle and the Hadamard product of the ModaMixer are not counted.

* Conv: ``MACs = output elements × in_channels / groups × kernel volume``.
* Linear: ``MACs = in_features × out_features × rows`` (rows = every leading dimension of the input).

What a tracking path contains (the supernet builds exactly this; :func:`genome_cost` sums its pieces):

* stem ``Conv2d(3, stem, 3, stride 2, pad 1, bias=False)`` + BN + ReLU;
* stage ``s`` (1-based) with ``C_s`` channels: layer 0 is ``make_choice_block(g, C_{s-1}, C_s, stride, project=True)``
  (stride 2 for stages 1-2, 1 after: total stride 8), the other layers ``make_choice_block(g, C_s, C_s, 1)``; the
  last layer of the stage is the ``Block(f_v)`` of the ModaMixer (paper 000, Eq. 1)
  ``f_m = Block_mixer(Linear_s(f_l) ⊙ f_v) + Block_last(f_v)``, so it costs what an ordinary layer costs;
* per stage and branch: ``Block_mixer = make_choice_block(g_mixer, C_s, C_s, 1)`` and
  ``Linear_s = nn.Linear(language_dim, C_s)`` (with bias) applied once to the 1×d language vector.

The VLT_OST variant counts the mixers only (the fixed ViT is excluded): ``Block_mixer`` with ``C = vit_dim`` on the
token grid (``size // patch_size``) and ``Linear(language_dim, vit_dim)``.

Spatial sizes follow ``out = floor((H + 2p - k) / s) + 1``: template 127 → 64 → 32 → 16 → 16 → 16, search
255 → 128 → 64 → 32 → 32 → 32. Per-choice costs come from instantiating each distinct block once on the ``meta``
device and counting it with :func:`count_module` (exact by construction); the table is cached per space.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from supernets.blocks import make_choice_block, make_divisible

if TYPE_CHECKING:  # pragma: no cover
    from search_spaces.genome import Genome
    from search_spaces.vlt import VLTSpace

__all__ = ["BRANCHES", "CostTable", "block_cost", "build_cost_table", "conv_output_size", "count_module",
           "genome_cost", "linear_cost", "stage_strides", "stem_cost"]

BRANCHES: Tuple[str, str] = ("template", "search")
#: (params, macs)
Cost = Tuple[int, int]


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output side of a convolution: ``floor((H + 2p - k) / s) + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def stage_strides(num_stages: int) -> Tuple[int, ...]:
    """Stride of the first layer of each stage for tracking (total stride 8): 2 for stages 1-2, then 1."""
    return tuple(2 if s < 2 else 1 for s in range(num_stages))


# ----- counting a module with hooks ---------------------------------------------------------------------------------
def _conv_macs(module: nn.modules.conv._ConvNd, inputs: Tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    kernel = 1
    for k in module.kernel_size:
        kernel *= int(k)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        # every input element is scattered to out_channels/groups × kernel outputs
        return inputs[0].numel() * (module.out_channels // module.groups) * kernel
    return output.numel() * (module.in_channels // module.groups) * kernel


def _linear_macs(module: nn.Linear, output: torch.Tensor) -> int:
    rows = output.numel() // module.out_features if module.out_features else 0
    return rows * module.in_features * module.out_features


def count_module(module: nn.Module, inputs: Union[torch.Tensor, Sequence[Any], Mapping[str, Any]]) -> Tuple[int, int]:
    """Count ``(parameters, MACs)`` of ``module`` for one forward pass on ``inputs``.

    ``inputs`` is a tensor, a tuple/list of positional arguments or a mapping of keyword arguments; pass batch-1
    inputs to get per-sample MACs. Parameters are all distinct parameters of the module (shared ones once). MACs are
    collected with forward hooks on every ``nn.Conv1d/2d/3d``, transposed conv and ``nn.Linear`` (and subclasses),
    so a module called twice is counted twice; functional calls (``F.conv2d``) are not seen. The forward runs under
    ``torch.no_grad()`` in eval mode (no running-statistics update); training flags are restored afterwards. Works
    on the ``meta`` device.
    """
    total = [0]

    def conv_hook(mod: nn.Module, inp: Tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        total[0] += _conv_macs(mod, inp, out)  # type: ignore[arg-type]

    def linear_hook(mod: nn.Module, inp: Tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        total[0] += _linear_macs(mod, out)  # type: ignore[arg-type]

    handles = []
    modes = {m: m.training for m in module.modules()}
    try:
        for m in module.modules():
            if isinstance(m, nn.modules.conv._ConvNd):
                handles.append(m.register_forward_hook(conv_hook))
            elif isinstance(m, nn.Linear):
                handles.append(m.register_forward_hook(linear_hook))
        module.eval()
        with torch.no_grad():
            if isinstance(inputs, torch.Tensor):
                module(inputs)
            elif isinstance(inputs, Mapping):
                module(**inputs)
            else:
                module(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    params = sum(p.numel() for p in module.parameters())
    return int(params), int(total[0])


# ----- per-piece costs ------------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def block_cost(choice: int, inp: int, oup: int, stride: int, project: bool, size: int,
               affine: bool = False) -> Cost:
    """``(params, MACs)`` of ``make_choice_block(choice, inp, oup, stride, project, affine)`` on a ``size``² input.

    The block is instantiated once on the ``meta`` device (no memory, no arithmetic) and counted with hooks.
    """
    with torch.device("meta"):
        block = make_choice_block(choice, inp, oup, stride, project, affine)
        x = torch.empty(1, inp, size, size)
    return count_module(block, x)


def stem_cost(out_channels: int, size: int, in_channels: int = 3, affine: bool = False) -> Tuple[int, int, int]:
    """``(params, MACs, output side)`` of the stem ``Conv2d(in, out, 3, 2, 1, bias=False)`` + BN + ReLU."""
    out = conv_output_size(size, 3, 2, 1)
    params = out_channels * in_channels * 9 + (2 * out_channels if affine else 0)
    return params, out * out * out_channels * in_channels * 9, out


def linear_cost(in_features: int, out_features: int, bias: bool = True, rows: int = 1) -> Cost:
    """``(params, MACs)`` of ``nn.Linear(in_features, out_features, bias)`` applied to ``rows`` vectors."""
    return in_features * out_features + (out_features if bias else 0), rows * in_features * out_features


# ----- the table for one space ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostTable:
    """Per-piece costs of one space at its input sizes; every entry is ``(params, MACs)``.

    ``stem[branch]``; ``backbone[branch][layer][choice]`` (layers in genome order); ``mixer[branch][stage][choice]``
    (the searched ``Block_mixer``); ``linear[stage]`` (``Linear_s``, same in both branches); ``sizes[branch]`` the
    feature side after the stem and after each stage; ``channels`` the stem and stage widths.
    """

    variant: str
    sizes: Dict[str, Tuple[int, ...]]
    channels: Tuple[int, ...]
    stem: Dict[str, Cost]
    backbone: Dict[str, Tuple[Tuple[Cost, ...], ...]]
    mixer: Dict[str, Tuple[Tuple[Cost, ...], ...]]
    linear: Tuple[Cost, ...]


def _space_key(space: "VLTSpace") -> Tuple[Any, ...]:
    return (space.variant, float(space.width_mult), tuple(space.stage_repeats), tuple(space.stage_channels),
            int(space.stem_channels), int(space.template_size), int(space.search_size), int(space.language_dim),
            int(space.patch_size), int(space.vit_dim))


def build_cost_table(space: "VLTSpace", affine: bool = False) -> CostTable:
    """The cost table of ``space`` (cached per space configuration and ``affine``)."""
    return _build_cost_table(_space_key(space), bool(affine))


@lru_cache(maxsize=32)
def _build_cost_table(key: Tuple[Any, ...], affine: bool) -> CostTable:
    (variant, width, repeats, stage_channels, stem_channels, template_size, search_size, language_dim,
     patch_size, vit_dim) = key
    input_sizes = {"template": template_size, "search": search_size}
    num_stages = len(repeats)
    if variant == "ost":
        grid = {b: input_sizes[b] // patch_size for b in BRANCHES}
        mixer = {b: tuple(tuple(block_cost(g, vit_dim, vit_dim, 1, False, grid[b], affine) for g in range(4))
                          for _ in range(num_stages)) for b in BRANCHES}
        return CostTable(variant, {b: (grid[b],) * num_stages for b in BRANCHES}, (vit_dim,) * num_stages,
                         {b: (0, 0) for b in BRANCHES}, {b: () for b in BRANCHES}, mixer,
                         tuple(linear_cost(language_dim, vit_dim) for _ in range(num_stages)))

    stem_c = make_divisible(stem_channels * width)
    chans = [stem_c] + [make_divisible(c * width) for c in stage_channels]
    strides = stage_strides(num_stages)
    sizes: Dict[str, Tuple[int, ...]] = {}
    stem: Dict[str, Cost] = {}
    backbone: Dict[str, Tuple[Tuple[Cost, ...], ...]] = {}
    mixer: Dict[str, Tuple[Tuple[Cost, ...], ...]] = {}
    for b in BRANCHES:
        p, m, side = stem_cost(stem_c, input_sizes[b], affine=affine)
        stem[b] = (p, m)
        side_list = [side]
        layers = []
        mixers = []
        for s in range(num_stages):
            c_in, c_out = chans[s], chans[s + 1]
            first = tuple(block_cost(g, c_in, c_out, strides[s], True, side, affine) for g in range(4))
            side = conv_output_size(side, 3, strides[s], 1)
            side_list.append(side)
            inner = tuple(block_cost(g, c_out, c_out, 1, False, side, affine) for g in range(4))
            layers.append(first)
            layers.extend([inner] * (repeats[s] - 1))  # the last one is the ModaMixer's Block(f_v): same cost
            mixers.append(inner)  # Block_mixer: the same (C_s -> C_s, stride 1) block at the stage's output side
        sizes[b] = tuple(side_list)
        backbone[b] = tuple(layers)
        mixer[b] = tuple(mixers)
    linear = tuple(linear_cost(language_dim, c) for c in chans[1:])
    return CostTable(variant, sizes, tuple(chans), stem, backbone, mixer, linear)


def genome_cost(space: "VLTSpace", genome: "Genome", shared_branches: Optional[bool] = None,
                affine: bool = False) -> Dict[str, int]:
    """Exact parameters and FLOPs (MACs) of ``genome`` in ``space`` at its template/search sizes.

    Returns ``flops_template``, ``flops_search``, ``params_template``, ``params_search`` (everything each branch
    runs: stem, backbone layers, mixer blocks, ``Linear_s``), ``flops`` (their sum) and ``params`` of the whole
    model. With ``shared_branches`` (default: the space's setting) both branches use one supernet, so the stem and
    each backbone layer where both branches pick the same choice are counted once; mixer blocks and ``Linear_s``
    are always per branch. ``affine=True`` counts 2C BatchNorm parameters per BN (standalone nets).
    """
    table = build_cost_table(space, affine)
    shared = space.shared_branches if shared_branches is None else bool(shared_branches)
    genes = {"template": genome.template, "search": genome.search}
    mixers = {"template": genome.template_mixer, "search": genome.search_mixer}
    out: Dict[str, int] = {}
    for b in BRANCHES:
        params, flops = table.stem[b]
        for layer, g in enumerate(genes[b]):
            p, m = table.backbone[b][layer][g]
            params, flops = params + p, flops + m
        for stage, g in enumerate(mixers[b]):
            p, m = table.mixer[b][stage][g]
            lp, lm = table.linear[stage]
            params, flops = params + p + lp, flops + m + lm
        out[f"params_{b}"], out[f"flops_{b}"] = params, flops
    params = out["params_template"] + out["params_search"]
    if shared and table.variant != "ost":
        params -= table.stem["search"][0]
        for layer, (gt, gs) in enumerate(zip(genome.template, genome.search)):
            if gt == gs:
                params -= table.backbone["search"][layer][gs][0]
    out["params"] = params
    out["flops"] = out["flops_template"] + out["flops_search"]
    return {k: out[k] for k in ("flops", "params", "flops_template", "flops_search", "params_template",
                                "params_search")}
