"""SATracker (paper 002, Ge et al.): the Synchronous Learning Backbone with a plain corner head.

Inputs: a template crop (128), a search crop (320) and the video's sentence (at most 30 tokens with ``[CLS]`` and
``[SEP]``). Stage ``i = 1, 2, 3`` (Table 1; Fig. 2)::

    X_t^i, X_s^i = CTE_i(X_t^{i-1}), CTE_i(X_s^{i-1})         convolutional token embedding (§3.1.1)
    X_t^i, X_s^i = TEM_i^{×d_i}(X_t^i, X_s^i)                 asymmetric attention (Eq. 1-2), d = 1 / 4 / 16
    T^i          = BERT_i(T^{i-1})                             BERT layers [0], [1-4], [5-11]
    X_s^i, T^i   = SAM_i(X_t^i, X_s^i, T^i)                    text-guided channel selector + text update (Eq. 3)

with :class:`~trackers.backbones.cvt.CvT` (CvT-21), :class:`~asearch.language.TokenTextEncoder` (BERT-base) and
:class:`~trackers.models.satracker_blocks.SAM`; then the stage-3 search map goes into the corner head
(:class:`~trackers.heads.corner.CornerHead`, §3.3). For the dense matching loss (§3.2) the model also returns::

    score = upsampling(X_s^3 T^3^T)                            (Eq. 4), X_s^3 and T^3 L2-normalised per channel

Choices where the paper is silent (each also in the docstrings below):

* The template never attends to the search (TEM) and SAM leaves the template unchanged, so the template side of
  every stage, the text stream and SAM's channel selectors depend only on the template and the text:
  :meth:`SATracker.template` computes them once per video; :meth:`SATracker.track` runs the search side per frame.
* ``T^3`` in Eq. 4 is one vector per sentence: the mean of the real (unmasked) words of the stage-3 text after
  SAM's update, mapped ``D -> C`` by a linear layer (``match_proj``; ``X_s^3`` has C = 384 channels, ``T^3``
  D = 768). The upsampling is bilinear from the 20×20 map to ``match_size`` (40×40).
* Pixels are ImageNet-normalised RGB (CvT's input).
* Items without text (``language.missing`` ``zero`` / ``template``) are tokenised as ``[CLS] [SEP]`` and their
  text tokens are set to zero after every BERT stage and every text update (:func:`~asearch.language.zero_missing`);
  SAM then still gates the search map, with the selector of an empty text (a constant). ``template`` has no
  substitute of its own (the template already enters every SAM), so it acts as ``zero``; ``attribute`` encodes the
  fallback words as the sentence. Such items leave the dense matching loss (``match_valid``).
* ``text.stages`` gives the BERT layers per stage (paper: 1 / 4 / 7); a language model with more layers drops the
  rest (the tiny MiniLM: 1 / 1 / 1 of its 6).
* Ablations (Table 4): ``sam: false`` is setting ② (TEM only, no language, no DM loss); setting ③ is the paper
  model with ``loss.dm_weight: 0``; setting ① is ``cvt.attention: self``, ``sam: false`` and ``neck.enabled: true``:
  TransT's feature fusion network (4 ECA/CFA layers, :class:`~trackers.heads.transt.FeatureFusionNetwork`) between
  the stage-3 maps and the corner head, after a 1×1 projection to its width (256) with DETR's sine positions, as
  TransT; its template tokens are computed once per video like the rest of the template side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from asearch.errors import ConfigError
from supernets.pixels import PixelNormalise
from trackers.backbones.cvt import ATTENTION_MODES, CvT, load_cvt_weights, to_map, to_tokens
from trackers.heads.corner import CornerHead
from trackers.models.satracker_blocks import SAM

__all__ = ["CvTConfig", "SATrackerTextConfig", "CornerHeadConfig", "FusionNeckConfig", "SATrackerModelConfig", "SynchronousBackbone",
           "SATracker", "build_satracker_model", "SATRACKER_ENTRY"]


@dataclass
class CvTConfig:
    """The CvT backbone (``model.cvt``; defaults CvT-21). ``attention``: ``asymmetric`` (TEM) or ``self`` (the
    ablation baseline); ``pretrained``: a local CvT-21 file or directory (``transformers`` or Microsoft layout),
    ``null``: random init."""

    dims: List[int] = field(default_factory=lambda: [64, 192, 384])
    depths: List[int] = field(default_factory=lambda: [1, 4, 16])
    heads: List[int] = field(default_factory=lambda: [1, 3, 6])
    kernels: List[int] = field(default_factory=lambda: [7, 3, 3])
    strides: List[int] = field(default_factory=lambda: [4, 2, 2])
    paddings: List[int] = field(default_factory=lambda: [2, 1, 1])
    mlp_ratio: float = 4.0
    drop_path: float = 0.1
    attention: str = "asymmetric"
    pretrained: Optional[str] = None


@dataclass
class SATrackerTextConfig:
    """The language model (``model.text``). ``encoder`` and ``width`` follow from ``language.encoder`` (leave them
    out); ``trainable``: fine-tuned (the paper trains the whole backbone at 1e-5); ``max_length``: 30 tokens with
    ``[CLS]`` / ``[SEP]``; ``stages``: BERT layers per stage (1 / 4 / 7)."""

    encoder: Optional[str] = None
    width: Optional[int] = None
    trainable: bool = True
    max_length: int = 30
    stages: List[int] = field(default_factory=lambda: [1, 4, 7])


@dataclass
class CornerHeadConfig:
    """STARK's corner head (``model.head``): width of the first conv of each tower (then /2, /4, /8)."""

    channels: int = 256


