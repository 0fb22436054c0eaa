"""The VLT tracking supernet (paper 000 §3.2-3.4, Tables 2-3): SPOS backbone per branch with a ModaMixer per stage.

Structure (search-space cost in :mod:`search_spaces.cost` counts exactly this):

* input: float RGB in 0..255, B×3×H×W, turned inside into what the stem expects (``input_format``: the ImageNet
  mean/std, or BGR 0..255 for the official SPOS weights; :mod:`supernets.pixels`);
* stem ``first_conv``: Conv2d(3, C_0, 3, 2, 1, bias=False) + BN + ReLU, C_0 = make_divisible(16·w);
* stages s = 1..4 with 4/4/8/4 choice layers (``features.0`` .. ``features.19``), C_s = make_divisible(
  (64, 160, 320, 640)[s]·w); layer 0 of a stage: C_{s-1}→C_s with the projection branch, stride 2 in stages 1-2 and
  1 in stages 3-4 (total stride 8); other layers C_s→C_s, stride 1, channel-shuffle split;
* ModaMixer after every stage and branch (Eq. 1): ``f_v`` is the output of the stage's layers 0..r-2, the stage's
  LAST layer is ``Block_last`` and the mixer's searched block (4 choices, C_s→C_s, stride 1) takes
  ``Linear_s(f_l) ⊙ f_v``; the mixer output feeds the next stage and is the stage's output;
* weight sharing (SPEC §2 choice): ``shared_branches=True`` gives one backbone ``backbones.shared`` through which
  template and search take their own paths; ``False`` gives ``backbones.template`` and ``backbones.search``.
  Mixers (``mixers.{branch}.{stage-1}``) and their ``Linear_s`` are per branch always.

``variant="symmetric"`` (paper Table 12a; the ``vlt_symmetric`` space) requires the search backbone genes to equal
the template backbone genes (the mixer genes stay free), raising :class:`ArchitectureError` otherwise; it does not
change the weights.

Pairs without language, ``template`` strategy (Alg. 1 line 11, "f_l = ROI(x_v)"), **choice**: for the items flagged by
``use_template_language``, at every stage the projected language vector ``Linear_s(f_l)`` is replaced by the
ROI-aligned (template box, ``roi_output``² samples averaged) template feature ``f_v`` of that stage, and the search
branch uses the template's vector of the same stage. These items are excluded from the contrastive loss, as are
items whose language vector is all zeros (the ``zero`` strategy) or that ``language_mask`` marks False.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from asearch.config import from_dict, to_dict
from asearch.errors import ArchitectureError, ConfigError
from search_spaces.genome import STAGE_REPEATS, Genome
from supernets.blocks import make_divisible
from supernets.contrastive import ContrastiveAlignment, contrastive_mask
from supernets.modamixer import ALL_CHOICES, ChoiceLayer, ModaMixer
from supernets.pixels import PixelNormalise, check_input_format
from supernets.roi import roi_pool_vector

__all__ = ["SupernetConfig", "ChoiceBackbone", "VLTSupernet", "build_supernet", "STAGE_CHANNELS", "BRANCHES",
           "stage_channels", "stem_channels", "validate_genome"]

#: SPOS stage widths at width multiplier 1.0
STAGE_CHANNELS: Tuple[int, ...] = (64, 160, 320, 640)
#: stride of each stage's output (stages 3-4 keep stride 8)
STAGE_STRIDES: Tuple[int, ...] = (4, 8, 8, 8)
BRANCHES: Tuple[str, ...] = ("template", "search")
_STAGE_LABEL = re.compile(r"^(template|search)\.s([1-4])$")


@dataclass
class SupernetConfig:
    """Build arguments of the VLT supernet; defaults are the paper's VLT_SCAR supernet.

    ``template_size``/``search_size`` are the nominal crop sizes (cost and export); ``language_dim`` is d for
    sentences (768 for BERT-base) or 4d for attribute words; ``contrastive_stages`` lists ``branch.sN`` stages whose
    ModaMixer gets the contrastive loss (default Table 11 ⑦); ``contrastive_gather``: under DDP the contrastive
    loss takes its negatives from the global batch (all ranks, see :mod:`supernets.contrastive`); ``variant`` is
    ``asymmetric`` or ``symmetric``; ``input_format`` what the stem expects (:mod:`supernets.pixels`):
    ``imagenet_rgb`` or ``spos_bgr`` (the official SPOS ImageNet weights: BGR 0..255); a tracker model config that
    leaves it out (or null) gets ``spos_bgr`` with ``spos_checkpoint`` and ``imagenet_rgb`` without
    (:func:`trackers.registry.resolve_input_format`).
    """

    width_mult: float = 1.0
    template_size: int = 127
    search_size: int = 255
    language_dim: int = 768
    shared_branches: bool = True
    contrastive_stages: Tuple[str, ...] = ("template.s1", "search.s1")
    contrastive_init_scale: float = 1.0 / 0.07
    contrastive_gather: bool = False
    roi_output: int = 7
    affine_bn: bool = False
    variant: str = "asymmetric"
    input_format: str = "imagenet_rgb"

    def __post_init__(self) -> None:
        where = "supernet config"
        check_input_format(self.input_format)
        if not self.width_mult > 0:
            raise ConfigError(f"{where}: key 'width_mult' must be > 0, got {self.width_mult}")
        for key in ("template_size", "search_size", "language_dim", "roi_output"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{where}: key '{key}' must be >= 1, got {getattr(self, key)}")
        if not self.contrastive_init_scale > 0:
            raise ConfigError(f"{where}: key 'contrastive_init_scale' must be > 0, got {self.contrastive_init_scale}")
        if self.variant not in ("asymmetric", "symmetric"):
            raise ConfigError(f"{where}: key 'variant' must be 'asymmetric' or 'symmetric', got {self.variant!r}")
        stages = tuple(self.contrastive_stages)
        for i, label in enumerate(stages):
            if not isinstance(label, str) or not _STAGE_LABEL.match(label):
                raise ConfigError(f"{where}: key 'contrastive_stages[{i}]' must look like 'template.s1' or "
                                  f"'search.s4', got {label!r}")
        self.contrastive_stages = stages


def stem_channels(width_mult: float) -> int:
    """C_0 = make_divisible(16·w)."""
    return make_divisible(16 * width_mult)


def stage_channels(width_mult: float) -> List[int]:
    """[C_1..C_4] = make_divisible((64, 160, 320, 640)·w)."""
    return [make_divisible(c * width_mult) for c in STAGE_CHANNELS]


def stage_layer_ranges(stage_repeats: Sequence[int] = STAGE_REPEATS) -> List[range]:
    """Global layer indices of each stage, e.g. ``[range(0, 4), range(4, 8), range(8, 16), range(16, 20)]``."""
    out, start = [], 0
    for r in stage_repeats:
        out.append(range(start, start + r))
        start += r
    return out


def validate_genome(genome: Any, config: SupernetConfig) -> Genome:
    """A :class:`Genome` (or the official list-of-lists) checked against the VLT layout and ``config.variant``."""
    if not isinstance(genome, Genome):
        genome = Genome.from_official(genome)
    n = sum(STAGE_REPEATS)
    for name, size in (("template", n), ("search", n), ("template_mixer", 4), ("search_mixer", 4)):
        if len(getattr(genome, name)) != size:
            raise ArchitectureError(f"genome field '{name}': expected {size} genes for the VLT supernet, "
                                    f"got {len(getattr(genome, name))}")
    if config.variant == "symmetric":
        if genome.search != genome.template:
            raise ArchitectureError("genome field 'search': the symmetric variant needs the search backbone genes "
                                    "to equal the template backbone genes")
    return genome


class ChoiceBackbone(nn.Module):
    """SPOS backbone with the official names: ``first_conv`` (stem) and ``features.{layer}.{choice}``.

    ``layer_choices(i)`` gives the choices held at layer ``i`` (all four in the supernet).
    """

    def __init__(self, width_mult: float = 1.0, affine: bool = False,
                 layer_choices: Optional[Callable[[int], Iterable[int]]] = None) -> None:
        super().__init__()
        c0 = stem_channels(width_mult)
        widths = stage_channels(width_mult)
        self.first_conv = nn.Sequential(
            nn.Conv2d(3, c0, 3, 2, 1, bias=False),
            nn.BatchNorm2d(c0, affine=affine),
            nn.ReLU(inplace=True),
        )
        layers: List[nn.Module] = []
        inp = c0
        for s, (r, oup) in enumerate(zip(STAGE_REPEATS, widths)):
            for b in range(r):
                i = len(layers)
                choices = ALL_CHOICES if layer_choices is None else tuple(layer_choices(i))
                if b == 0:
                    layers.append(ChoiceLayer(inp, oup, 2 if s < 2 else 1, True, affine, choices))
                else:
                    layers.append(ChoiceLayer(oup, oup, 1, False, affine, choices))
            inp = oup
        self.features = nn.ModuleList(layers)


class VLTNetwork(nn.Module):
    """Common body of :class:`VLTSupernet` and :class:`supernets.subnet.VLTSubnet` (which holds fewer choices).

    ``layer_choices(backbone_name, layer)`` and ``mixer_choices(branch, stage)`` say which blocks to build.
    ``lr_mult_exempt``: a tracker that holds this network as its ``backbone`` slows only the SPOS backbone with
    ``lr_mult: {backbone: m}``; the ModaMixers and the contrastive scale are new modules and keep the full rate
    unless a prefix names them (see :mod:`asearch.training.optim`).
    """

    lr_mult_exempt: Tuple[str, ...] = ("mixers", "contrastive")

    def __init__(self, config: SupernetConfig,
                 layer_choices: Optional[Callable[[str, int], Iterable[int]]] = None,
                 mixer_choices: Optional[Callable[[str, int], Iterable[int]]] = None) -> None:
        super().__init__()
        self.config = config
        w, affine = config.width_mult, config.affine_bn
        names = ("shared",) if config.shared_branches else BRANCHES

        def per_layer(name: str) -> Optional[Callable[[int], Iterable[int]]]:
            if layer_choices is None:
                return None
            return lambda i: layer_choices(name, i)

        self.backbones = nn.ModuleDict({n: ChoiceBackbone(w, affine, per_layer(n)) for n in names})
        self.channels: List[int] = stage_channels(w)
        self.stride = 8
        self.mixers = nn.ModuleDict({
            br: nn.ModuleList([
                ModaMixer(c, config.language_dim, affine,
                          ALL_CHOICES if mixer_choices is None else tuple(mixer_choices(br, s)))
                for s, c in enumerate(self.channels)
            ])
            for br in BRANCHES
        })
        self.contrastive = (ContrastiveAlignment(config.contrastive_init_scale, gather=config.contrastive_gather)
                            if config.contrastive_stages else None)
        self.pixels = PixelNormalise(config.input_format)

    # ----- structure -----------------------------------------------------------------------------------------------
    def backbone(self, branch: str) -> ChoiceBackbone:
        """The backbone that ``branch`` ('template' or 'search') runs through."""
        if branch not in BRANCHES:
            raise ValueError(f"branch must be 'template' or 'search', got {branch!r}")
        return self.backbones["shared" if self.config.shared_branches else branch]  # type: ignore[return-value]

    def check_genome(self, genome: Any) -> Genome:
        """Accept a :class:`Genome` (or the official list-of-lists) and check it fits this network."""
        return validate_genome(genome, self.config)

    def path_modules(self, genome: Genome) -> List[nn.Module]:
        """The modules ``genome`` runs (stems, chosen blocks, chosen mixer blocks, Linear_s, contrastive scale)."""
        genome = self.check_genome(genome)
        mods: List[nn.Module] = []
        for br in BRANCHES:
            bb = self.backbone(br)
            mods.append(bb.first_conv)
            for i, g in enumerate(getattr(genome, br)):
                mods.append(bb.features[i].block(g))
            for s, g in enumerate(getattr(genome, f"{br}_mixer")):
                mixer = self.mixers[br][s]
                mods += [mixer.linear, mixer.blocks.block(g)]
        if self.contrastive is not None:
            mods.append(self.contrastive)
        return mods

    def path_parameters(self, genome: Genome) -> List[nn.Parameter]:
        """Parameters used by the path ``genome`` (each once)."""
        seen, out = set(), []
        for m in self.path_modules(genome):
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def off_path_parameters(self, genome: Genome) -> List[nn.Parameter]:
        """Parameters NOT used by ``genome`` (the trainer sets their gradients to None, as SPOS does)."""
        on = {id(p) for p in self.path_parameters(genome)}
        return [p for p in self.parameters() if id(p) not in on]

    # ----- forward -------------------------------------------------------------------------------------------------
    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """RGB 0..255 -> the input the stem expects (``config.input_format``, :mod:`supernets.pixels`)."""
        return self.pixels(image)

    def _check_language(self, language: torch.Tensor, batch: int) -> torch.Tensor:
        d = self.config.language_dim
        if language.dim() != 2 or language.shape[1] != d or language.shape[0] not in (1, batch):
            raise ValueError(f"language must be B×{d} (B = {batch}), got shape {tuple(language.shape)}; "
                             f"language_dim is set by the supernet config")
        return language

    def _run_branch(self, branch: str, image: torch.Tensor, language: torch.Tensor, genome: Genome, *,
                    use_tl: Optional[torch.Tensor] = None, tl_box: Optional[torch.Tensor] = None,
                    tl_vectors: Optional[List[Optional[torch.Tensor]]] = None,
                    box: Optional[torch.Tensor] = None) -> Tuple[List[torch.Tensor], List[Optional[torch.Tensor]],
                                                                 List[Tuple[torch.Tensor, torch.Tensor]]]:
        """One branch: stage features, per-stage template-language vectors, contrastive (e_v, e_l) terms."""
        bb = self.backbone(branch)
        language = self._check_language(language, image.shape[0])
        genes = getattr(genome, branch)
        mixer_genes = getattr(genome, f"{branch}_mixer")
        any_tl = use_tl is not None and bool(use_tl.any())
        x = bb.first_conv(self.normalise(image))
        feats: List[torch.Tensor] = []
        vectors: List[Optional[torch.Tensor]] = []
        terms: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for s, layers in enumerate(stage_layer_ranges()):
            for i in layers[:-1]:
                x = bb.features[i](x, genes[i])
            f_v = x
            last = bb.features[layers[-1]](f_v, genes[layers[-1]])  # Block_last(f_v)
            mixer: ModaMixer = self.mixers[branch][s]  # type: ignore[assignment]
            e_l = mixer.project(language)  # Linear_s(f_l)
            selector, vec = e_l, None
            if any_tl:
                if tl_vectors is None:  # template branch: ROI of the template box on f_v (Alg. 1 line 11)
                    if tl_box is None:
                        raise ValueError("use_template_language needs template_box (the ROI of the template)")
                    vec = roi_pool_vector(f_v, tl_box, self.config.roi_output, 1.0 / STAGE_STRIDES[s])
                else:
                    vec = tl_vectors[s]
                selector = torch.where(use_tl.to(f_v.device)[:, None], vec, e_l)
            vectors.append(vec)
            x = mixer(f_v, selector, last, mixer_genes[s])  # Eq. 1
            feats.append(x)
            if box is not None and f"{branch}.s{s + 1}" in self.config.contrastive_stages:
                e_v = roi_pool_vector(last, box, self.config.roi_output, 1.0 / STAGE_STRIDES[s])
                terms.append((e_v, e_l.expand_as(e_v)))
        return feats, vectors, terms

    def _forward_template(self, template: torch.Tensor, language: torch.Tensor, genome: Genome,
                          template_box: Optional[torch.Tensor] = None,
                          use_template_language: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        genome = self.check_genome(genome)
        use_tl = _as_mask(use_template_language, template.shape[0], "use_template_language")
        feats, vectors, terms = self._run_branch("template", template, language, genome, use_tl=use_tl,
                                                 tl_box=template_box, box=template_box)
        return {"features": feats, "template_vectors": vectors, "use_template_language": use_tl,
                "contrastive_terms": terms}

    def _forward_search(self, search: torch.Tensor, language: torch.Tensor, genome: Genome,
                        template_state: Dict[str, Any], search_box: Optional[torch.Tensor] = None
                        ) -> Tuple[List[torch.Tensor], List[Tuple[torch.Tensor, torch.Tensor]]]:
        genome = self.check_genome(genome)
        use_tl = template_state.get("use_template_language")
        feats, _, terms = self._run_branch("search", search, language, genome, use_tl=use_tl,
                                           tl_vectors=template_state.get("template_vectors"), box=search_box)
        return feats, terms

    def _forward(self, template: torch.Tensor, search: torch.Tensor, language: torch.Tensor, genome: Genome, *,
                 template_box: Optional[torch.Tensor] = None, search_box: Optional[torch.Tensor] = None,
                 use_template_language: Optional[torch.Tensor] = None,
                 language_mask: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        state = self._forward_template(template, language, genome, template_box, use_template_language)
        search_feats, search_terms = self._forward_search(search, language, genome, state, search_box)
        out: Dict[str, Any] = {"template": state["features"], "search": search_feats}
        terms = state["contrastive_terms"] + search_terms
        if terms and self.contrastive is not None:
            mask = contrastive_mask(language, state["use_template_language"], language_mask, terms[0][0].shape[0])
            losses = [self.contrastive(e_v, e_l, mask) for e_v, e_l in terms]
            out["contrastive"] = torch.stack(losses).mean()
        return out


def _as_mask(value: Optional[Any], batch: int, name: str) -> Optional[torch.Tensor]:
    if value is None:
        return None
    mask = torch.as_tensor(value).to(torch.bool).flatten()
    if mask.numel() != batch:
        raise ValueError(f"{name} must hold one flag per batch item ({batch}), got {mask.numel()}")
    return mask


class VLTSupernet(VLTNetwork):
    """The VLT supernet: every layer and every mixer holds all four SPOS choices; a genome picks one path."""

    def __init__(self, config: Optional[SupernetConfig] = None) -> None:
        super().__init__(config or SupernetConfig())

    def forward(self, template: torch.Tensor, search: torch.Tensor, language: torch.Tensor, genome: Genome, *,
                template_box: Optional[torch.Tensor] = None, search_box: Optional[torch.Tensor] = None,
                use_template_language: Optional[torch.Tensor] = None,
                language_mask: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Both branches on the path ``genome``.

        Returns ``{'template': [4 × B×C_s×H×W], 'search': [...]}`` and, when ``template_box``/``search_box``
        (B×4 x1,y1,x2,y2 in crop pixels) are given for configured contrastive stages, ``'contrastive'`` (scalar,
        Eq. 2-4, mean over the configured stages whose box is given). ``use_template_language`` (B bool) marks pairs
        without language under the ``template`` strategy; ``language_mask`` (B bool, optional) marks pairs with real
        language for the contrastive loss (all-zero language vectors are excluded anyway;
        :func:`~supernets.contrastive.contrastive_mask`).
        """
        return self._forward(template, search, language, genome, template_box=template_box, search_box=search_box,
                             use_template_language=use_template_language, language_mask=language_mask)

    def forward_template(self, template: torch.Tensor, language: torch.Tensor, genome: Genome,
                         template_box: Optional[torch.Tensor] = None,
                         use_template_language: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Template branch once per video: a state dict with ``features`` (4 stage outputs) for
        :meth:`forward_search`."""
        return self._forward_template(template, language, genome, template_box, use_template_language)

    def forward_search(self, search: torch.Tensor, language: torch.Tensor, genome: Genome,
                       template_state: Dict[str, Any]) -> List[torch.Tensor]:
        """Search branch for one frame, given the state of :meth:`forward_template`: the 4 stage outputs."""
        return self._forward_search(search, language, genome, template_state)[0]


def build_supernet(config: Optional[SupernetConfig] = None, **overrides: Any) -> VLTSupernet:
    """Build the VLT supernet; with no argument the paper's VLT_SCAR supernet (width 1.0, 127/255, d = 768).

    Keyword overrides are :class:`SupernetConfig` fields (unknown or badly typed ones raise ``ConfigError``).
    """
    if config is None:
        config = from_dict(SupernetConfig, overrides, source="build_supernet")
    elif overrides:
        merged = dict(to_dict(config))
        merged.update(overrides)
        config = from_dict(SupernetConfig, merged, source="build_supernet")
    return VLTSupernet(config)
