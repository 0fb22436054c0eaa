"""CTRTNL (paper 004): SiamRPN++ as the local tracker, the adaptive retrieval switch (AdaRS) on its top-k proposals
and the target-specific retrieval (TSR) over the whole frame when AdaRS rejects them (Algorithm 1).

The network joins modules that live elsewhere:

* ``local``: SiamRPN++ (:class:`~trackers.models.rpn.SiamRPNPP`, built by :func:`~trackers.models.rpn.
  build_siamrpnpp` from the SiamRPN++ keys of this config: ``template_size``, ``search_size``, ``stages``,
  ``neck``, ``head``, ``resnet``). The paper trains AdaRS and TSR "offline" with the local tracker given: it is
  frozen (``freeze_local``, kept in eval mode) and its weights come from a trained SiamRPN++ checkpoint
  (``local_checkpoint``, an ``asearch retrain`` checkpoint of ``siamrpnpp``).
* ``text``: the token language model (:class:`~asearch.language.TokenTextEncoder`, BERT in the paper, Alg. 1 line
  1), built as COST builds it (``model.text``); frozen by default (the paper trains AdaRS and TSR only).
* ``adars``: :class:`~trackers.models.ctrtnl_blocks.AdaRS` (OAM, PC, VLC; Eq. 1-19).
* ``selector``: :class:`~trackers.models.ctrtnl_tsr.ProposalSelector` (TSR's vision-language guided selector).

Choices where the paper is silent:

* Pooled features: proposals (in search-crop pixels) are PrRoI-pooled (``pool_size`` × ``pool_size``) from the
  **search branch's neck output**, the mean of the adjust neck's levels (stages 2-4, all ``neck.channels`` wide at
  stride 8, :meth:`CTRTNL.fuse`); TSR's windows are pooled the same way from the neck output of the whole frame.
  Feature pixel ``i`` sits at image (crop) pixel ``stride · i`` (:mod:`trackers.ops.prroi_pool`'s convention).
* TSR's target template: the same fused neck output of the template crop, centre-cropped to ``neck.center_size``
  (the correlation kernels' window, 7 × 7), averaged over the levels.
* Word features: the language model's last hidden state (``[CLS] words [SEP]``, padded to ``max_length``), zero for
  items without text (:func:`~asearch.language.zero_missing`).
* Everything that depends on the video only (the template kernels, the words, VLC's text encoding, Alg. 1 lines
  1-3, and TSR's semantic feature) is computed once per video by :meth:`CTRTNL.template`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from asearch.errors import ConfigError
from trackers.models.cost import COST, COSTTextConfig
from trackers.models.ctrtnl_blocks import AdaRS
from trackers.models.ctrtnl_tsr import ProposalSelector, pool_boxes
from trackers.models.rpn import RPNModelConfig, SiamRPNPP, build_siamrpnpp
from trackers.init_report import PretrainedKey

__all__ = ["CTRTNLTextConfig", "AdaRSConfig", "TSRConfig", "CTRTNLModelConfig", "CTRTNL", "build_ctrtnl_model",
           "LOCAL_INIT", "CTRTNL_ENTRY"]

#: the frozen local tracker's weights: a null ``local_checkpoint`` leaves SiamRPN++ random (and frozen)
LOCAL_INIT = PretrainedKey("local_checkpoint", "a trained SiamRPN++ (an asearch retrain checkpoint of "
                           "experiments/siamrpnpp/siamrpnpp.yaml; the paper adopts SiamRPN++ as its local tracker)")


@dataclass
class CTRTNLTextConfig(COSTTextConfig):
    """``model.text`` as COST's (``encoder`` / ``width`` follow from ``language.encoder``); ``trainable`` false by
    default: the paper trains AdaRS and TSR only; ``max_length`` 40 tokens."""

    trainable: bool = False


@dataclass
class AdaRSConfig:
    """``model.adars``: OAM's ``slots`` N = 16 and query ``reduction`` C/16 (Eq. 1), PC's ``parts`` A = 4, VLC's
    ``local_prototypes`` L = 4."""

    slots: int = 16
    reduction: int = 16
    parts: int = 4
    local_prototypes: int = 4


@dataclass
class TSRConfig:
    """``model.tsr``: the selector's tiny transformer encoder (``layers``, ``heads``, ``ffn``: null = 2C) and its
    OAM (``slots``, ``reduction``); none of these is in the paper."""

    layers: int = 2
    heads: int = 4
    ffn: Optional[int] = None
    slots: int = 16
    reduction: int = 16


@dataclass
class CTRTNLModelConfig(RPNModelConfig):
    """Model section of ``ctrtnl``: SiamRPN++'s keys (:class:`~trackers.models.rpn.RPNModelConfig`, ResNet-50 only:
    ``supernet``, ``genome``, ``spos_checkpoint`` must stay empty), ``local_checkpoint`` / ``freeze_local``,
    ``pool_size`` (PrRoI bins per side, 7), ``adars``, ``tsr`` and ``text``."""

    names: ClassVar[Tuple[str, ...]] = ("ctrtnl",)
    family: ClassVar[str] = "CTRTNL"
    name: str = "ctrtnl"
    local_checkpoint: Optional[str] = None
    freeze_local: bool = True
    pool_size: int = 7
    adars: AdaRSConfig = field(default_factory=AdaRSConfig)
    tsr: TSRConfig = field(default_factory=TSRConfig)
    text: CTRTNLTextConfig = field(default_factory=CTRTNLTextConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("supernet", "genome", "spos_checkpoint"):
            if getattr(self, key):
                raise ConfigError(f"model.{key} does not apply to ctrtnl (its local tracker is SiamRPN++ on a "
                                  "ResNet-50, configured in model.resnet)")
        c = int(self.neck.channels)
        for key, value in (("pool_size", self.pool_size), ("adars.slots", self.adars.slots),
                           ("adars.parts", self.adars.parts), ("tsr.layers", self.tsr.layers),
                           ("tsr.heads", self.tsr.heads), ("tsr.slots", self.tsr.slots)):
            if int(value) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {value}")
        if self.adars.local_prototypes < 2:
            raise ConfigError(f"model.adars.local_prototypes must be >= 2 (Eq. 18), got {self.adars.local_prototypes}")
        for key, r in (("adars.reduction", self.adars.reduction), ("tsr.reduction", self.tsr.reduction)):
            if r < 1 or c % r:
                raise ConfigError(f"model.{key} ({r}) must divide model.neck.channels ({c})")
        if c % self.tsr.heads:
            raise ConfigError(f"model.tsr.heads ({self.tsr.heads}) must divide model.neck.channels ({c})")


class CTRTNL(nn.Module):
    """The CTRTNL network (module docstring). Inference is split as the trackers need it: :meth:`template` once
    per video, :meth:`track` per frame (SiamRPN++'s ``cls`` / ``loc`` maps plus the fused search ``features``),
    :meth:`score_proposals` (AdaRS, Eq. 19) and :meth:`retrieve` (TSR) on demand.

    Args:
        local: the SiamRPN++ network.
        text: the token language model.
        adars: :class:`AdaRS` of width ``neck.channels``.
        selector: :class:`ProposalSelector` of the same width.
        pool_size: PrRoI bins per side of a proposal.
        freeze_local: keep SiamRPN++ fixed (no gradients, eval mode).
    """

    uses_language = True
    needs_genome = False
    tokenize = COST.tokenize          # the same tokenisation (every text padded to max_length)

    def __init__(self, local: SiamRPNPP, text: nn.Module, adars: AdaRS, selector: ProposalSelector,
                 pool_size: int = 7, freeze_local: bool = True) -> None:
        super().__init__()
        self.local, self.text, self.adars, self.selector = local, text, adars, selector
        self.pool_size = int(pool_size)
        self.freeze_local = bool(freeze_local)
        self.language_dim = int(text.width)
        self.num_words = int(text.max_length)
        if self.freeze_local:
            self.local.requires_grad_(False)

    # ----- SiamRPN++'s geometry (what the RPN tracker reads) ------------------------------------------------------
    @property
    def template_size(self) -> int:
        return self.local.template_size

    @property
    def search_size(self) -> int:
        return self.local.search_size

    @property
    def stride(self) -> int:
        return self.local.stride

    @property
    def score_size(self) -> int:
        return self.local.score_size

    @property
    def location_offset(self) -> float:
        return self.local.location_offset

    @property
    def anchor_num(self) -> int:
        return self.local.anchor_num

    def anchors(self, size: Optional[int] = None, device: Optional[torch.device] = None) -> torch.Tensor:
        """SiamRPN++'s anchors (:meth:`~trackers.models.rpn.SiamRPNPPBase.anchors`)."""
        return self.local.anchors(size, device)

    def train(self, mode: bool = True) -> "CTRTNL":
        """As :meth:`nn.Module.train`, but a frozen SiamRPN++ stays in eval mode (its BatchNorm statistics)."""
        super().train(mode)
        if self.freeze_local:
            self.local.eval()
        return self

    # ----- features ---------------------------------------------------------------------------------------------
    @staticmethod
    def fuse(maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """The pooled feature map: the mean of the neck's levels (module docstring)."""
        return torch.stack(list(maps), 0).mean(0)

    def search_maps(self, image: torch.Tensor) -> list:
        """The neck's levels of a search crop or a whole frame (RGB 0..255, ``B×3×H×W``)."""
        return self.local.neck(self.local._select(self.local.backbone(image), "search"))

    def frame_features(self, frame: torch.Tensor) -> torch.Tensor:
        """The fused neck output of whole frames (``B×C×H/8×W/8``), TSR's input."""
        return self.fuse(self.search_maps(frame))

    def words(self, language: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``words`` (``B×T×D``, last hidden state, zero without text) and ``word_mask`` of tokenised texts."""
        from asearch.language import zero_missing

        tokens, mask = self.text(language["ids"], language["mask"])
        return {"words": zero_missing(tokens, language["has_text"]), "word_mask": mask}

    def _no_language(self, b: int, device: Any) -> Dict[str, torch.Tensor]:
        return self.tokenize([""] * b, torch.zeros(b, dtype=torch.bool), device)

    # ----- inference --------------------------------------------------------------------------------------------
    def template(self, template: torch.Tensor, language: Optional[Mapping[str, torch.Tensor]] = None,
                 genome: Any = None, template_box: Optional[torch.Tensor] = None,
                 use_template_language: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Once per video: SiamRPN++'s kernels, the words, VLC's text encoding (Alg. 1 lines 1-3), TSR's target
        template and semantic feature (the tracker base's ``genome`` / ``template_box`` / ``use_template_language``
        have no role here)."""
        if language is None:
            language = self._no_language(template.shape[0], template.device)
        state: Dict[str, Any] = dict(self.local.template(template))
        state.update(self.words(language))
        state["text"] = self.adars.vlc.encode_text(state["words"], state["word_mask"])
        state["target"] = self.fuse(state["kernels"])
        state["semantic"] = self.selector.semantic(state["target"], state["words"], state["word_mask"])
        return state

    def track(self, search: torch.Tensor, state: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """One frame of each video: SiamRPN++'s ``cls`` / ``loc`` and the fused search ``features``."""
        maps = self.search_maps(search)
        out = dict(self.local.head(state["kernels"], maps))
        out["features"] = self.fuse(maps)
        return out

    def score_proposals(self, features: torch.Tensor, boxes: torch.Tensor,
                        text: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
        """AdaRS on proposals ``boxes`` (``B×K×4`` xyxy in the pixels of ``features``' image): PrRoI pooling, OAM,
        PC, VLC against the videos' text encodings; ``scores`` is ``B×K`` (Eq. 19)."""
        pooled = pool_boxes(features, boxes, self.pool_size, float(self.stride))
        return self.adars(pooled, text=dict(text))

    def retrieve(self, frame_features: torch.Tensor, frame_size: Tuple[float, float],
                 target_size: Tuple[float, float], state: Mapping[str, Any], k: int = 3,
                 chunk: int = 1024) -> Dict[str, torch.Tensor]:
        """TSR on one frame of one video (``state`` of batch 1): :meth:`ProposalSelector.retrieve` with the
        video's cached semantic feature."""
        return self.selector.retrieve(frame_features, frame_size, target_size, state["target"], state["words"],
                                      state["word_mask"], k, semantic=state["semantic"], chunk=chunk)


    # ----- training ---------------------------------------------------------------------------------------------
    def rpn_proposals(self, rpn: Mapping[str, torch.Tensor], count: int) -> torch.Tensor:
        """SiamRPN++'s ``count`` highest-scoring boxes (softmax target probability, no penalty or window) of each
        item: ``B×count×4`` xyxy in search-crop pixels."""
        from trackers.boxes import cxcywh_to_xyxy
        from trackers.heads.rpn import anchor_deltas, anchor_logits, decode_boxes

        k, m = self.anchor_num, rpn["cls"].shape[-1]
        score = anchor_logits(rpn["cls"], k).softmax(1)[:, 1]
        boxes = decode_boxes(anchor_deltas(rpn["loc"], k), self.anchors(m, rpn["cls"].device))
        idx = score.topk(min(int(count), score.shape[1]), dim=1).indices
        return cxcywh_to_xyxy(boxes.gather(1, idx.unsqueeze(-1).expand(*idx.shape, 4)))

    def forward(self, template: torch.Tensor, search: torch.Tensor,
                language: Optional[Mapping[str, torch.Tensor]] = None, search_box: Optional[torch.Tensor] = None,
                proposals: int = 8, **_: Any) -> Dict[str, Any]:
        """Training forward on a pair batch (RGB 0..255 crops, ``search_box`` ``B×4`` xyxy in search-crop pixels):
        SiamRPN++ (fixed when ``freeze_local``) gives its ``proposals`` best boxes, the ground-truth box is added
        as one more (every item then has a positive, IoU 1), AdaRS scores them all; TSR's selector scores the
        windows :func:`~trackers.models.ctrtnl_tsr.target_windows` lays over the search crop from the ground-truth
        size (the crop stands in for the frame). Returns AdaRS's outputs plus ``proposals`` (``B×(G+1)×4``),
        ``windows`` / ``window_logits`` (one tensor per item: their number depends on the target's size)."""
        from trackers.models.ctrtnl_tsr import target_windows

        if search_box is None:
            raise ValueError("CTRTNL.forward needs the search crops' ground-truth boxes (search_box)")
        b = template.shape[0]
        if language is None:
            language = self._no_language(b, template.device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_local):
            kernels = self.local.template(template)["kernels"]
            maps = self.search_maps(search)
            rpn = self.local.head(kernels, maps)
        features, target = self.fuse(maps), self.fuse(kernels)
        gt = search_box.to(features.dtype)
        boxes = torch.cat([self.rpn_proposals(rpn, proposals).detach(), gt[:, None]], 1)
        w = self.words(language)
        out: Dict[str, Any] = dict(self.adars(pool_boxes(features, boxes, self.pool_size, float(self.stride)),
                                              w["words"], w["word_mask"]))
        side = float(self.search_size)
        windows, logits = [], []
        for i in range(b):
            size = (float(gt[i, 2] - gt[i, 0]), float(gt[i, 3] - gt[i, 1]))
            win = target_windows((side, side), (max(size[0], 1.0), max(size[1], 1.0))).to(features)
            sel = self.selector(features[i:i + 1], win[None], target[i:i + 1], w["words"][i:i + 1],
                                w["word_mask"][i:i + 1])
            windows.append(win)
            logits.append(sel["logits"][0])
        out.update(proposals=boxes, windows=windows, window_logits=logits, language=language)
        return out

    def recalibration_forward(self, template: torch.Tensor, search: torch.Tensor, language: Any = None,
                              genome: Any = None, template_box: Any = None, use_template_language: Any = None) -> None:
        """BatchNorm recalibration: only SiamRPN++ holds BatchNorm; a frozen one keeps its statistics."""
        if not self.freeze_local:
            self.local.recalibration_forward(template, search)


def build_ctrtnl_model(cfg: CTRTNLModelConfig, pretrained: bool = True, text_config: Any = None) -> CTRTNL:
    """Build ``ctrtnl``; ``pretrained`` loads ``resnet.pretrained`` (or the trained SiamRPN++ of
    ``local_checkpoint``) and the language model's weights. ``text_config``: a ``transformers`` config for a
    randomly initialised language model without any file (shape checks on ``meta``)."""
    from trackers.language_width import build_token_text

    local = build_siamrpnpp(cfg, pretrained and not cfg.local_checkpoint)
    if pretrained and cfg.local_checkpoint:
        _load_local(local, cfg.local_checkpoint)
    text = build_token_text(cfg.text, "CTRTNL", pretrained, text_config)
    c, a, s = int(cfg.neck.channels), cfg.adars, cfg.tsr
    adars = AdaRS(c, text.width, a.slots, a.parts, a.local_prototypes, a.reduction)
    selector = ProposalSelector(c, text.width, s.layers, s.heads, s.ffn, cfg.pool_size, float(local.stride),
                                s.slots, s.reduction)
    return CTRTNL(local, text, adars, selector, cfg.pool_size, cfg.freeze_local)


def _load_local(local: SiamRPNPP, path: str) -> None:
    """The weights of a trained ``siamrpnpp`` checkpoint into ``local`` (strict; errors name the file)."""
    from pathlib import Path

    from asearch.errors import CheckpointError
    from asearch.io import load_torch

    if not Path(path).is_file():
        raise ConfigError(f"model.local_checkpoint {path!r} does not exist: put a trained SiamRPN++ checkpoint "
                          "there (asearch retrain --config experiments/siamrpnpp/...) or set it to null")
    ckpt = load_torch(path, map_location="cpu")
    name = ((ckpt.get("build_info") or {}).get("model") or {}).get("name") if isinstance(ckpt, Mapping) else None
    if name != "siamrpnpp":
        raise CheckpointError(f"{path}: model.local_checkpoint must be a siamrpnpp checkpoint, got {name!r}")
    try:
        local.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: its SiamRPN++ does not match model's SiamRPN++ keys: {e}") from None
    from trackers.init_report import note_init

    note_init(local, "local tracker (SiamRPN++)", path, len(ckpt["model"]))


def _entry():
    from trackers.inference.ctrtnl import CTRTNLTrackerConfig
    from trackers.losses.ctrtnl import CTRTNLLossConfig
    from trackers.registry import Lazy, ModelEntry

    return ModelEntry(CTRTNLModelConfig, CTRTNLLossConfig, CTRTNLTrackerConfig, build_ctrtnl_model,
                      Lazy("trackers.actors.ctrtnl:CTRTNLActor"), Lazy("trackers.inference.ctrtnl:CTRTNLTracker"),
                      "text.width", (LOCAL_INIT,), "text.encoder")


#: registry entry (``trackers.registry.ENTRIES['ctrtnl']``)
CTRTNL_ENTRY = _entry()
