"""PJVLT (paper 001, Liang et al.): the progressive joint vision-language transformer with a center head.

Inputs: a template crop (128), a search crop (256) and the video's sentence. The crops become patch tokens with
their own position embeddings (the toolkit's one-stream ViT, :mod:`trackers.backbones.vit`, MAE initialisation);
the sentence becomes word tokens (:class:`~asearch.language.TokenTextEncoder`, BERT-base). Joint layer ``j``
(``j = 1..J``, J = 12; §III-B, Fig. 3)::

    V_j = Θ_j(V_{j-1})             ViT layer j over [template, search] tokens (one stream)
    L_j = Π_j(L_{j-1})             BERT layer j over the word tokens
    A_j = Φ_j(V_j, L_j)            SAIEL (Eq. 1-7, :class:`trackers.models.pjvlt_blocks.SAIEL`)
    V_{j+1} = R_j = Ψ_j(A_j)       CCPIL (Eq. 8-11, :class:`trackers.models.pjvlt_blocks.CCPIL`)

then the search tokens of ``R_J`` go as a 16×16 map into the box head (§III-E: 4 stacked Conv-BN-ReLU layers per
branch; classification, offset and size maps, Eq. 12-13), which is OSTrack's center head
(:class:`trackers.heads.center.CenterHead`).

Choices where the paper is silent (each also in the docstrings below):

* No candidate elimination (the paper names none, and CCPIL's token-axis layers need all N = 64 + 256 tokens).
* The ViT's final LayerNorm (MAE's ``norm``) runs once on ``R_J`` before the head.
* The language stream takes no visual input (Fig. 3: ``L_j = Π_j(L_{j-1})``), so all ``L_j`` depend only on the
  text: :meth:`PJVLT.template` computes them once per video; the joint layers run per frame (the template and the
  search tokens attend to each other and to the words in every layer).
* A tiny model with fewer joint layers than its language model (MiniLM: 6) keeps the first J language layers and
  drops the rest (joint layer j pairs ViT layer j with language layer j).
* Words: ``[CLS] sentence [SEP]``, at most ``text.max_length`` = 40 tokens. Items without language
  (``language.missing`` ``zero`` / ``template``) give ``[CLS] [SEP]`` with all ``L_j`` set to zero
  (:func:`~asearch.language.zero_missing`); ``template`` has no substitute of its own here (the template is in the
  joint stream already), so it acts as ``zero``; ``attribute`` encodes the fallback words as the sentence.
* Offset map: raw, as OSTrack's head (the paper writes ``O ∈ [0, 1)``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from asearch.errors import ConfigError
from trackers.backbones.vit import VisionTransformerCE, load_vit_weights
from trackers.heads.center import CenterHead
from trackers.models.ostrack import CenterHeadConfig, ViTConfig
from trackers.models.pjvlt_blocks import CCPIL, SAIEL

__all__ = ["TextConfig", "FusionConfig", "PJVLTModelConfig", "PJVLT", "build_pjvlt_model", "PJVLT_ENTRY"]


@dataclass
class TextConfig:
    """The language model (``model.text``). ``encoder`` and ``width`` follow from ``language.encoder`` (leave them
    out); ``trainable``: fine-tuned as in the paper (lr of the encoder); ``max_length``: tokens per sentence with
    ``[CLS]`` / ``[SEP]`` (**choice**: 40, the paper gives none)."""

    encoder: Optional[str] = None
    width: Optional[int] = None
    trainable: bool = True
    max_length: int = 40


@dataclass
class FusionConfig:
    """SAIEL and CCPIL (``model.fusion``): SAIEL's latent width and heads (``null``: ``dim/4`` and ``latent/64``,
    see :class:`~trackers.models.pjvlt_blocks.SAIEL`), its Gumbel temperature, CCPIL's ``N_h`` (640) and ``N_g`` (4).
    """

    latent_dim: Optional[int] = None
    num_heads: Optional[int] = None
    tau: float = 1.0
    hidden_tokens: int = 640
    groups: int = 4


def _no_ce_vit() -> ViTConfig:
    return ViTConfig(ce_layers=[])


@dataclass
class PJVLTModelConfig:
    """Model section of ``pjvlt``: ViT-B/16 (``vit``, no CE), the center head, the language model, SAIEL / CCPIL."""

    name: str = "pjvlt"
    template_size: int = 128
    search_size: int = 256
    vit: ViTConfig = field(default_factory=_no_ce_vit)
    head: CenterHeadConfig = field(default_factory=CenterHeadConfig)
    text: TextConfig = field(default_factory=TextConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)

    def __post_init__(self) -> None:
        if self.name != "pjvlt":
            raise ConfigError(f"model.name {self.name!r} is not pjvlt")
        if self.vit.ce_layers:
            raise ConfigError(f"model.vit.ce_layers must be [] for pjvlt (got {self.vit.ce_layers}): CCPIL mixes "
                              "all template + search tokens along the token axis, so none may be eliminated")


class PJVLT(nn.Module):
    """The joint encoder + center head (module docstring).

    Args:
        backbone: the one-stream ViT (without CE blocks); its block ``j`` is ``Θ_j``.
        text: the token-level language model; its layer ``j`` is ``Π_j`` (layers beyond the ViT's depth are dropped).
        head: the center head on the search map.
        fusion: :class:`FusionConfig` (SAIEL / CCPIL shapes).
    """

    uses_language = True
    needs_genome = False

    def __init__(self, backbone: VisionTransformerCE, text: nn.Module, head: CenterHead,
                 fusion: Optional[FusionConfig] = None):
        super().__init__()
        fusion = fusion or FusionConfig()
        if backbone.ce_layers:
            raise ConfigError("PJVLT: the ViT must have no candidate-elimination blocks (model.vit.ce_layers: [])")
        depth = backbone.depth
        if text.layers < depth:
            raise ConfigError(f"PJVLT: {depth} joint layers (model.vit.depth) need as many language layers, but "
                              f"language.encoder {text.model_id!r} has {text.layers}")
        if text.layers > depth:  # choice: joint layer j pairs ViT layer j with language layer j; the rest go
            text.model.encoder.layer = text.model.encoder.layer[:depth]
            text.model.config.num_hidden_layers = depth
        self.backbone, self.text, self.head = backbone, text, head
        self.language_dim = int(text.width)
        n_tokens = backbone.grid_z ** 2 + backbone.grid_x ** 2
        self.saiel = nn.ModuleList([SAIEL(backbone.dim, text.width, fusion.latent_dim, fusion.num_heads, fusion.tau)
                                    for _ in range(depth)])
        self.ccpil = nn.ModuleList([CCPIL(backbone.dim, n_tokens, fusion.hidden_tokens, fusion.groups)
                                    for _ in range(depth)])

    @property
    def template_size(self) -> int:
        return self.backbone.template_size

    @property
    def search_size(self) -> int:
        return self.backbone.search_size

    @property
    def feat_size(self) -> int:
        """Side of the search map and of the head's maps (16 at 256 / patch 16)."""
        return self.backbone.grid_x

    # ----- language ---------------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], has_text: torch.Tensor, device: Any = None,
                 pad_to_max: bool = False) -> Dict[str, torch.Tensor]:
        """``{'ids', 'mask', 'has_text'}`` of a batch of texts (``""`` for items without language)."""
        ids, mask = self.text.tokenize(list(texts), pad_to_max=pad_to_max, device=device)
        return {"ids": ids, "mask": mask, "has_text": has_text.to(device=ids.device).bool()}

    def words(self, language: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``L_1..L_J`` of the tokenised texts: ``{'words': B×J×T×D, 'word_mask': B×T}`` (zero for items without
        text)."""
        from asearch.language import zero_missing

        mask = language["mask"].bool()
        h = self.text.embed(language["ids"])
        bias = self.text.attention_bias(h, mask)
        out = []
        for j in range(self.backbone.depth):
            h = self.text.layer(j, h, mask, bias)                  # L_j = Π_j(L_{j-1})
            out.append(zero_missing(h, language["has_text"]))
        return {"words": torch.stack(out, dim=1), "word_mask": mask}

    # ----- forward ----------------------------------------------------------------------------------------------
    def template(self, template: torch.Tensor, language: Optional[Mapping[str, torch.Tensor]] = None,
                 genome: Any = None, template_box: Optional[torch.Tensor] = None,
                 use_template_language: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Once per video: template tokens ``z`` and the words of every layer (``language``: :meth:`tokenize`'s
        output, ``None``: no language). Batch-first, so the tracker splits and joins videos. ``genome``,
        ``template_box`` and ``use_template_language`` are the tracker base's keywords: PJVLT has no path and no
        template substitute for the language (``template`` acts as ``zero``)."""
        z = self.backbone.embed_template(template)
        if language is None:
            b = z.shape[0]
            language = self.tokenize([""] * b, torch.zeros(b, dtype=torch.bool), z.device)
        return {"z": z, **self.words(language)}

    def track(self, search: torch.Tensor, state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """One frame of each video: the joint layers over ``[z, search tokens]``, then the head."""
        z, words, mask = state["z"], state["words"], state["word_mask"]
        vit = self.backbone
        lens_t = z.shape[1]
        tokens = torch.cat([z, vit.embed_search(search)], dim=1)
        index = torch.arange(tokens.shape[1] - lens_t, device=tokens.device).unsqueeze(0).expand(z.shape[0], -1)
        for j, block in enumerate(vit.blocks):
            tokens = block(tokens, lens_t, index)[0]                 # V_j = Θ_j(V_{j-1})
            aligned = self.saiel[j](tokens, words[:, j], mask)       # A_j (Eq. 1-7)
            tokens = self.ccpil[j](aligned)                          # V_{j+1} = R_j (Eq. 8-11)
        tokens = vit.norm(tokens)
        return self.head(vit.to_map(tokens[:, lens_t:], vit.grid_x))

    def forward(self, template: torch.Tensor, search: torch.Tensor,
                language: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """Training forward on a pair batch (images 0..255; ``language`` from :meth:`tokenize`)."""
        return self.track(search, self.template(template, language))


def build_pjvlt_model(cfg: PJVLTModelConfig, pretrained: bool = True, text_config: Any = None) -> PJVLT:
    """Build ``pjvlt``; ``pretrained`` loads ``vit.pretrained`` and the language model's weights (a rebuild from a
    checkpoint reads only its config and tokenizer). ``text_config``: a ``transformers`` config (e.g.
    ``BertConfig()``) for a randomly initialised language model without any file (shape checks on ``meta``)."""
    from trackers.language_width import build_token_text

    v = cfg.vit
    vit = VisionTransformerCE(v.patch_size, v.dim, v.depth, v.heads, v.mlp_ratio, True, v.drop_path,
                              cfg.template_size, cfg.search_size, [], 1.0, v.ce_template_range)
    if pretrained and v.pretrained:
        load_vit_weights(vit, v.pretrained)
    text = build_token_text(cfg.text, "PJVLT", pretrained, text_config)
    return PJVLT(vit, text, CenterHead(v.dim, cfg.head.channels), cfg.fusion)


def _entry():
    from trackers.inference.ostrack import OSTrackTrackerConfig
    from trackers.init_report import PretrainedKey
    from trackers.losses.ostrack import OSTrackLossConfig
    from trackers.registry import Lazy, ModelEntry

    return ModelEntry(PJVLTModelConfig, OSTrackLossConfig, OSTrackTrackerConfig, build_pjvlt_model,
                      Lazy("trackers.actors.pjvlt:PJVLTActor"), Lazy("trackers.inference.pjvlt:PJVLTTracker"),
                      "text.width", (PretrainedKey("vit.pretrained", "the MAE ViT-B/16 encoder "
                                                   "(mae_pretrain_vit_base.pth)"),), "text.encoder")


#: registry entry (``trackers.registry.ENTRIES['pjvlt']``)
PJVLT_ENTRY = _entry()
