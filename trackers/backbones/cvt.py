"""CvT (Wu et al., ICCV 2021) as a two-image backbone: convolutional token embedding and depth-wise separable
convolutional projections, with the attention of SATracker's Target Enhance Module (paper 002 §3.1.1-3.1.2).

A stage ``i`` (CvT-21: widths 64 / 192 / 384, depths 1 / 4 / 16, heads 1 / 3 / 6, MLP ratio 4):

* :class:`ConvEmbedding` (CTE, §3.1.1): a ``k×k`` convolution with stride ``s`` (7/4 pad 2, then 3/2 pad 1 twice)
  maps the image or the previous stage's map ``H^{i-1}×W^{i-1}×C^{i-1}`` to ``H^i W^i × C^i`` tokens, then LayerNorm.
* :class:`CvTBlock` (TEM, §3.1.2, Fig. 3): ``x + Attn(LN(x))``, then ``x + MLP(LN(x))``. The template and the
  search tokens are reshaped to their own maps and each goes through the depth-wise separable projections
  (:class:`DWProjection`: depth-wise 3×3 conv + BatchNorm; stride 1 for the queries, 2 for keys and values), then
  through the shared linear projections ``W_q, W_k, W_v``. With ``attention="asymmetric"`` (TEM)::

      Atten_t = Softmax(Q_t K_t^T / sqrt(C)) V_t                       (Eq. 1, first line)
      Atten_s = Softmax(Q_s K_c^T / sqrt(C)) V_c,  K_c = [K_t; K_s], V_c = [V_t; V_s]   (Eq. 1-2)

  the template attends to itself only, the search region to the template and itself. ``attention="self"`` is the
  ablation baseline (setting ①: plain CvT, each image attends to itself only).

Because the template never attends to the search, everything on the template side depends on the template alone:
:meth:`CvTBlock.template` returns its output tokens and its ``K_t, V_t`` (cached once per video), and
:meth:`CvTBlock.search` runs the search side of one frame against them.

Choices where the papers are silent (or where CvT's released form decides):

* Eq. 1-2 write ``Concat(SA_s, CA_s) V_c`` with two softmaxes; read literally, each search query's weights would
  sum to 2. One softmax over the concatenated keys ``K_c`` is used (Eq. 1's ``Softmax(Q_s K^T) V_c`` with ``K`` the
  concatenation, the mixed attention of MixFormer's CvT tracker).
* The scale is CvT's ``C^-1/2`` with ``C`` the stage width (not the head width), so that ImageNet CvT weights see the
  attention they were trained with; the paper's "C denotes the dimension of the key" is read the same way.
* CvT-21's class token (stage 3) and classifier are not used; the stage-3 search map is the tracker's feature.

Weights (:func:`load_cvt_weights`): a local file (``.pth`` / ``.bin`` / ``.safetensors``) or a directory holding
one, in the ``transformers`` ``CvtModel`` / ``CvtForImageClassification`` layout (``cvt.encoder.stages.{i}...``)
or in the layout of Microsoft's CvT release (``stage{i}.patch_embed.proj``, ``stage{i}.blocks.{j}.attn...``).
Nothing is downloaded.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple, Union

import torch
from torch import nn

from asearch.errors import CheckpointError, ConfigError, ModelNotFoundError
from trackers.backbones.vit import DropPath

__all__ = ["ConvEmbedding", "DWProjection", "CvTBlock", "CvTStage", "CvT", "map_cvt_state_dict",
           "load_cvt_weights", "ATTENTION_MODES"]

ATTENTION_MODES = ("asymmetric", "self")

Map = Tuple[torch.Tensor, int, int]  # tokens B×N×C with their map height and width


def to_map(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``B×(h·w)×C`` tokens -> ``B×C×h×w`` map."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``B×C×h×w`` map -> ``B×(h·w)×C`` tokens."""
    return x.flatten(2).transpose(1, 2)


class ConvEmbedding(nn.Module):
    """Convolutional token embedding (CTE): ``Conv(k, stride, pad)`` then LayerNorm over the channels."""

    def __init__(self, in_channels: int, dim: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel, stride, padding)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> Map:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(to_tokens(x)), h, w