@dataclass
class FusionNeckConfig:
    """The ablation baseline's TransT neck (``model.neck``, setting ①; off in SATracker): width, heads, fusion
    layers, FFN width and dropout of TransT's feature fusion network."""

    enabled: bool = False
    d_model: int = 256
    nhead: int = 8
    num_layers: int = 4
    dim_feedforward: int = 2048
    dropout: float = 0.1


@dataclass
class SATrackerModelConfig:
    """Model section of ``satracker`` (module docstring)."""

    name: str = "satracker"
    template_size: int = 128
    search_size: int = 320
    cvt: CvTConfig = field(default_factory=CvTConfig)
    text: SATrackerTextConfig = field(default_factory=SATrackerTextConfig)
    head: CornerHeadConfig = field(default_factory=CornerHeadConfig)
    sam: bool = True
    match_size: int = 40
    neck: FusionNeckConfig = field(default_factory=FusionNeckConfig)

    def __post_init__(self) -> None:
        if self.name != "satracker":
            raise ConfigError(f"model.name {self.name!r} is not satracker")
        if self.cvt.attention not in ATTENTION_MODES:
            raise ConfigError(f"model.cvt.attention must be one of {', '.join(ATTENTION_MODES)}, "
                              f"got {self.cvt.attention!r}")
        if len(self.text.stages) != len(self.cvt.dims) or min(self.text.stages) < 1:
            raise ConfigError(f"model.text.stages needs one positive count of language layers per CvT stage "
                              f"({len(self.cvt.dims)}), got {self.text.stages}")
        stride = 1
        for s in self.cvt.strides:
            stride *= s
        for key in ("template_size", "search_size"):
            if getattr(self, key) % stride:
                raise ConfigError(f"model.{key} ({getattr(self, key)}) must be a multiple of the CvT's stride "
                                  f"{stride}")
        if self.match_size < 1:
            raise ConfigError(f"model.match_size must be >= 1, got {self.match_size}")


class SynchronousBackbone(nn.Module):
    """The Synchronous Learning Backbone's parts under one name: the CvT (``cvt``), the language model (``text``)
    and the SAMs (``sam``; both ``None`` in the vision-only ablation), so that ``lr_mult: {backbone: 0.1}`` is the
    paper's "learning rate for backbone" (1e-5 against the head's 1e-4). The stage-by-stage order lives in
    :class:`SATracker`."""

    def __init__(self, cvt: CvT, text: Optional[nn.Module], sam: Optional[nn.ModuleList]):
        super().__init__()
        self.cvt, self.text, self.sam = cvt, text, sam


