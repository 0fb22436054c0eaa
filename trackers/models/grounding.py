"""Visual grounding (TransVG, Deng et al., ICCV 2021; paper 004's ref. [6]): the box of the object a sentence names,
on the whole frame, so that the NL setting of a tracker (paper 004, CTRTNL) starts from a predicted first-frame box.

TransVG (§3)::

    F_v = DETR-encoder(ResNet(I))          visual branch: stride-32 features of the 640x640 image, N_v = 20x20
    F_l = BERT(text)                       linguistic branch, N_l = 20 (RefCOCO) tokens
    X = [p_r; W_v F_v; W_l F_l] + P        [REG] token p_r, projections to C_p = 256, learnable positions P
    X' = VL-transformer(X)                 6 encoder layers over the 1 + N_v + N_l tokens
    b = sigmoid(MLP(X'_0))                 normalised (cx, cy, w, h) of the padded square image

Here the visual backbone is the toolkit's ResNet-50 (:func:`trackers.backbones.resnet.resnet50`), whose ``layer3`` /
``layer4`` are dilated (stride 8), and the text encoder is the token-level one of :mod:`asearch.language`
(:class:`~asearch.language.TokenTextEncoder`). Choices (also in the config docstring):

* ``visual_pool``: an average pool after the backbone brings its stride-8 map to TransVG's stride 32 (4; the
  paper's 640 input gives its 20x20 tokens); ``visual_layers``: TransVG's 6 DETR encoder layers on the visual
  tokens (0 in the tiny config).
* The image is letterboxed (long side to ``image_size``, padded right / bottom with the frame's mean colour,
  :func:`asearch.data.grounding.letterbox`), as TransVG's resize-and-pad; the box is normalised by ``image_size``.
* Text padding is masked out of the VL transformer's keys; an item without text is ``[CLS] [SEP]`` with zero
  features (:func:`~asearch.language.zero_missing`), the toolkit's ``language.missing: zero`` at token level.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from asearch.errors import ConfigError
from trackers.heads.transt import MLP
from trackers.registry import RESNET_INIT, ResNetConfig

__all__ = ["GroundingTextConfig", "GroundingModelConfig", "GroundingTrackerConfig", "TransVG",
           "build_grounding_model", "GROUNDING_ENTRY"]


@dataclass
class GroundingTextConfig:
    """The language model (``model.text``): ``encoder`` / ``width`` follow from ``language.encoder`` (leave them
    out); ``trainable``: fine-tuned (TransVG fine-tunes BERT at 1e-5); ``max_length``: tokens with [CLS] / [SEP]
    (TransVG: 20 on RefCOCO)."""

    encoder: Optional[str] = None
    width: Optional[int] = None
    trainable: bool = True
    max_length: int = 20


@dataclass
class GroundingModelConfig:
    """Model section of ``grounding`` (TransVG): input side ``image_size`` (640), the ResNet (``resnet``,
    ``resnet_layers`` 3 or 4), ``visual_pool`` (4: stride 8 -> 32), ``visual_layers`` (DETR encoder layers, 6),
    the language model ``text``, the VL transformer (``d_model`` = C_p 256, ``nhead`` 8, ``vl_layers`` 6,
    ``dim_feedforward`` 2048, ``dropout`` 0.1) and the box MLP (``mlp_layers`` 3)."""

    name: str = "grounding"
    image_size: int = 640
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    resnet_layers: int = 4
    visual_pool: int = 4
    visual_layers: int = 6
    text: GroundingTextConfig = field(default_factory=GroundingTextConfig)
    d_model: int = 256
    nhead: int = 8
    vl_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    mlp_layers: int = 3

    def __post_init__(self) -> None:
        if self.name != "grounding":
            raise ConfigError(f"model.name {self.name!r} is not grounding")
        for key in ("image_size", "visual_pool", "d_model", "nhead", "vl_layers", "dim_feedforward", "mlp_layers"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.resnet_layers not in (3, 4):
            raise ConfigError(f"model.resnet_layers must be 3 or 4, got {self.resnet_layers}")
        if self.visual_layers < 0:
            raise ConfigError(f"model.visual_layers must be >= 0, got {self.visual_layers}")
        if self.d_model % self.nhead:
            raise ConfigError(f"model.nhead ({self.nhead}) must divide model.d_model ({self.d_model})")
        if self.image_size % (8 * self.visual_pool):
            raise ConfigError(f"model.image_size ({self.image_size}) must be a multiple of 8 x model.visual_pool "
                              f"({8 * self.visual_pool})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class GroundingTrackerConfig:
    """A grounding model tracks nothing: it has no tracker section (kept empty for the registry)."""


def _encoder(d: int, nhead: int, layers: int, ffn: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, nhead, ffn, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class TransVG(nn.Module):
    """[REG] token + visual tokens + word tokens through a transformer; the box from the [REG] output.

    ``forward(image B×3×S×S RGB 0..255, language {'ids', 'mask', 'has_text'})`` -> ``{'boxes': B×4}`` normalised
    ``cx, cy, w, h`` in ``(0, 1)`` of the letterboxed image.
    """

    uses_language = True

    def __init__(self, backbone: nn.Module, text: nn.Module, cfg: GroundingModelConfig):
        super().__init__()
        self.image_size = int(cfg.image_size)
        self.backbone = backbone
        self.pool = nn.AvgPool2d(cfg.visual_pool) if cfg.visual_pool > 1 else nn.Identity()
        side = self.image_size // (backbone.stride * cfg.visual_pool)
        self.visual_side = side
        d = int(cfg.d_model)
        self.input_proj = nn.Conv2d(backbone.channels[-1], d, 1)                  # W_v
        self.visual_pos = nn.Parameter(torch.zeros(1, side * side, d))
        self.visual_encoder = (_encoder(d, cfg.nhead, cfg.visual_layers, cfg.dim_feedforward, cfg.dropout)
                               if cfg.visual_layers else None)
        self.text = text
        self.language_dim = int(text.width)
        self.num_words = int(text.max_length)
        self.text_proj = nn.Linear(self.language_dim, d)                          # W_l
        self.reg_token = nn.Parameter(torch.zeros(1, 1, d))                       # p_r
        self.vl_pos = nn.Parameter(torch.zeros(1, 1 + side * side + self.num_words, d))   # P
        self.vl = _encoder(d, cfg.nhead, cfg.vl_layers, cfg.dim_feedforward, cfg.dropout)
        self.box_head = MLP(d, d, 4, cfg.mlp_layers)                              # TransVG's prediction head
        for p in (self.visual_pos, self.reg_token, self.vl_pos):
            nn.init.trunc_normal_(p, std=0.02)

    def tokenize(self, texts: Sequence[str], has_text: torch.Tensor, device: Any = None) -> Dict[str, torch.Tensor]:
        """``{'ids', 'mask', 'has_text'}`` of a batch of texts (``""`` without language), padded to max_length."""
        ids, mask = self.text.tokenize(list(texts), pad_to_max=True, device=device)
        return {"ids": ids, "mask": mask, "has_text": has_text.to(device=ids.device).bool()}

    def visual(self, image: torch.Tensor) -> torch.Tensor:
        """``B×N_v×C_p`` visual tokens (backbone, pool, W_v, positions, optional DETR-style encoder)."""
        if image.shape[-1] != self.image_size or image.shape[-2] != self.image_size:
            raise ConfigError(f"the grounding model takes {self.image_size}x{self.image_size} images, got "
                              f"{tuple(image.shape[-2:])}")
        f = self.input_proj(self.pool(self.backbone(image)[-1]))
        tokens = f.flatten(2).transpose(1, 2) + self.visual_pos
        return tokens if self.visual_encoder is None else self.visual_encoder(tokens)

    def words(self, language: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``B×N_l×C_p`` projected word tokens (zero rows for items without text)."""
        from asearch.language import zero_missing

        tokens, _ = self.text(language["ids"], language["mask"])
        return self.text_proj(zero_missing(tokens, language["has_text"]))

    def forward(self, image: torch.Tensor, language: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Normalised ``cx, cy, w, h`` boxes (class docstring)."""
        v = self.visual(image)
        w = self.words(language)
        b = v.shape[0]
        x = torch.cat([self.reg_token.expand(b, -1, -1), v, w], dim=1)
        x = x + self.vl_pos[:, :x.shape[1]]
        pad = torch.zeros(b, 1 + v.shape[1], dtype=torch.bool, device=x.device)
        key_pad = torch.cat([pad, ~language["mask"].bool().to(x.device)], dim=1)
        out = self.vl(x, src_key_padding_mask=key_pad)
        return {"boxes": self.box_head(out[:, 0]).sigmoid()}


def build_grounding_model(cfg: GroundingModelConfig, pretrained: bool = True, text_config: Any = None) -> TransVG:
    """Build ``grounding``; ``pretrained`` loads ``resnet.pretrained`` and the language model's weights;
    ``text_config``: a ``transformers`` config for a randomly initialised language model (no file)."""
    from trackers.backbones.resnet import resnet50
    from trackers.language_width import build_token_text

    backbone = resnet50(cfg.resnet.width_mult, cfg.resnet.pretrained if pretrained else None,
                        num_layers=cfg.resnet_layers)
    text = build_token_text(cfg.text, "the grounding model", pretrained, text_config)
    return TransVG(backbone, text, cfg)


def _no_tracker(*_: Any, **__: Any) -> Any:
    raise ConfigError("model 'grounding' is a visual grounding model, not a tracker: give it to a tracker with "
                      "asearch track --init language --grounding CKPT")


def _entry():
    from trackers.losses.grounding import GroundingLossConfig
    from trackers.registry import Lazy, ModelEntry

    return ModelEntry(GroundingModelConfig, GroundingLossConfig, GroundingTrackerConfig, build_grounding_model,
                      Lazy("trackers.actors.grounding:GroundingActor"), _no_tracker, "text.width", (RESNET_INIT,),
                      "text.encoder", Lazy("asearch.data.grounding:build_grounding_dataset"))


#: registry entry (``trackers.registry.ENTRIES['grounding']``)
GROUNDING_ENTRY = _entry()
