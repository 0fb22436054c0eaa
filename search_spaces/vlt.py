"""The VLT search space (paper 000 §3.3, Tables 2-3), declared with ``nni.mutable``.

One ``Categorical([0, 1, 2, 3])`` per searched gene (SPOS choices: 0/1/2 = ShuffleNetV2 k3/k5/k7, 3 =
Shuffle-Xception), gathered in a ``MutableDict`` at :attr:`VLTSpace.mutable` so that any nni strategy can sample it
and nni validates every sample. Three variants:

* ``asymmetric`` (name ``vlt``, the paper's ASearch): 48 genes, ``template.s1.b0 .. template.s4.b3`` (20),
  ``search.s1.b0 .. search.s4.b3`` (20), ``mixer.template.s1 .. s4`` (4), ``mixer.search.s1 .. s4`` (4).
* ``symmetric`` (name ``vlt_symmetric``, the Table 12a ablation): only the template backbone genes and the 8 mixer
  genes are declared (28 Categoricals); the search backbone mirrors the template one. A sample or official list may
  carry the ``search.*`` genes too, but they must equal the template ones.
* ``ost`` (name ``vlt_ost``, VLT_OST, paper §4.1): the ViT backbone is fixed, only the 8 mixer genes are searched;
  its genomes have empty template/search tuples (official form ``[[], [], [4], [4]]``). Default input sizes 128/256
  (OSTrack-256), token grids ``size // patch_size``.

Every error about a genome raises :class:`asearch.errors.ArchitectureError` naming the label and the value.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import nni.mutable as nm

from asearch.config import from_dict as _config_from_dict
from asearch.errors import ArchitectureError, ConfigError
from search_spaces import cost as _cost
from search_spaces.genome import NUM_CHOICES, Genome, backbone_labels, mixer_labels

__all__ = ["SPACE_VERSION", "VARIANTS", "SPACES", "VLTSpace", "build_space", "space_names"]

#: version of the space definition written into architecture JSON files
SPACE_VERSION = "1.0"
#: variant -> registry name
VARIANTS: Dict[str, str] = {"asymmetric": "vlt", "symmetric": "vlt_symmetric", "ost": "vlt_ost"}
#: registry name -> field defaults of that space
SPACES: Dict[str, Dict[str, Any]] = {name: {"variant": variant} for variant, name in VARIANTS.items()}
_DEFAULT_SIZES = {"asymmetric": (127, 255), "symmetric": (127, 255), "ost": (128, 256)}
_CHOICES: Tuple[int, ...] = tuple(range(NUM_CHOICES))

RandomLike = Union[None, int, np.random.Generator]


def _rng(seed: RandomLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    raise TypeError(f"expected an int seed, None or numpy.random.Generator, got {type(seed).__name__}")


@dataclass(frozen=True)
class VLTSpace:
    """The VLT search space: configuration fields plus the nni declaration at :attr:`mutable`.

    ``template_size``/``search_size`` default to 127/255 (128/256 for ``ost``); ``width_mult`` scales the stem and
    stage widths through ``make_divisible`` (CNN variants only); ``patch_size``/``vit_dim`` only matter for ``ost``;
    ``shared_branches`` is the default weight-sharing assumption of :meth:`cost`. ``name`` defaults to the registry
    name of the variant.
    """

    variant: str = "asymmetric"
    width_mult: float = 1.0
    stage_repeats: Tuple[int, ...] = (4, 4, 8, 4)
    stage_channels: Tuple[int, ...] = (64, 160, 320, 640)
    stem_channels: int = 16
    template_size: Optional[int] = None
    search_size: Optional[int] = None
    language_dim: int = 768
    patch_size: int = 16
    vit_dim: int = 768
    shared_branches: bool = True
    name: Optional[str] = None
    version: str = SPACE_VERSION
    mutable: nm.MutableDict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        def bad(name: str, message: str) -> ConfigError:
            return ConfigError(f"search space field '{name}': {message}")

        if self.variant not in VARIANTS:
            raise bad("variant", f"got {self.variant!r}, expected one of {sorted(VARIANTS)}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        set_("stage_repeats", tuple(int(r) for r in self.stage_repeats))
        set_("stage_channels", tuple(int(c) for c in self.stage_channels))
        t, s = _DEFAULT_SIZES[self.variant]
        set_("template_size", t if self.template_size is None else int(self.template_size))
        set_("search_size", s if self.search_size is None else int(self.search_size))
        set_("name", VARIANTS[self.variant] if self.name is None else str(self.name))
        if not self.width_mult > 0:
            raise bad("width_mult", f"must be > 0, got {self.width_mult}")
        if not self.stage_repeats or any(r < 2 for r in self.stage_repeats):
            raise bad("stage_repeats", f"every stage needs >= 2 layers (the last is the ModaMixer's Block(f_v)), "
                                       f"got {self.stage_repeats}")
        if len(self.stage_channels) != len(self.stage_repeats):
            raise bad("stage_channels", f"{len(self.stage_channels)} widths for {len(self.stage_repeats)} stages")
        for name in ("stem_channels", "template_size", "search_size", "language_dim", "patch_size", "vit_dim"):
            if int(getattr(self, name)) <= 0:
                raise bad(name, f"must be > 0, got {getattr(self, name)}")
        if any(c <= 0 for c in self.stage_channels):
            raise bad("stage_channels", f"widths must be > 0, got {self.stage_channels}")
        if self.version != SPACE_VERSION:
            raise bad("version", f"this toolkit implements search space version {SPACE_VERSION}, got "
                                 f"{self.version!r}")
        set_("mutable", nm.MutableDict({lb: nm.Categorical(list(_CHOICES), label=lb) for lb in self._declared()}))

    # ----- labels --------------------------------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        """Number of backbone stages (= ModaMixers per branch)."""
        return len(self.stage_repeats)

    def _declared(self) -> List[str]:
        mixers = mixer_labels("template", self.num_stages) + mixer_labels("search", self.num_stages)
        if self.variant == "ost":
            return mixers
        template = backbone_labels("template", self.stage_repeats)
        if self.variant == "symmetric":
            return template + mixers
        return template + backbone_labels("search", self.stage_repeats) + mixers

    @property
    def labels(self) -> List[str]:
        """Labels of the declared (free) genes, in genome order."""
        return list(self.mutable.keys())

    @property
    def num_genes(self) -> int:
        """Number of searched genes: 48 asymmetric, 28 symmetric, 8 ost (default layout)."""
        return len(self.mutable)

    @property
    def genome_length(self) -> int:
        """Length of a :class:`Genome` of this space (the symmetric one stores the mirrored search genes too)."""
        backbone = 0 if self.variant == "ost" else 2 * sum(self.stage_repeats)
        return backbone + 2 * self.num_stages

    # ----- validation and conversions ------------------------------------------------------------------------------
    def _check_sample(self, sample: Mapping[str, Any]) -> Dict[str, int]:
        """Validate a sample with nni; return the declared genes as plain ints (symmetric mirror checked)."""
        if not isinstance(sample, Mapping):
            raise ArchitectureError(f"architecture sample: expected a mapping label -> value, got {type(sample).__name__}")
        declared = set(self.mutable.keys())
        mirrored = set(backbone_labels("search", self.stage_repeats)) if self.variant == "symmetric" else set()
        unknown = [k for k in sample if k not in declared and k not in mirrored]
        if unknown:
            raise ArchitectureError(
                f"architecture gene '{unknown[0]}' is not a label of search space '{self.name}' "
                f"(labels: {self.labels[0]} ... {self.labels[-1]})")
        for label, value in sample.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ArchitectureError(f"architecture gene '{label}': value {value!r} is not one of {list(_CHOICES)}")
        try:
            self.mutable.validate(dict(sample))
        except nm.SampleMissingError as exc:
            missing = next(lb for lb in self.labels if lb not in sample)
            raise ArchitectureError(f"architecture gene '{missing}' is missing from the sample") from exc
        except nm.SampleValidationError as exc:
            label = next(lb for lb in self.labels if lb in sample and int(sample[lb]) not in _CHOICES)
            raise ArchitectureError(
                f"architecture gene '{label}': value {sample[label]!r} is not one of {list(_CHOICES)} "
                f"(nni: {exc})") from exc
        out = {lb: int(sample[lb]) for lb in self.labels}
        for lb in mirrored & set(sample):
            twin = "template" + lb[len("search"):]
            if int(sample[lb]) != out[twin]:
                raise ArchitectureError(
                    f"architecture gene '{lb}': value {sample[lb]!r} differs from '{twin}' = {out[twin]}; the "
                    f"symmetric space mirrors the template backbone into the search backbone")
        return out

    def _genome_from_free(self, free: Mapping[str, int]) -> Genome:
        n = self.num_stages
        tm = tuple(free[lb] for lb in mixer_labels("template", n))
        sm = tuple(free[lb] for lb in mixer_labels("search", n))
        if self.variant == "ost":
            return Genome((), (), tm, sm)
        template = tuple(free[lb] for lb in backbone_labels("template", self.stage_repeats))
        if self.variant == "symmetric":
            return Genome(template, template, tm, sm)
        search = tuple(free[lb] for lb in backbone_labels("search", self.stage_repeats))
        return Genome(template, search, tm, sm)

    def _labelled(self, parts: Sequence[Sequence[Any]]) -> Dict[str, Any]:
        """The genes of the four parts (template, search, template mixers, search mixers) by label, each part's
        length checked against this space (:class:`ArchitectureError` naming the field)."""
        backbone = 0 if self.variant == "ost" else sum(self.stage_repeats)
        expected = (backbone, backbone, self.num_stages, self.num_stages)
        for name, part, n in zip(("template", "search", "template_mixer", "search_mixer"), parts, expected):
            if len(part) != n:
                raise ArchitectureError(
                    f"genome field '{name}': {len(part)} genes, search space '{self.name}' needs {n}")
        labels: List[str] = []
        if backbone:
            labels += backbone_labels("template", self.stage_repeats) + backbone_labels("search", self.stage_repeats)
        labels += mixer_labels("template", self.num_stages) + mixer_labels("search", self.num_stages)
        return dict(zip(labels, (v for part in parts for v in part)))

    def _full_sample(self, genome: Genome) -> Dict[str, int]:
        """Every gene of ``genome`` by label (including mirrored search genes), lengths checked."""
        return self._labelled((genome.template, genome.search, genome.template_mixer, genome.search_mixer))

    def validate(self, genome: Union[Genome, Mapping[str, Any], Sequence[Sequence[int]]]) -> Genome:
        """Check a :class:`Genome`, an nni sample dict or the official list-of-lists; return the :class:`Genome`.

        Values are validated by nni (``MutableDict.validate``); any problem raises :class:`ArchitectureError` naming
        the label and the value.
        """
        if isinstance(genome, Genome):
            sample = self._full_sample(genome)
        elif isinstance(genome, Mapping):
            sample = dict(genome)
        elif isinstance(genome, (list, tuple)):
            return self.from_official(genome)
        else:
            raise ArchitectureError(
                f"architecture: expected a Genome, an nni sample dict or the official list-of-lists, got "
                f"{type(genome).__name__}")
        return self._genome_from_free(self._check_sample(sample))

    def contains(self, genome: Union[Genome, Mapping[str, Any], Sequence[Sequence[int]]]) -> bool:
        """Whether :meth:`validate` accepts ``genome``."""
        try:
            self.validate(genome)
        except ArchitectureError:
            return False
        return True

    def to_sample(self, genome: Genome) -> Dict[str, int]:
        """The nni sample ``{label: value}`` of the declared genes (symmetric: without the mirrored search genes)."""
        genome = self.validate(genome)
        full = self._full_sample(genome)
        return {lb: full[lb] for lb in self.labels}

    def from_sample(self, sample: Mapping[str, Any]) -> Genome:
        """Build the :class:`Genome` of an nni sample (validated)."""
        return self.validate(dict(sample))

    def to_official(self, genome: Genome) -> List[List[int]]:
        """The official VLT form ``[[template], [search], [template mixers], [search mixers]]``."""
        return self.validate(genome).to_official()

    def from_official(self, lists: Sequence[Sequence[int]]) -> Genome:
        """Parse and validate the official list-of-lists form."""
        if not isinstance(lists, (list, tuple)) or len(lists) != 4 or \
                not all(isinstance(x, (list, tuple)) for x in lists):
            raise ArchitectureError(
                f"architecture genome: expected [[template], [search], [template mixers], [search mixers]] "
                f"(4 lists), got {lists!r}")
        return self.validate(self._labelled(lists))

    # ----- sampling and evolution ----------------------------------------------------------------------------------
    def random(self, seed: RandomLike = None) -> Genome:
        """A uniformly random genome (each declared gene uniform over its choices); ``seed`` is an int, ``None`` or a
        ``numpy.random.Generator`` (consumed in place)."""
        rng = _rng(seed)
        free = {lb: int(cat.values[int(rng.integers(len(cat.values)))]) for lb, cat in self.mutable.items()}
        return self.validate(free)

    def fair_paths(self, seed: RandomLike = None) -> List[Genome]:
        """FairNAS strict-fair paths (Chu et al. 2021, "FairNAS", Alg. 1): ``m`` genomes, ``m`` the largest choice
        count, in which every declared gene takes each of its choices exactly once (an independent random
        permutation per gene). A gene with fewer choices than ``m`` cycles through its permutation (strictly fair
        only when every gene has ``m`` choices, as in all VLT variants)."""
        rng = _rng(seed)
        cats = list(self.mutable.items())
        m = max(len(cat.values) for _, cat in cats)
        perms = {lb: rng.permutation(len(cat.values)) for lb, cat in cats}
        return [self.validate({lb: int(cat.values[int(perms[lb][k % len(cat.values)])]) for lb, cat in cats})
                for k in range(m)]

    def mutate(self, genome: Genome, prob: float, rng: RandomLike = None) -> Genome:
        """SPOS mutation: each declared gene is redrawn uniformly (it may keep its value) with probability ``prob``.

        The symmetric space mutates the template genes and mirrors them. The result may equal the input.
        """
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"mutation probability must be in [0, 1], got {prob}")
        r = _rng(rng)
        free = self.to_sample(genome)
        for lb, cat in self.mutable.items():
            if r.random() < prob:
                free[lb] = int(cat.values[int(r.integers(len(cat.values)))])
        return self.validate(free)

    def crossover(self, a: Genome, b: Genome, rng: RandomLike = None) -> Genome:
        """SPOS uniform crossover: each declared gene comes from ``a`` or ``b`` with probability 1/2."""
        r = _rng(rng)
        sa, sb = self.to_sample(a), self.to_sample(b)
        return self.validate({lb: sa[lb] if r.random() < 0.5 else sb[lb] for lb in self.labels})

    # ----- cost ----------------------------------------------------------------------------------------------------
    def cost(self, genome: Genome, shared_branches: Optional[bool] = None, affine: bool = False) -> Dict[str, int]:
        """Exact ``flops``/``params`` (whole model) and per branch (``flops_template``, ``params_search``, ...).

        See :mod:`search_spaces.cost`; FLOPs are MACs of conv and linear layers at the space's input sizes.
        """
        return _cost.genome_cost(self, self.validate(genome), shared_branches, affine)

    def cost_table(self, affine: bool = False) -> _cost.CostTable:
        """The cached per-layer cost table of this space."""
        return _cost.build_cost_table(self, affine)

    # ----- serialisation -------------------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Plain-data description of the space (for the architecture JSON); inverse of :meth:`from_dict`."""
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "search space") -> "VLTSpace":
        """Rebuild a space from :meth:`to_dict` output; unknown keys or bad values raise :class:`ArchitectureError`."""
        try:
            return _config_from_dict(cls, data, source=source)
        except ConfigError as exc:
            raise ArchitectureError(str(exc)) from None


def space_names() -> List[str]:
    """Registered space names."""
    return sorted(SPACES)


def build_space(name: str = "vlt", **overrides: Any) -> VLTSpace:
    """Build a registered space (``vlt``, ``vlt_symmetric``, ``vlt_ost``) with field ``overrides``."""
    if name not in SPACES:
        raise ConfigError(f"unknown search space '{name}' (known: {', '.join(space_names())})")
    fields = {f.name for f in dataclasses.fields(VLTSpace) if f.init}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"search space '{name}': unknown field '{unknown[0]}' (fields: {', '.join(sorted(fields))})")
    kwargs = dict(SPACES[name])
    kwargs.update(overrides)
    return VLTSpace(**kwargs)