class SATracker(nn.Module):
    """The Synchronous Learning Backbone + corner head (module docstring).

    Args:
        backbone: the CvT; its stage ``i`` holds ``CTE_i`` and the TEMs.
        text: the token-level language model (``None`` with ``sam=False``); layers beyond ``sum(text_stages)``
            are dropped.
        head: the corner head on the stage-3 search map.
        text_stages: language layers per stage.
        heads: attention heads per stage (SAM's Eq. 3 uses the stage's).
        sam: SAMs between the stages (``False``: the vision-only ablation, setting ②).
        match_size: side of the upsampled dense matching map (Eq. 4).
        neck: TransT's fusion network for the ablation baseline (``None``: SATracker, no neck).
    """

    needs_genome = False

    def __init__(self, backbone: CvT, text: Optional[nn.Module], head: CornerHead, text_stages: Sequence[int],
                 heads: Sequence[int], template_size: int, search_size: int, sam: bool = True, match_size: int = 40,
                 neck: Optional[nn.Module] = None):
        super().__init__()
        self.normalise = PixelNormalise("imagenet_rgb")
        self.template_size, self.search_size = int(template_size), int(search_size)
        self.match_size = int(match_size)
        self.uses_language = bool(sam)
        self.bounds: List[int] = []
        sams = None
        if sam:
            need = sum(text_stages)
            if text is None or text.layers < need:
                raise ConfigError(f"SATracker: model.text.stages {list(text_stages)} need {need} language layers, "
                                  f"but language.encoder {getattr(text, 'model_id', None)!r} has "
                                  f"{getattr(text, 'layers', 0)}")
            if text.layers > need:  # choice: the stages take the first layers; the rest go
                text.model.encoder.layer = text.model.encoder.layer[:need]
                text.model.config.num_hidden_layers = need
            start = 0
            for n in text_stages:
                start += int(n)
                self.bounds.append(start)
            self.language_dim = int(text.width)
            sams = nn.ModuleList([SAM(d, text.width, h) for d, h in zip(backbone.dims, heads)])
            self.match_proj = nn.Linear(text.width, backbone.dims[-1])
        else:
            text = None
        self.backbone = SynchronousBackbone(backbone, text, sams)
        self.head = head
        self.neck = neck
        if neck is not None:
            from trackers.heads.transt import SinePositionEncoding

            self.input_proj = nn.Conv2d(backbone.dims[-1], neck.d_model, 1)
            self.position = SinePositionEncoding(neck.d_model)

    @property
    def cvt(self) -> CvT:
        """The CvT of the backbone (CTEs and TEMs)."""
        return self.backbone.cvt

    @property
    def text(self) -> Optional[nn.Module]:
        """The language model of the backbone (``None`` without SAM)."""
        return self.backbone.text

    @property
    def sam(self) -> Optional[nn.ModuleList]:
        """The SAMs of the backbone (``None`` without SAM)."""
        return self.backbone.sam

    @property
    def feat_size(self) -> int:
        """Side of the stage-3 search map (20 at 320 / stride 16)."""
        return self.search_size // self.cvt.stride

    # ----- language ---------------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], has_text: torch.Tensor, device: Any = None,
                 pad_to_max: bool = False) -> Dict[str, torch.Tensor]:
        """``{'ids', 'mask', 'has_text'}`` of a batch of texts (``""`` for items without language)."""
        if self.text is None:
            return {}
        ids, mask = self.text.tokenize(list(texts), pad_to_max=pad_to_max, device=device)
        return {"ids": ids, "mask": mask, "has_text": has_text.to(device=ids.device).bool()}

    # ----- forward ----------------------------------------------------------------------------------------------
    def template(self, template: torch.Tensor, language: Optional[Mapping[str, torch.Tensor]] = None,
                 genome: Any = None, template_box: Optional[torch.Tensor] = None,
                 use_template_language: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Once per video: each stage's template keys / values, SAM's channel selectors and the sentence vector of
        Eq. 4 (``language``: :meth:`tokenize`'s output; ``None``: no language). ``genome``, ``template_box`` and
        ``use_template_language`` are the tracker base's keywords (no path, no template substitute)."""
        from asearch.language import zero_missing

        z = self.normalise(template)
        b = z.shape[0]
        state: Dict[str, Any] = {"kv": [], "selector": []}
        if self.text is not None:
            if not language:
                language = self.tokenize([""] * b, torch.zeros(b, dtype=torch.bool), z.device)
            mask, has = language["mask"].bool(), language["has_text"]
            h = self.text.embed(language["ids"])
            bias = self.text.attention_bias(h, mask)
        layer = 0
        for i in range(len(self.cvt.stages)):
            (tokens, hz, wz), kvs = self.cvt.template_stage(i, z)       # CTE_i, TEM_i (template side)
            state["kv"].append(kvs)
            z = to_map(tokens, hz, wz)
            if self.text is None:
                continue
            for j in range(layer, self.bounds[i]):
                h = self.text.layer(j, h, mask, bias)                       # T^i = BERT_i(T^{i-1})
            layer = self.bounds[i]
            h = zero_missing(h, has)
            sam = self.sam[i]
            t = sam.pooled_template(z)
            state["selector"].append(sam.selector(t, h, mask))              # sigmoid(Atten_NL^SAM) (Eq. 3)
            h = zero_missing(sam.update_text(h, t), has)                    # T^i <- text stream of SAM_i
        if self.neck is not None:
            z = self.input_proj(z)
            state["neck_z"], state["neck_pos_z"] = to_tokens(z), to_tokens(self.position(z))
        if self.text is not None:
            w = mask.to(h.dtype).unsqueeze(-1)
            sentence = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
            state["match_text"] = zero_missing(F.normalize(self.match_proj(sentence), dim=-1)[:, None], has)[:, 0]
            state["has_text"] = has.bool()
        return state

    def track(self, search: torch.Tensor, state: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """One frame of each video: the search side of every stage (TEM against the cached template keys and
        values, SAM's channel selection), the corner head, and the dense matching map (Eq. 4)."""
        x = self.normalise(search)
        for i in range(len(self.cvt.stages)):
            tokens, hx, wx = self.cvt.search_stage(i, x, state["kv"][i])
            x = to_map(tokens, hx, wx)
            if self.text is not None:
                x = self.sam[i].select(x, state["selector"][i])
        if self.neck is not None:                                            # setting ①: TransT's ECA / CFA
            x = self.input_proj(x)
            fused = self.neck(state["neck_z"], to_tokens(x), state["neck_pos_z"], to_tokens(self.position(x)))
            out = self.head(to_map(fused, x.shape[-2], x.shape[-1]))
        else:
            out = self.head(x)
        if self.text is not None:
            score = torch.einsum("bchw,bc->bhw", F.normalize(x, dim=1), state["match_text"])   # X_s^3 T^3^T
            out["match_score"] = F.interpolate(score.unsqueeze(1), size=(self.match_size, self.match_size),
                                               mode="bilinear", align_corners=False).squeeze(1)   # Eq. 4
            out["match_valid"] = state["has_text"]
        return out

    def forward(self, template: torch.Tensor, search: torch.Tensor,
                language: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """Training forward on a pair batch (images 0..255; ``language`` from :meth:`tokenize`)."""
        return self.track(search, self.template(template, language))


def build_satracker_model(cfg: SATrackerModelConfig, pretrained: bool = True, text_config: Any = None
                          ) -> SATracker:
    """Build ``satracker``; ``pretrained`` loads ``cvt.pretrained`` and the language model's weights (a rebuild
    from a checkpoint reads only its config and tokenizer). ``text_config``: a ``transformers`` config (e.g.
    ``BertConfig()``) for a randomly initialised language model without any file (shape checks on ``meta``)."""
    c = cfg.cvt
    cvt = CvT(c.dims, c.depths, c.heads, c.kernels, c.strides, c.paddings, c.mlp_ratio, c.drop_path, c.attention)
    if pretrained and c.pretrained:
        from trackers.init_report import note_init

        note_init(cvt, "CvT backbone", c.pretrained, load_cvt_weights(cvt, c.pretrained))
    text = None
    if cfg.sam:
        from trackers.language_width import build_token_text

        text = build_token_text(cfg.text, "SATracker", pretrained, text_config)
    n = cfg.neck
    neck = None
    if n.enabled:
        from trackers.heads.transt import FeatureFusionNetwork

        neck = FeatureFusionNetwork(n.d_model, n.nhead, n.num_layers, n.dim_feedforward, n.dropout)
    head = CornerHead(n.d_model if n.enabled else c.dims[-1], cfg.head.channels)
    return SATracker(cvt, text, head, cfg.text.stages, c.heads, cfg.template_size, cfg.search_size, cfg.sam,
                     cfg.match_size, neck)


def _entry():
    from trackers.inference.satracker import SATrackerTrackerConfig
    from trackers.init_report import PretrainedKey
    from trackers.losses.satracker import SATrackerLossConfig
    from trackers.registry import Lazy, ModelEntry

    return ModelEntry(SATrackerModelConfig, SATrackerLossConfig, SATrackerTrackerConfig, build_satracker_model,
                      Lazy("trackers.actors.satracker:SATrackerActor"),
                      Lazy("trackers.inference.satracker:SATrackerTracker"),
                      "text.width", (PretrainedKey("cvt.pretrained", "the ImageNet CvT-21 weights "
                                                   "(transformers microsoft/cvt-21)"),), "text.encoder")


#: registry entry (``trackers.registry.ENTRIES['satracker']``)
SATRACKER_ENTRY = _entry()
