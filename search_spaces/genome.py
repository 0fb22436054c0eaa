"""The genome: one path through the VLT supernet (template backbone, search backbone, template and search mixers).

Gene values are SPOS choices: 0 = ShuffleNetV2 k3, 1 = k5, 2 = k7, 3 = Shuffle-Xception. The standard asymmetric
space has 20 + 20 + 4 + 4 = 48 genes; the VLT_OST variant has no backbone genes and 4 + 4 mixer genes.

Labels (nni sample keys): ``template.s{stage}.b{block}`` and ``search.s{stage}.b{block}`` (stage 1..4, block 0-based
within the stage), ``mixer.template.s{stage}``, ``mixer.search.s{stage}``. The official VLT code writes a genome
as a list of lists ``[[20 ints], [20 ints], [4 ints], [4 ints]]``: :meth:`Genome.to_official` /
:meth:`Genome.from_official`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from asearch.errors import ArchitectureError

__all__ = ["Genome", "STAGE_REPEATS", "NUM_CHOICES", "backbone_labels", "mixer_labels"]

#: choice layers per stage (SPOS ShuffleNetV2 layout)
STAGE_REPEATS: Tuple[int, ...] = (4, 4, 8, 4)
NUM_CHOICES = 4


def backbone_labels(branch: str, stage_repeats: Sequence[int] = STAGE_REPEATS) -> List[str]:
    """Labels of one branch's backbone genes in genome order, e.g. ``template.s1.b0`` ... ``template.s4.b3``."""
    return [f"{branch}.s{s + 1}.b{b}" for s, r in enumerate(stage_repeats) for b in range(r)]


def mixer_labels(branch: str, num_stages: int = 4) -> List[str]:
    """Labels of one branch's mixer genes, e.g. ``mixer.search.s1`` ... ``mixer.search.s4``."""
    return [f"mixer.{branch}.s{s + 1}" for s in range(num_stages)]


def _check_part(name: str, values: Sequence[int]) -> Tuple[int, ...]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "__index__")):
            raise ArchitectureError(f"genome field '{name}[{i}]': expected an integer 0..{NUM_CHOICES - 1}, got {v!r}")
        v = int(v)
        if not 0 <= v < NUM_CHOICES:
            raise ArchitectureError(f"genome field '{name}[{i}]': value {v} is outside 0..{NUM_CHOICES - 1}")
        out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class Genome:
    """An immutable, hashable path: backbone genes per branch and mixer genes per branch (gene values 0..3)."""

    template: Tuple[int, ...]
    search: Tuple[int, ...]
    template_mixer: Tuple[int, ...]
    search_mixer: Tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("template", "search", "template_mixer", "search_mixer"):
            object.__setattr__(self, name, _check_part(name, getattr(self, name)))

    # ----- forms -------------------------------------------------------------------------------------------------
    @property
    def genes(self) -> Tuple[int, ...]:
        """All genes in order template, search, template mixers, search mixers."""
        return self.template + self.search + self.template_mixer + self.search_mixer

    def __len__(self) -> int:
        return len(self.genes)

    def to_official(self) -> List[List[int]]:
        """The official VLT list-of-lists form ``[[template], [search], [template mixers], [search mixers]]``."""
        return [list(self.template), list(self.search), list(self.template_mixer), list(self.search_mixer)]

    @classmethod
    def from_official(cls, lists: Sequence[Sequence[int]]) -> "Genome":
        """Parse the official list-of-lists form (4 lists); values are checked to be 0..3."""
        if not isinstance(lists, (list, tuple)) or len(lists) != 4 or not all(isinstance(x, (list, tuple)) for x in lists):
            raise ArchitectureError(
                f"genome: expected the official form [[template], [search], [template mixers], [search mixers]] "
                f"(4 lists), got {lists!r}"
            )
        return cls(tuple(lists[0]), tuple(lists[1]), tuple(lists[2]), tuple(lists[3]))

    def labels(self, stage_repeats: Sequence[int] = STAGE_REPEATS) -> List[str]:
        """nni labels of the genes, in :attr:`genes` order."""
        t = backbone_labels("template", stage_repeats) if self.template else []
        s = backbone_labels("search", stage_repeats) if self.search else []
        return t + s + mixer_labels("template", len(self.template_mixer)) + mixer_labels("search", len(self.search_mixer))

    def to_sample(self, stage_repeats: Sequence[int] = STAGE_REPEATS) -> Dict[str, int]:
        """The nni sample dict ``{label: value}``."""
        labels = self.labels(stage_repeats)
        if len(labels) != len(self.genes):
            raise ArchitectureError(
                f"genome has {len(self.template)}/{len(self.search)} backbone genes, the layout "
                f"{tuple(stage_repeats)} needs {sum(stage_repeats)} per branch"
            )
        return dict(zip(labels, self.genes))

    @classmethod
    def from_sample(cls, sample: Dict[str, int], stage_repeats: Sequence[int] = STAGE_REPEATS,
                    num_mixers: int = 4, backbone: bool = True) -> "Genome":
        """Build from an nni sample dict; a missing label raises :class:`ArchitectureError` naming it."""
        def take(labels: List[str]) -> Tuple[int, ...]:
            missing = [lb for lb in labels if lb not in sample]
            if missing:
                raise ArchitectureError(f"genome sample: missing label '{missing[0]}'")
            return tuple(sample[lb] for lb in labels)

        t = take(backbone_labels("template", stage_repeats)) if backbone else ()
        s = take(backbone_labels("search", stage_repeats)) if backbone else ()
        return cls(t, s, take(mixer_labels("template", num_mixers)), take(mixer_labels("search", num_mixers)))

    def to_json(self) -> str:
        """Compact JSON text of the official form."""
        return json.dumps(self.to_official(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Genome":
        """Inverse of :meth:`to_json` (also accepts a flat list of 48 genes)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"genome: not valid JSON: {exc}") from None
        if isinstance(data, list) and data and all(isinstance(v, int) for v in data):
            return cls.from_flat(data)
        return cls.from_official(data)

    @classmethod
    def from_flat(cls, genes: Sequence[int], backbone_per_branch: int = 20, mixers_per_branch: int = 4) -> "Genome":
        """Split a flat gene list (template, search, template mixers, search mixers)."""
        n = 2 * backbone_per_branch + 2 * mixers_per_branch
        if len(genes) != n:
            raise ArchitectureError(f"genome: expected {n} genes, got {len(genes)}")
        b, m = backbone_per_branch, mixers_per_branch
        return cls(tuple(genes[:b]), tuple(genes[b:2 * b]), tuple(genes[2 * b:2 * b + m]), tuple(genes[2 * b + m:]))

    def stage_genes(self, branch: str, stage_repeats: Sequence[int] = STAGE_REPEATS) -> List[Tuple[int, ...]]:
        """Backbone genes of ``branch`` ('template' or 'search') grouped by stage."""
        genes = getattr(self, branch)
        out, i = [], 0
        for r in stage_repeats:
            out.append(tuple(genes[i:i + r]))
            i += r
        return out

    def __str__(self) -> str:
        return self.to_json()