class DWProjection(nn.Module):
    """Depth-wise separable convolutional projection of CvT: depth-wise ``k×k`` conv (no bias) + BatchNorm, then
    flatten (the point-wise half is the linear projection that follows, :class:`CvTBlock`)."""

    def __init__(self, dim: int, kernel: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel, stride, kernel // 2, groups=dim, bias=False)
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_tokens(self.bn(self.conv(x)))


class CvTBlock(nn.Module):
    """One TEM (module docstring): convolutional projections, (asymmetric) attention, MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, kv_stride: int = 2,
                 drop_path: float = 0.0, attention: str = "asymmetric"):
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ConfigError(f"attention must be one of {', '.join(ATTENTION_MODES)}, got {attention!r}")
        if dim % heads:
            raise ConfigError(f"CvT stage width {dim} is not divisible by its {heads} heads")
        self.dim, self.heads, self.attention = dim, heads, attention
        self.scale = dim ** -0.5                      # CvT's scale (module docstring)
        self.norm1 = nn.LayerNorm(dim)
        self.conv_q = DWProjection(dim, 3, 1)
        self.conv_k = DWProjection(dim, 3, kv_stride)
        self.conv_v = DWProjection(dim, 3, kv_stride)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.dim // self.heads).transpose(1, 2)

    def _qkv(self, x: torch.Tensor, h: int, w: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = to_map(self.norm1(x), h, w)
        return (self._heads(self.q(self.conv_q(m))), self._heads(self.k(self.conv_k(m))),
                self._heads(self.v(self.conv_v(m))))

    def _finish(self, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(x.shape)
        x = x + self.drop_path(self.proj(out))       # linear layer + residual (§3.1.2)
        return x + self.drop_path(self.fc2(self.act(self.fc1(self.norm2(x)))))   # LN + MLP + residual

    def template(self, z: torch.Tensor, h: int, w: int) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """Template side: ``(output tokens, (K_t, V_t))``; ``Atten_t = Softmax(Q_t K_t^T / sqrt C) V_t`` (Eq. 1)."""
        q, k, v = self._qkv(z, h, w)
        return self._finish(z, q, k, v), (k, v)

    def search(self, x: torch.Tensor, h: int, w: int, kv_t: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Search side of one frame against the template's ``(K_t, V_t)``:
        ``Atten_s = Softmax(Q_s [K_t; K_s]^T / sqrt C) [V_t; V_s]`` (Eq. 1-2), or self-attention only (``self``)."""
        q, k, v = self._qkv(x, h, w)
        if self.attention == "asymmetric":
            k, v = torch.cat([kv_t[0], k], dim=2), torch.cat([kv_t[1], v], dim=2)   # K_c, V_c
        return self._finish(x, q, k, v)


class CvTStage(nn.Module):
    """CTE + ``depth`` TEM blocks; template and search maps get their own CTE pass with shared weights."""

    def __init__(self, in_channels: int, dim: int, depth: int, heads: int, kernel: int, stride: int, padding: int,
                 mlp_ratio: float = 4.0, drop_path: Sequence[float] = (), attention: str = "asymmetric"):
        super().__init__()
        rates = list(drop_path) or [0.0] * depth
        self.embed = ConvEmbedding(in_channels, dim, kernel, stride, padding)
        self.blocks = nn.ModuleList([CvTBlock(dim, heads, mlp_ratio, drop_path=rates[j], attention=attention)
                                     for j in range(depth)])


class CvT(nn.Module):
    """The stages of a CvT (defaults: CvT-21). The SATracker runs them stage by stage (SAM between stages), so this
    module has no ``forward``; :meth:`template_stage` / :meth:`search_stage` run one stage on one side."""

    def __init__(self, dims: Sequence[int] = (64, 192, 384), depths: Sequence[int] = (1, 4, 16),
                 heads: Sequence[int] = (1, 3, 6), kernels: Sequence[int] = (7, 3, 3),
                 strides: Sequence[int] = (4, 2, 2), paddings: Sequence[int] = (2, 1, 1), mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, attention: str = "asymmetric"):
        super().__init__()
        n = len(dims)
        if not all(len(s) == n for s in (depths, heads, kernels, strides, paddings)):
            raise ConfigError(f"CvT: dims, depths, heads, kernels, strides and paddings need one value per stage "
                              f"({n}), got {list(depths)}, {list(heads)}, {list(kernels)}, {list(strides)}, "
                              f"{list(paddings)}")
        total = sum(depths)
        # choice: stochastic depth rising linearly over all blocks to drop_path (CvT-21 rises over stage 3 only)
        rates = [drop_path * j / max(total - 1, 1) for j in range(total)]
        self.dims, self.depths = list(dims), list(depths)
        self.stride = 1
        for s in strides:
            self.stride *= s
        stages, start, prev = [], 0, 3
        for i in range(n):
            stages.append(CvTStage(prev, dims[i], depths[i], heads[i], kernels[i], strides[i], paddings[i],
                                   mlp_ratio, rates[start:start + depths[i]], attention))
            start, prev = start + depths[i], dims[i]
        self.stages = nn.ModuleList(stages)

    def template_stage(self, i: int, z: torch.Tensor) -> Tuple[Map, List[Tuple[torch.Tensor, torch.Tensor]]]:
        """Stage ``i`` on the template image / map: ``((tokens, h, w), [(K_t, V_t) of each block])``."""
        stage = self.stages[i]
        tokens, h, w = stage.embed(z)
        kvs = []
        for block in stage.blocks:
            tokens, kv = block.template(tokens, h, w)
            kvs.append(kv)
        return (tokens, h, w), kvs

    def search_stage(self, i: int, x: torch.Tensor, kvs: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> Map:
        """Stage ``i`` on the search image / map against the template's cached keys and values."""
        stage = self.stages[i]
        tokens, h, w = stage.embed(x)
        for block, kv in zip(stage.blocks, kvs):
            tokens = block.search(tokens, h, w, kv)
        return tokens, h, w


# ----------------------------------------------------------------------------------------------------------------------
# weights
_HF_RULES = [  # transformers CvT layout -> this module (after the leading "cvt." / "encoder." are removed)
    (r"^stages\.(\d+)\.embedding\.convolution_embeddings\.projection\.", r"stages.\1.embed.proj."),
    (r"^stages\.(\d+)\.embedding\.convolution_embeddings\.normalization\.", r"stages.\1.embed.norm."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.attention\.attention\.convolution_projection_(query|key|value)"
     r"\.convolution_projection\.convolution\.", r"stages.\1.blocks.\2.conv_\3.conv."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.attention\.attention\.convolution_projection_(query|key|value)"
     r"\.convolution_projection\.normalization\.", r"stages.\1.blocks.\2.conv_\3.bn."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.attention\.attention\.projection_(query|key|value)\.",
     r"stages.\1.blocks.\2.\3."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.attention\.output\.dense\.", r"stages.\1.blocks.\2.proj."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.intermediate\.dense\.", r"stages.\1.blocks.\2.fc1."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.output\.dense\.", r"stages.\1.blocks.\2.fc2."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.layernorm_before\.", r"stages.\1.blocks.\2.norm1."),
    (r"^stages\.(\d+)\.layers\.(\d+)\.layernorm_after\.", r"stages.\1.blocks.\2.norm2."),
]
_MS_RULES = [  # Microsoft's CvT release layout -> this module
    (r"^stage(\d+)\.patch_embed\.proj\.", r"stages.\1.embed.proj."),
    (r"^stage(\d+)\.patch_embed\.norm\.", r"stages.\1.embed.norm."),
    (r"^stage(\d+)\.blocks\.(\d+)\.attn\.conv_proj_(q|k|v)\.conv\.", r"stages.\1.blocks.\2.conv_\3.conv."),
    (r"^stage(\d+)\.blocks\.(\d+)\.attn\.conv_proj_(q|k|v)\.bn\.", r"stages.\1.blocks.\2.conv_\3.bn."),
    (r"^stage(\d+)\.blocks\.(\d+)\.attn\.proj_(q|k|v)\.", r"stages.\1.blocks.\2.\3."),
    (r"^stage(\d+)\.blocks\.(\d+)\.attn\.proj\.", r"stages.\1.blocks.\2.proj."),
    (r"^stage(\d+)\.blocks\.(\d+)\.mlp\.fc(1|2)\.", r"stages.\1.blocks.\2.fc\3."),
    (r"^stage(\d+)\.blocks\.(\d+)\.norm(1|2)\.", r"stages.\1.blocks.\2.norm\3."),
]
_QKV = {"query": "q", "key": "k", "value": "v"}
#: file keys with no place in the tracker's backbone: class token, final norm, classifier
_SKIPPED = re.compile(r"(^|\.)(cls_token|classifier|head|norm|layernorm)(\.|$)")


def map_cvt_state_dict(state: Mapping[str, torch.Tensor], cvt: CvT, source: str = "<state dict>"
                       ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Map a ``transformers`` or Microsoft CvT state dict onto ``cvt``: ``(new state, skipped file keys)``.

    A model key the file lacks, a file key with no place in ``cvt`` or a shape mismatch raise
    :class:`CheckpointError` naming the key (a CvT-13 file for a CvT-21 model fails on the first missing block).
    """
    own = cvt.state_dict()
    mapped: Dict[str, torch.Tensor] = {}
    skipped: List[str] = []
    for key, value in state.items():
        k = re.sub(r"^(module\.|backbone\.)", "", key)
        k = re.sub(r"^(cvt\.)?(encoder\.)?", "", k)
        new = None
        for pattern, repl in _HF_RULES + _MS_RULES:
            if re.match(pattern, k):
                new = re.sub(pattern, repl, k)
                new = re.sub(r"conv_(query|key|value)\.", lambda m: f"conv_{_QKV[m.group(1)]}.", new)
                new = re.sub(r"\.blocks\.(\d+)\.(query|key|value)\.",
                             lambda m: f".blocks.{m.group(1)}.{_QKV[m.group(2)]}.", new)
                break
        if new is None:
            if _SKIPPED.search(k):
                skipped.append(key)
                continue
            raise CheckpointError(f"{source}: key '{key}' has no place in the CvT backbone")
        if new not in own:
            raise CheckpointError(f"{source}: key '{key}' (as '{new}') has no place in the CvT backbone "
                                  f"(depths {cvt.depths}, dims {cvt.dims})")
        if tuple(value.shape) != tuple(own[new].shape):
            raise CheckpointError(f"{source}: key '{key}' has shape {tuple(value.shape)} in the file, "
                                  f"{tuple(own[new].shape)} in the model ('{new}')")
        mapped[new] = value
    missing = [k for k in own if k not in mapped]
    if missing:
        raise CheckpointError(f"{source}: key '{missing[0]}' of the CvT backbone is missing from the file "
                              f"({len(missing)} missing; a CvT-21 file is needed for depths {cvt.depths})")
    return mapped, skipped


def _weights_file(path: Path) -> Path:
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                return path / name
        found = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pth", ".pt"))
        if len(found) == 1:
            return found[0]
        raise ModelNotFoundError(f"CvT weights: the directory {path} holds no model.safetensors / pytorch_model.bin "
                                 "(or more than one weight file): put the CvT-21 ImageNet weights there")
    return path


def load_cvt_weights(cvt: CvT, path: Union[str, os.PathLike]) -> int:
    """Load local CvT weights into ``cvt`` (module docstring); returns the number of tensors loaded.

    A missing file raises :class:`ModelNotFoundError` saying what to put where. Nothing is downloaded.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFoundError(
            f"CvT weights not found at {path}: put the ImageNet CvT-21 weights there (the directory of the "
            "transformers model microsoft/cvt-21 with its model.safetensors or pytorch_model.bin, or the "
            "CvT-21-224x224-IN-1k.pth file of Microsoft's CvT release), or set model.cvt.pretrained to null to start "
            "from random weights")
    file = _weights_file(path)
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which one
        raise CheckpointError(f"cannot read CvT weights {file}: {exc}") from exc
    for wrapper in ("model", "state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    state = {k: v for k, v in state.items() if torch.is_tensor(v)}
    mapped, _ = map_cvt_state_dict(state, cvt, str(file))
    cvt.load_state_dict(mapped, strict=True)
    return len(mapped)
