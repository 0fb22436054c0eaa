"""COST (paper 003): contrastive one-stage transformer for vision-language (small-object) tracking.

Visual branch (§4.2) = TransT's (:class:`~trackers.models.transt.TransT`): ResNet-50 cut after ``layer3`` (stride 8,
``C_v = 1024``), a 1x1 conv to ``C'_v = 256``, the feature-fusion network (4 encoders + decoder) over the 16x16
template and 32x32 search tokens, giving ``F_xz`` (``N_v = 1024`` tokens); reshaped to 32x32, three 5x5
convolutions with stride 1 give ``F_0^v`` (``N'_v = 400`` tokens, 20x20). Linguistic branch (§4.3): BERT-base over
``[CLS] words [SEP]`` padded to ``K + 2 = 40`` tokens; ``F_0^l`` is the average of the outputs of its layers
(``C_l = 768``, ``N_l = 40``). Then (§4.4)::

    F_i^v = g_v(F_0,i^v),  F_i^l = g_l(F_0,i^l)                  Alg. 1, lines 3-4 (training only)
    L_CoA = (L_v2l + L_l2v) / 2                                   Eq. 6-8, cosine similarity, τ = 0.5
    X~ = Concat(W_v F_0^v, W_l F_0^l, O)                          Eq. 9: 400 + 40 + 1 = 441 tokens of C_p = 256
    X_l' = LN(X_l + MHSA(X_l)),  X_{l+1} = LN(X_l' + FFN(X_l'))  Eq. 4-5, L = 6 layers (learnable positions P
                                                                  added to query and key of every layer, Fig. 7)

and the tracking head (§4.5) classifies and regresses on all 441 output tokens ("441 candidate boxes", inference
with a 21x21 Hanning window, :class:`~trackers.inference.cost.COSTTracker`).

Choices where the paper is silent (each also in the docstrings below):

* The three 5x5 convolutions are unpadded (32 -> 28 -> 24 -> 20, the only way to N'_v = 400), each followed by a
  ReLU except the last. Visual token ``(r, c)`` then sits at search-crop pixel ``stride·(c + 6)``
  (:attr:`COST.visual_offset`): the labels of :class:`~trackers.losses.cost.COSTLoss` use that geometry.
* ``g_v`` / ``g_l`` (CoA) are their own two linear layers, apart from the VLT's two projections (the paper lists
  both pairs); CoA compares vectors (``F_i ∈ R^{C_p}``), so ``F_0^v`` is averaged over its 400 tokens and ``F_0^l``
  over its real (unpadded) tokens before ``g``. Pairs without language of their own are left out of CoA (as the
  ModaMixer's contrastive term, :func:`~supernets.contrastive.contrastive_mask`); with fewer than two pairs left
  the term is 0 (Eq. 6's denominator needs a negative).
* "average the output of each layer": the mean over the L language layers' outputs (the embedding output is not
  one of them). Padded language tokens are masked out of the VLT's attention (keys); items without text are
  ``[CLS] [SEP]`` with zero features (:func:`~asearch.language.zero_missing`).
* Head: "two layers of MLP and one layer of MLP": a 2-layer classification MLP and a 1-layer (linear) box
  regressor, sigmoid on the box as TransT (``model.cls_layers`` / ``model.box_layers``).
* The language model is fine-tuned (Alg. 1 line 13 updates ``L``), ``model.text.trainable``.
* Language and template: both depend on the video only, so :meth:`COST.template` computes the template tokens and
  ``F_0^l`` (and its projection) once per video; the fusion network mixes template and search tokens, so it and
  the VLT run every frame.

Ablations (Table 6 / 9): ``obj_token: false`` puts zeros in place of ``O`` (w/o [OBJ]); ``vl_layers: 0`` feeds the
joint tokens straight to the head (w/o VLT); w/o CoA is ``loss.contrastive_weight: 0``; w/o LB is TransT
(``model.name: transt``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from asearch.errors import ConfigError
from supernets.contrastive import contrastive_loss
from trackers.heads.transt import CFALayer, FeatureFusionNetwork, TransTHead
from trackers.models.transt import TransT
from trackers.registry import RESNET_INIT, ResNetConfig

__all__ = ["COSTTextConfig", "COSTModelConfig", "COST", "build_cost_model", "COST_ENTRY"]


@dataclass
class COSTTextConfig:
    """The language model (``model.text``). ``encoder`` and ``width`` follow from ``language.encoder`` (leave them
    out); ``trainable``: fine-tuned (Alg. 1 updates the linguistic branch); ``max_length``: ``K + 2`` tokens with
    ``[CLS]`` / ``[SEP]`` (40: K = 38 words), every text padded to it."""

    encoder: Optional[str] = None
    width: Optional[int] = None
    trainable: bool = True
    max_length: int = 40


@dataclass
class COSTModelConfig:
    """Model section of ``cost``: TransT's visual branch (``d_model`` ... ``resnet``, as
    :class:`~trackers.models.transt.TransTModelConfig`), the convolutions to ``N'_v``, the language model, the VLT
    (``vl_dim`` = C_p, ``vl_heads``, ``vl_layers`` = L, ``vl_feedforward``), CoA (``coa_temperature`` = τ) and the
    head MLPs."""

    name: str = "cost"
    template_size: int = 128
    search_size: int = 256
    d_model: int = 256
    nhead: int = 8
    num_fusion_layers: int = 4
    dim_feedforward: int = 2048
    dropout: float = 0.1
    resnet: ResNetConfig = field(default_factory=ResNetConfig)
    num_convs: int = 3
    conv_kernel: int = 5
    text: COSTTextConfig = field(default_factory=COSTTextConfig)
    vl_dim: int = 256
    vl_heads: int = 8
    vl_layers: int = 6
    vl_feedforward: int = 2048
    obj_token: bool = True
    coa_temperature: float = 0.5
    cls_layers: int = 2
    box_layers: int = 1

    def __post_init__(self) -> None:
        if self.name != "cost":
            raise ConfigError(f"model.name {self.name!r} is not cost")
        for key in ("template_size", "search_size", "d_model", "nhead", "num_fusion_layers", "dim_feedforward",
                    "conv_kernel", "vl_dim", "vl_heads", "vl_feedforward", "cls_layers", "box_layers"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("num_convs", "vl_layers"):
            if int(getattr(self, key)) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if self.d_model % self.nhead or self.d_model % 2:
            raise ConfigError(f"model.d_model ({self.d_model}) must be even and divisible by model.nhead "
                              f"({self.nhead})")
        if self.vl_dim % self.vl_heads:
            raise ConfigError(f"model.vl_heads ({self.vl_heads}) must divide model.vl_dim ({self.vl_dim})")
        if not self.coa_temperature > 0:
            raise ConfigError(f"model.coa_temperature must be > 0, got {self.coa_temperature}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")


class COST(TransT):
    """The COST network (module docstring). Outputs ``{'logits': B×N×2, 'boxes': B×N×4}`` over the
    ``N = N'_v + N_l + 1`` candidates (class 0 = foreground, boxes normalised ``cx, cy, w, h``), plus
    ``contrastive`` (L_CoA) in training mode.

    Args:
        backbone, fusion: TransT's ResNet-50 (cut after ``layer3``) and feature-fusion network.
        head: :class:`TransTHead` of width ``vl_dim``.
        text: the token-level language model (:class:`~asearch.language.TokenTextEncoder`).
        cfg: :class:`COSTModelConfig` (the convolutions, VLT, [OBJ], τ).
    """

    uses_language = True
    needs_genome = False

    def __init__(self, backbone: nn.Module, fusion: FeatureFusionNetwork, head: TransTHead, text: nn.Module,
                 cfg: COSTModelConfig):
        super().__init__(backbone, fusion, head, cfg.template_size, cfg.search_size)
        d, c_p, k = fusion.d_model, int(cfg.vl_dim), int(cfg.conv_kernel)
        convs = []
        for i in range(int(cfg.num_convs)):          # §4.2: three 5x5 convolutions, stride 1 (unpadded: choice)
            convs.append(nn.Conv2d(d, d, k))
            if i < cfg.num_convs - 1:
                convs.append(nn.ReLU(inplace=True))
        self.convs = nn.Sequential(*convs)
        side = self.map_size - int(cfg.num_convs) * (k - 1)
        if side < 1:
            raise ConfigError(f"model.num_convs={cfg.num_convs} convolutions of {k}x{k} leave nothing of the "
                              f"{self.map_size}x{self.map_size} search map (model.search_size {cfg.search_size})")
        self.visual_side = side
        self.visual_offset = self.stride * int(cfg.num_convs) * (k - 1) / 2.0
        self.text = text
        self.language_dim = int(text.width)
        self.num_words = int(text.max_length)
        self.num_candidates = side * side + self.num_words + 1
        self.proj_v = nn.Linear(d, c_p)                        # Eq. 9: the VLT's two linear projections
        self.proj_l = nn.Linear(self.language_dim, c_p)
        self.obj = nn.Parameter(torch.zeros(1, 1, c_p)) if cfg.obj_token else None   # Eq. 9: [OBJ] token O
        if self.obj is not None:
            nn.init.normal_(self.obj, std=0.02)                # "randomly initialized"
        self.vl_pos = nn.Parameter(torch.zeros(1, self.num_candidates, c_p))      # learnable position embeddings
        nn.init.normal_(self.vl_pos, std=0.02)
        self.vl_layers = nn.ModuleList(CFALayer(c_p, cfg.vl_heads, cfg.vl_feedforward, cfg.dropout)
                                       for _ in range(int(cfg.vl_layers)))
        self.g_v = nn.Linear(d, c_p)                            # Alg. 1: CoA's projections (training only)
        self.g_l = nn.Linear(self.language_dim, c_p)
        self.coa_scale = 1.0 / float(cfg.coa_temperature)

    @property
    def window_size(self) -> int:
        """Side of the Hanning window over the candidates (21 at paper size: 441 = 21²; §5.1)."""
        side = int(round(self.num_candidates ** 0.5))
        if side * side != self.num_candidates:
            raise ConfigError(f"COST: {self.num_candidates} candidates ({self.visual_side}² visual + "
                              f"{self.num_words} words + [OBJ]) form no square window; choose model.text.max_length "
                              f"so that the sum is a square (paper: 400 + 40 + 1 = 21²)")
        return side

    # ----- language ---------------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], has_text: torch.Tensor, device: Any = None,
                 pad_to_max: bool = True) -> Dict[str, torch.Tensor]:
        """``{'ids', 'mask', 'has_text'}`` of a batch of texts (``""`` for items without language), always padded
        to ``max_length`` (the VLT's positions are fixed)."""
        ids, mask = self.text.tokenize(list(texts), pad_to_max=True, device=device)
        return {"ids": ids, "mask": mask, "has_text": has_text.to(device=ids.device).bool()}

    def words(self, language: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``F_0^l`` (B×N_l×C_l: the mean of the language layers' outputs, zero without text), its mask and its VLT
        projection ``W_l F_0^l``."""
        from asearch.language import zero_missing

        mask = language["mask"].bool()
        h = self.text.embed(language["ids"])
        bias = self.text.attention_bias(h, mask)
        total = torch.zeros_like(h)
        for j in range(self.text.layers):
            h = self.text.layer(j, h, mask, bias)
            total = total + h
        f_l = zero_missing(total / self.text.layers, language["has_text"])   # §4.3: average of every layer
        return {"f_l": f_l, "word_mask": mask, "has_text": language["has_text"].bool(), "l_tokens": self.proj_l(f_l)}

    def _no_language(self, b: int, device: Any) -> Dict[str, torch.Tensor]:
        return self.tokenize([""] * b, torch.zeros(b, dtype=torch.bool), device)

    # ----- visual branch and VLT ----------------------------------------------------------------------------------
    def visual(self, embedded: Mapping[str, torch.Tensor], xf: Sequence[torch.Tensor]) -> torch.Tensor:
        """``F_0^v`` (B×N'_v×d): fusion of template and search tokens (``F_xz``), reshaped, three convolutions."""
        x, pos_x = self._tokens(xf, "search")
        f_xz = self.fusion(embedded["tokens"], x, embedded["pos"], pos_x)       # B×N_v×d
        b, n, d = f_xz.shape
        grid = f_xz.transpose(1, 2).reshape(b, d, self.map_size, self.map_size)
        return self.convs(grid).flatten(2).transpose(1, 2)

    def joint(self, f_v: torch.Tensor, words: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Eq. 9 and the VLT (Eq. 4-5) on the joint tokens, then the head over all candidates."""
        v = self.proj_v(f_v)
        lang = words["l_tokens"]
        b = v.shape[0]
        obj = self.obj.expand(b, -1, -1) if self.obj is not None else v.new_zeros(b, 1, v.shape[-1])
        x = torch.cat([v, lang, obj], dim=1)                                    # Eq. 9
        if x.shape[1] != self.num_candidates:
            raise ConfigError(f"COST: {x.shape[1]} joint tokens, the position embeddings hold {self.num_candidates}")
        pad = torch.cat([torch.zeros(b, v.shape[1], dtype=torch.bool, device=x.device), ~words["word_mask"],
                         torch.zeros(b, 1, dtype=torch.bool, device=x.device)], dim=1)
        pos = self.vl_pos.expand(b, -1, -1)
        for layer in self.vl_layers:
            x = layer(x, x, pos, pos, key_padding_mask=pad)                     # Eq. 4-5
        return self.head(x)

    def coa(self, f_v: torch.Tensor, words: Mapping[str, torch.Tensor],
            language_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """L_CoA (Eq. 6-8) over the pairs with language of their own (module docstring); 0 with fewer than two."""
        mask = words["word_mask"].to(f_v.dtype).unsqueeze(-1)
        e_v = self.g_v(f_v.mean(dim=1))                                          # Alg. 1 line 3
        e_l = self.g_l((words["f_l"] * mask).sum(1) / mask.sum(1).clamp(min=1))  # Alg. 1 line 4
        keep = words["has_text"].to(f_v.device)
        if language_mask is not None:
            keep = keep & torch.as_tensor(language_mask, device=f_v.device).bool().flatten()
        if int(keep.sum()) < 2:
            return (e_v.sum() + e_l.sum()) * 0.0
        return contrastive_loss(e_v[keep], e_l[keep], self.coa_scale, exclude_positive=True)

    # ----- public API ------------------------------------------------------------------------------------------
    def forward(self, template: torch.Tensor, search: torch.Tensor,
                language: Optional[Mapping[str, torch.Tensor]] = None, genome: Any = None,
                language_mask: Optional[torch.Tensor] = None, **_: Any) -> Dict[str, torch.Tensor]:
        """Training forward on a pair batch (RGB 0..255; ``language`` from :meth:`tokenize`, ``None``: no text);
        ``contrastive`` (L_CoA) is added in training mode."""
        if language is None:
            language = self._no_language(template.shape[0], template.device)
        embedded = self.embed_template(self.backbone(template))
        words = self.words(language)
        f_v = self.visual(embedded, self.backbone(search))
        out = self.joint(f_v, words)
        if self.training:
            out["contrastive"] = self.coa(f_v, words, language_mask)
        return out

    def recalibration_forward(self, template, search, language=None, genome=None, template_box=None,
                              use_template_language=None) -> None:
        """The whole forward (BatchNorm recalibration)."""
        self.forward(template, search, language)

    def template(self, template: torch.Tensor, language: Optional[Mapping[str, torch.Tensor]] = None,
                 genome: Any = None, template_box: Optional[torch.Tensor] = None,
                 use_template_language: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Once per video: template tokens and the language features (the tracker base's keywords ``genome``,
        ``template_box``, ``use_template_language`` have no role here: ``template`` acts as ``zero``)."""
        if language is None:
            language = self._no_language(template.shape[0], template.device)
        state: Dict[str, Any] = dict(self.embed_template(self.backbone(template)))
        state.update(self.words(language))
        return state

    def track(self, search: torch.Tensor, state: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """One frame of each video: visual branch with the cached template tokens, VLT, head."""
        return self.joint(self.visual(state, self.backbone(search)), state)


def build_cost_model(cfg: COSTModelConfig, pretrained: bool = True, text_config: Any = None) -> COST:
    """Build ``cost``; ``pretrained`` loads ``resnet.pretrained`` and the language model's weights.
    ``text_config``: a ``transformers`` config (e.g. ``BertConfig()``) for a randomly initialised language model
    without any file (shape checks on ``meta``)."""
    from trackers.backbones.resnet import resnet50
    from trackers.language_width import build_token_text

    backbone = resnet50(cfg.resnet.width_mult, cfg.resnet.pretrained if pretrained else None, num_layers=3)
    fusion = FeatureFusionNetwork(cfg.d_model, cfg.nhead, cfg.num_fusion_layers, cfg.dim_feedforward, cfg.dropout)
    head = TransTHead(cfg.vl_dim, cfg.cls_layers, cfg.box_layers)
    text = build_token_text(cfg.text, "COST", pretrained, text_config)
    return COST(backbone, fusion, head, text, cfg)


def _entry():
    from trackers.inference.transt import TransTTrackerConfig
    from trackers.losses.cost import COSTLossConfig
    from trackers.registry import Lazy, ModelEntry

    return ModelEntry(COSTModelConfig, COSTLossConfig, TransTTrackerConfig, build_cost_model,
                      Lazy("trackers.actors.cost:COSTActor"), Lazy("trackers.inference.cost:COSTTracker"),
                      "text.width", (RESNET_INIT,), "text.encoder")


#: registry entry (``trackers.registry.ENTRIES['cost']``)
COST_ENTRY = _entry()
