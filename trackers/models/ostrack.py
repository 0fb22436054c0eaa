"""OSTrack (Ye et al., ECCV 2022) and VLT_OST (paper 000 §3.4, Fig. 4, §4.1): one-stream ViT + center head.

:class:`OSTrack`: the template (128) and search (256) crops become patch tokens with their own position
embeddings, one ViT with candidate elimination (:mod:`trackers.backbones.vit`) attends over all of them jointly,
and the center head (:mod:`trackers.heads.center`) reads the 16×16 search map (eliminated tokens restored as zeros).

:class:`VLTOST`: the same network with a ModaMixer (:class:`supernets.modamixer.ModaMixer`, Eq. 1) after every
``mixer_every`` ViT blocks (ViT-B: 12 blocks, every 3 → 4 mixer positions, the "stages" of Fig. 4; a tiny 6-block
ViT gets 2). At mixer position k the template tokens (as an 8×8 map) go through the template mixer k and the search
tokens (as a 16×16 map) through the search mixer k::

    f_m = Block_mixer[g](Linear_k(f_l) ⊙ f_v) + f_v                                     (Eq. 1)

**choice**: in the ViT the stage's own layers (the preceding ViT blocks) have already run, so Eq. 1's
``Block(f_v)`` is the identity (the residual stream). The searched ``Block_mixer`` is an SPOS choice block (C = dim,
stride 1); the genome's 8 mixer genes pick them (``template_mixer[k]`` for the template mixer k,
``search_mixer[k]`` for the search mixer k; backbone genes are empty: the ViT is fixed, paper §4.1).

Candidate elimination stays on: the mixer runs on the FULL search map, in which tokens eliminated by earlier CE
blocks are zeros (**choice**: the conv blocks need the grid); afterwards only the kept tokens return to the
sequence. With OSTrack's CE blocks 3, 6, 9 the first mixer (after block 2) sees every token.

Two forms: the supernet form (``genome=None``: every mixer holds all 4 choices; each call gets a genome, as in
the mixer-only search) and the fixed form for one genome (:meth:`VLTOST.extract`, or built with ``genome=``).

Language: ``language`` B×d (``None``: zero vectors, Alg. 1's ``zero``). Pairs flagged by
``use_template_language`` (the ``template`` strategy) use, at every mixer position, the ROI-aligned template
feature inside ``template_box`` instead of ``Linear_k(f_l)`` in both branches (as the VLT supernet does). The
contrastive loss (Eq. 2-4) is computed at the ``contrastive_stages`` (``template.s1``/``search.s1`` = first mixer
position, Table 11 ⑦) with ``e_v`` the ROI-aligned ground-truth box on the mixer's input map and
``e_l = Linear_k(f_l)``; pairs without real language (all-zero vector or template language) are left out.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from asearch.errors import ArchitectureError, ConfigError
from search_spaces.genome import Genome
from supernets.contrastive import ContrastiveAlignment, contrastive_mask
from supernets.modamixer import ALL_CHOICES, ModaMixer
from supernets.roi import roi_pool_vector
from trackers.backbones.vit import VisionTransformerCE, load_vit_weights
from trackers.heads.center import CenterHead

__all__ = ["ViTConfig", "CenterHeadConfig", "MixerConfig", "OSTrackModelConfig", "OSTrack", "VLTOST",
           "build_ostrack_model", "ost_search_space", "check_ost_genome", "OSTRACK", "VLT_OST"]

_STAGE_LABEL = re.compile(r"^(template|search)\.s([1-9][0-9]*)$")
BRANCHES = ("template", "search")


# ----------------------------------------------------------------------------------------------------------------------
# configs
@dataclass
class ViTConfig:
    """The one-stream ViT (``model.vit``); defaults: OSTrack's ViT-B/16 with CE at blocks 3, 6, 9 keeping 0.7.

    ``pretrained``: a local MAE / timm ViT state-dict file (``null``: random initialisation).
    """

    patch_size: int = 16
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    drop_path: float = 0.1
    ce_layers: List[int] = field(default_factory=lambda: [3, 6, 9])
    ce_keep_ratio: float = 0.7
    ce_template_range: str = "ctr_point"
    pretrained: Optional[str] = None


@dataclass
class CenterHeadConfig:
    """Center head width (``model.head.channels``, OSTrack 256; a multiple of 8)."""

    channels: int = 256


@dataclass
class MixerConfig:
    """ModaMixers of VLT_OST (``model.mixer``): one after every ``every`` ViT blocks.

    ``language_dim``: d of the language vectors (768 BERT-base, 384 the packaged MiniLM; 4d for attribute words);
    ``affine_bn``: affine BatchNorms in the mixer blocks (the supernet's are not); ``contrastive_stages``: mixer
    positions with the contrastive loss (``template.s1`` = first position); ``contrastive_gather``: global
    negatives under DDP (see :mod:`supernets.contrastive`); ``roi_output``: ROI-align samples per side for e_v and
    the template-language vector.
    """

    every: int = 3
    language_dim: int = 768
    affine_bn: bool = False
    contrastive_stages: List[str] = field(default_factory=lambda: ["template.s1", "search.s1"])
    contrastive_init_scale: float = 1.0 / 0.07
    contrastive_gather: bool = False
    roi_output: int = 3


@dataclass
class OSTrackModelConfig:
    """Model section of the OSTrack family (``name``: ``ostrack`` or ``vlt_ost``).

    ``genome`` (vlt_ost): the official list-of-lists ``[[], [], [n mixer genes], [n mixer genes]]`` for a fixed
    network; ``null`` builds the supernet form (all 4 choices per mixer, a genome per call).
    """

    name: str = "vlt_ost"
    template_size: int = 128
    search_size: int = 256
    vit: ViTConfig = field(default_factory=ViTConfig)
    head: CenterHeadConfig = field(default_factory=CenterHeadConfig)
    mixer: MixerConfig = field(default_factory=MixerConfig)
    genome: Optional[List[List[int]]] = None

    def __post_init__(self) -> None:
        if self.name not in ("ostrack", "vlt_ost"):
            raise ConfigError(f"model.name {self.name!r} is not of the OSTrack family (ostrack, vlt_ost)")
        if self.name == "vlt_ost":
            if self.mixer.every < 1 or self.vit.depth // self.mixer.every < 1:
                raise ConfigError(f"model.mixer.every must be in 1..{self.vit.depth} (model.vit.depth), got "
                                  f"{self.mixer.every}")
            n = self.vit.depth // self.mixer.every
            for i, label in enumerate(self.mixer.contrastive_stages):
                m = _STAGE_LABEL.match(str(label))
                if not m or int(m.group(2)) > n:
                    raise ConfigError(f"model.mixer.contrastive_stages[{i}]: {label!r} is not one of "
                                      f"template.s1..s{n} / search.s1..s{n}")
            if self.genome is not None:
                check_ost_genome(self.genome, n)
        elif self.genome is not None:
            raise ConfigError("model.genome is only for vlt_ost (OSTrack has no searched part)")

    @property
    def num_mixers(self) -> int:
        """Mixer positions per branch (``vit.depth // mixer.every``)."""
        return self.vit.depth // self.mixer.every


def check_ost_genome(genome: Any, num_mixers: int) -> Genome:
    """A VLT_OST genome (``Genome`` or official list-of-lists) with empty backbone parts and ``num_mixers`` mixer
    genes per branch; :class:`ArchitectureError` naming the field otherwise."""
    if not isinstance(genome, Genome):
        genome = Genome.from_official(genome)
    for name in ("template", "search"):
        if getattr(genome, name):
            raise ArchitectureError(f"genome field '{name}': VLT_OST searches no backbone genes (its ViT is fixed), "
                                    f"got {len(getattr(genome, name))}: an architecture of a VLT_SCAR / VLT_TT search "
                                    "does not fit. Pretrain experiments/vlt_ost/supernet.yaml, search it with "
                                    "experiments/vlt_ost/search.yaml and export that search's architecture")
    for name in ("template_mixer", "search_mixer"):
        if len(getattr(genome, name)) != num_mixers:
            raise ArchitectureError(f"genome field '{name}': {len(getattr(genome, name))} genes, this VLT_OST has "
                                    f"{num_mixers} mixer positions")
    return genome


def ost_search_space(num_mixers: int, every: int = 3, dim: int = 768, patch_size: int = 16, template_size: int = 128,
                     search_size: int = 256, language_dim: int = 768) -> Any:
    """The ``vlt_ost`` search space of a VLT_OST with ``num_mixers`` positions, one "stage" of ``every`` ViT blocks
    per position (so its ``num_stages`` is ``num_mixers`` and its genomes have that many genes per branch)."""
    from search_spaces import build_space

    if every < 2:
        raise ConfigError("model.mixer.every must be >= 2 to declare the VLT_OST search space (stages of >= 2 layers)")
    return build_space("vlt_ost", stage_repeats=(every,) * num_mixers, stage_channels=(dim,) * num_mixers,
                       template_size=template_size, search_size=search_size, language_dim=language_dim,
                       patch_size=patch_size, vit_dim=dim)


# ----------------------------------------------------------------------------------------------------------------------
# models
class OSTrack(nn.Module):
    """The vision-only OSTrack: ``backbone`` (:class:`VisionTransformerCE`) and ``head`` (:class:`CenterHead`).

    ``forward`` (training) / ``template`` + ``track`` (tracking: the template's patch tokens are cached per video)
    return ``score_map``, ``size_map``, ``offset_map``, ``pred_boxes`` (normalised ``cx, cy, w, h``) and
    ``keep_index`` (search tokens kept by CE). Language arguments are accepted and ignored.
    """

    uses_language = False
    needs_genome = False

    def __init__(self, backbone: VisionTransformerCE, head: CenterHead):
        super().__init__()
        if head.in_channels != backbone.dim:
            raise ArchitectureError(f"center head input {head.in_channels} differs from the ViT width {backbone.dim}")
        self.backbone = backbone
        self.head = head
        self.template_size, self.search_size = backbone.template_size, backbone.search_size
        self.stride = backbone.patch_size
        self.feat_size = backbone.grid_x

    def _run(self, z_tokens: torch.Tensor, search: torch.Tensor, ce_keep_ratio: Optional[float],
             hook_state: Optional[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        out = self.backbone.forward_tokens(z_tokens, self.backbone.embed_search(search), ce_keep_ratio)
        result = self.head(out["search"])
        result["keep_index"] = out["keep_index"]
        return result

    def forward(self, template: torch.Tensor, search: torch.Tensor, language: Optional[torch.Tensor] = None,
                genome: Any = None, template_box: Optional[torch.Tensor] = None,
                search_box: Optional[torch.Tensor] = None, use_template_language: Optional[torch.Tensor] = None,
                ce_keep_ratio: Optional[float] = None, language_mask: Optional[torch.Tensor] = None
                ) -> Dict[str, torch.Tensor]:
        """Training forward on a pair batch (images 0..255); ``ce_keep_ratio`` overrides the CE ratio. OSTrack
        ignores the language, its flags and ``language_mask``; VLT_OST adds ``contrastive`` (see
        :meth:`training_state`)."""
        state = self.template(template, language, genome, template_box, use_template_language)
        return self._run(state["z"], search, ce_keep_ratio, self.training_state(state, template_box, search_box,
                                                                               language_mask))

    def training_state(self, state: Dict[str, Any], template_box: Optional[torch.Tensor],
                       search_box: Optional[torch.Tensor], language_mask: Optional[torch.Tensor]) -> Dict[str, Any]:
        """The template state plus what only a training forward has (here the search box)."""
        return {**state, "search_box": search_box}

    def template(self, template: torch.Tensor, language: Optional[torch.Tensor] = None, genome: Any = None,
                 template_box: Optional[torch.Tensor] = None, use_template_language: Optional[torch.Tensor] = None
                 ) -> Dict[str, Any]:
        """Once per video: ``{'z': template tokens B×Nz×C}`` (batch-first)."""
        return {"z": self.backbone.embed_template(template)}

    def track(self, search: torch.Tensor, state: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        """One frame of each video of the batch, given :meth:`template`'s state."""
        return self._run(state["z"], search, None, state)


class VLTOST(OSTrack):
    """OSTrack with ModaMixers after every ``mixer_every`` ViT blocks (module docstring).

    Args:
        backbone, head: as :class:`OSTrack`.
        language_dim: d of the language vectors.
        mixer_every: ViT blocks per mixer position (3).
        genome: ``None`` for the supernet form, else the fixed genome (``Genome`` or official list-of-lists).
        affine_bn: affine BatchNorms in the mixer blocks.
        contrastive_stages: e.g. ``("template.s1", "search.s1")``; empty: no contrastive loss.
        contrastive_init_scale: initial logit scale (CLIP: 1/0.07).
        roi_output: ROI-align samples per side.
        contrastive_gather: global negatives under DDP (:class:`~supernets.contrastive.ContrastiveAlignment`).
    """

    uses_language = True

    def __init__(self, backbone: VisionTransformerCE, head: CenterHead, language_dim: int = 768, mixer_every: int = 3,
                 genome: Any = None, affine_bn: bool = False,
                 contrastive_stages: Sequence[str] = ("template.s1", "search.s1"),
                 contrastive_init_scale: float = 1.0 / 0.07, roi_output: int = 3, contrastive_gather: bool = False):
        super().__init__(backbone, head)
        if mixer_every < 1 or backbone.depth // mixer_every < 1:
            raise ArchitectureError(f"mixer_every must be in 1..{backbone.depth}, got {mixer_every}")
        self.mixer_every = int(mixer_every)
        self.num_mixers = backbone.depth // self.mixer_every
        self.language_dim = int(language_dim)
        self.affine_bn = bool(affine_bn)
        self.genome = None if genome is None else check_ost_genome(genome, self.num_mixers)
        self.needs_genome = self.genome is None
        self.roi_output = int(roi_output)
        self.contrastive_stages = tuple(contrastive_stages)
        for label in self.contrastive_stages:
            m = _STAGE_LABEL.match(label)
            if not m or int(m.group(2)) > self.num_mixers:
                raise ArchitectureError(f"contrastive stage {label!r} is not one of template.s1..s{self.num_mixers}"
                                        f" / search.s1..s{self.num_mixers}")

        def choices(branch: str, k: int) -> Sequence[int]:
            return ALL_CHOICES if self.genome is None else (getattr(self.genome, f"{branch}_mixer")[k],)

        self.mixers = nn.ModuleDict({
            br: nn.ModuleList([ModaMixer(backbone.dim, self.language_dim, self.affine_bn, choices(br, k))
                               for k in range(self.num_mixers)])
            for br in BRANCHES})
        self.contrastive = (ContrastiveAlignment(contrastive_init_scale, gather=contrastive_gather)
                            if self.contrastive_stages else None)

    # ----- paths ---------------------------------------------------------------------------------------------------
    def search_space(self) -> Any:
        """The ``vlt_ost`` search space whose genomes this model runs (see :func:`ost_search_space`)."""
        b = self.backbone
        return ost_search_space(self.num_mixers, self.mixer_every, b.dim, b.patch_size, b.template_size,
                                b.search_size, self.language_dim)

    def resolve_genome(self, genome: Any) -> Genome:
        """The genome a call runs: the given one (supernet form) or the fixed one (a given one must equal it)."""
        if self.genome is None:
            if genome is None:
                raise ArchitectureError("this VLT_OST model is the supernet form: pass the genome (path) to run")
            return check_ost_genome(genome, self.num_mixers)
        if genome is not None and check_ost_genome(genome, self.num_mixers) != self.genome:
            raise ArchitectureError(f"this VLT_OST model is fixed to genome {self.genome}, got {genome}")
        return self.genome

    def path_modules(self, genome: Any) -> List[nn.Module]:
        """Mixer modules that ``genome`` runs (Linear_k and the chosen block of every mixer)."""
        genome = self.resolve_genome(genome)
        mods: List[nn.Module] = []
        for br in BRANCHES:
            for k, g in enumerate(getattr(genome, f"{br}_mixer")):
                mixer: ModaMixer = self.mixers[br][k]  # type: ignore[assignment]
                mods += [mixer.linear, mixer.blocks.block(g)]
        return mods

    def off_path_parameters(self, genome: Any) -> List[nn.Parameter]:
        """Mixer-block parameters not on ``genome`` (the ViT, head, Linear_k and contrastive scale always are)."""
        if self.genome is not None:
            return []
        on = {id(p) for m in self.path_modules(genome) for p in m.parameters()}
        return [p for p in self.mixers.parameters() if id(p) not in on]

    def extract(self, genome: Any) -> "VLTOST":
        """The fixed form for ``genome`` with this model's weights (ViT, head, chosen mixer blocks, Linear_k)."""
        genome = check_ost_genome(genome, self.num_mixers)
        fixed = VLTOST(copy.deepcopy(self.backbone), copy.deepcopy(self.head), self.language_dim, self.mixer_every,
                       genome, self.affine_bn, self.contrastive_stages, 1.0 / 0.07, self.roi_output,
                       self.contrastive is not None and self.contrastive.gather)
        own = self.state_dict()
        state = fixed.state_dict()
        missing = [k for k in state if k not in own]
        if missing:
            raise ArchitectureError(f"extract: key '{missing[0]}' of the fixed network has no source in this model")
        fixed.load_state_dict({k: own[k] for k in state}, strict=True)
        return fixed.to(next(self.parameters()).device)

    # ----- forward -------------------------------------------------------------------------------------------------
    def _language(self, language: Optional[torch.Tensor], batch: int, like: torch.Tensor) -> torch.Tensor:
        if language is None:
            return like.new_zeros(batch, self.language_dim)
        if language.dim() != 2 or language.shape != (batch, self.language_dim):
            raise ValueError(f"VLT_OST: language must be B×{self.language_dim} (B = {batch}), got "
                             f"{tuple(language.shape)}; language_dim is model.mixer.language_dim")
        return language.to(device=like.device, dtype=like.dtype)

    def template(self, template: torch.Tensor, language: Optional[torch.Tensor] = None, genome: Any = None,
                 template_box: Optional[torch.Tensor] = None, use_template_language: Optional[torch.Tensor] = None
                 ) -> Dict[str, Any]:
        """Once per video: template tokens ``z``, ``language`` (zeros without), ``use_template_language`` flags and
        ``template_box`` (zeros when no item uses the template strategy) and the ``genome``."""
        z = self.backbone.embed_template(template)
        b = z.shape[0]
        # every video's state has the same keys (the tracker concatenates states of videos added at different times)
        flags = torch.zeros(b, dtype=torch.bool, device=z.device)
        box = z.new_zeros(b, 4)
        if use_template_language is not None:
            flags = torch.as_tensor(use_template_language, device=z.device).bool().view(-1)
            if flags.numel() != b:
                raise ValueError(f"use_template_language must hold one flag per item ({b}), got {flags.numel()}")
            if bool(flags.any()):
                if template_box is None:
                    raise ValueError("use_template_language needs template_box (the ROI of the template)")
                box = template_box.to(device=z.device, dtype=z.dtype)
        return {"z": z, "language": self._language(language, b, z), "genome": self.resolve_genome(genome),
                "use_template_language": flags, "template_box": box}

    def _run(self, z_tokens: torch.Tensor, search: torch.Tensor, ce_keep_ratio: Optional[float],
             hook_state: Optional[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        state = hook_state or {}
        genome: Genome = state["genome"]
        language: torch.Tensor = state["language"]
        use_tl: Optional[torch.Tensor] = state.get("use_template_language")
        if use_tl is not None and not bool(use_tl.any()):
            use_tl = None
        tl_box: Optional[torch.Tensor] = state.get("template_box")
        boxes = {"template": state.get("template_box_gt"), "search": state.get("search_box")}
        scale = 1.0 / self.backbone.patch_size
        terms: List[Tuple[torch.Tensor, torch.Tensor]] = []

        def hook(k: int, z_map: torch.Tensor, x_map: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
            maps = {"template": z_map, "search": x_map}
            selectors = {}
            tl_vec = None
            if use_tl is not None:  # template strategy: ROI of the template box on this stage's template map
                tl_vec = roi_pool_vector(z_map, tl_box, self.roi_output, scale)
            for br in BRANCHES:
                mixer: ModaMixer = self.mixers[br][k]  # type: ignore[assignment]
                e_l = mixer.project(language)  # Linear_k(f_l)
                selectors[br] = e_l if tl_vec is None else torch.where(use_tl[:, None], tl_vec, e_l)
                box = boxes[br]
                if box is not None and f"{br}.s{k + 1}" in self.contrastive_stages:
                    terms.append((roi_pool_vector(maps[br], box, self.roi_output, scale), e_l))
            out = []
            for br in BRANCHES:
                f_v = maps[br]
                mixer = self.mixers[br][k]  # type: ignore[assignment]
                out.append(mixer(f_v, selectors[br], f_v, getattr(genome, f"{br}_mixer")[k]))  # Eq. 1
            return out[0], out[1]

        out = self.backbone.forward_tokens(z_tokens, self.backbone.embed_search(search), ce_keep_ratio, hook,
                                           self.mixer_every)
        result = self.head(out["search"])
        result["keep_index"] = out["keep_index"]
        if terms and self.contrastive is not None:
            mask = contrastive_mask(language, use_tl, state.get("language_mask"))
            result["contrastive"] = torch.stack([self.contrastive(e_v, e_l, mask) for e_v, e_l in terms]).mean()
        return result

    def training_state(self, state: Dict[str, Any], template_box: Optional[torch.Tensor],
                       search_box: Optional[torch.Tensor], language_mask: Optional[torch.Tensor]) -> Dict[str, Any]:
        """With ``template_box`` / ``search_box`` (B×4 ``x1, y1, x2, y2`` crop pixels) at the contrastive stages the
        training output also holds ``contrastive`` (Eq. 2-4) over the pairs of
        :func:`~supernets.contrastive.contrastive_mask` (``language_mask``: B bool from the data path)."""
        dtype = state["z"].dtype
        return {**state, "language_mask": language_mask,
                "template_box_gt": None if template_box is None else template_box.to(dtype),
                "search_box": None if search_box is None else search_box.to(dtype)}


# ----------------------------------------------------------------------------------------------------------------------
# builders and registry entries
def build_ostrack_model(cfg: OSTrackModelConfig, pretrained: bool = True) -> OSTrack:
    """Build ``ostrack`` or ``vlt_ost`` from its model config; ``pretrained`` loads ``vit.pretrained`` when set."""
    v = cfg.vit
    vit = VisionTransformerCE(v.patch_size, v.dim, v.depth, v.heads, v.mlp_ratio, True, v.drop_path,
                              cfg.template_size, cfg.search_size, v.ce_layers, v.ce_keep_ratio, v.ce_template_range)
    if pretrained and v.pretrained:
        load_vit_weights(vit, v.pretrained)
    head = CenterHead(v.dim, cfg.head.channels)
    if cfg.name == "ostrack":
        return OSTrack(vit, head)
    m = cfg.mixer
    return VLTOST(vit, head, m.language_dim, m.every, cfg.genome, m.affine_bn, m.contrastive_stages,
                  m.contrastive_init_scale, m.roi_output, m.contrastive_gather)


def _entry(language_dim_key: Optional[str] = None):
    from trackers.init_report import PretrainedKey

    from trackers.inference.ostrack import OSTrackTrackerConfig
    from trackers.losses.ostrack import OSTrackLossConfig
    from trackers.registry import Lazy, ModelEntry

    return ModelEntry(OSTrackModelConfig, OSTrackLossConfig, OSTrackTrackerConfig, build_ostrack_model,
                      Lazy("trackers.actors.ostrack:OSTrackActor"), Lazy("trackers.inference.ostrack:OSTrackTracker"),
                      language_dim_key,
                      (PretrainedKey("vit.pretrained", "the MAE ViT-B/16 encoder (mae_pretrain_vit_base.pth)"),))


#: registry entries (``trackers.registry.ENTRIES``: ``ostrack``, ``vlt_ost``)
OSTRACK = _entry()
VLT_OST = _entry("mixer.language_dim")
