"""The architecture JSON: one file that says how to rebuild a searched subnet and why to trust it (SPEC §6).

Layout (format version 1)::

    {
      "format": "asearch-architecture", "format_version": 1,
      "space": {"name": "vlt", "version": "1.0", "config": {"variant": "asymmetric", "width_mult": 1.0, ...}},
      "genome": {"labels": {"template.s1.b0": 2, ...}, "official": [[20 ints], [20 ints], [4 ints], [4 ints]]},
      "input_sizes": {"template": 127, "search": 255},
      "flops": 1234567, "params": 89012,
      "validation": {"suc": 0.532, "protocol": "lasot", "dataset": "lasot", "split": "val",
                     "videos": 20, "frames": 11, "bn_batches": 200, "select": "spread",
                     "videos_sha256": "9f0c...", "bn_batch_size": 16, "bn_seed": 0},
      "supernet_sha256": "ab12...", "seed": 0, "toolkit_version": "0.1.0"
    }

``space.config`` is :meth:`search_spaces.VLTSpace.to_dict` (without name and version); ``genome.labels`` is the
nni sample of the space's declared genes and ``genome.official`` the official VLT form (both must agree).
``validation`` and ``supernet_sha256`` may be ``null`` (a genome typed in by hand), ``frames`` is ``null`` for full
videos. ``validation.select`` / ``videos_sha256`` (the SHA-256 of the scored video names joined by newlines) /
``bn_batch_size`` / ``bn_seed`` complete the protocol, so a score can be reproduced; files written before they
existed lack them. ``flops`` and ``params`` must equal the space's exact cost of the genome (for ``vlt_ost``: the
searched mixers only). ``model_cost`` (optional, ``vlt_ost`` exports) is the whole model's cost
(:mod:`trackers.models.ost_cost`): ``{"flops", "params", "fixed_flops", "fixed_params", "note"}`` with
``flops = fixed_flops + flops`` of the top level (likewise params); files without it load.
:func:`load_architecture` validates every field and raises :class:`~asearch.errors.ArchitectureError` naming the
bad one; it also accepts the official VLT genome (``CAND: [[...], [...], [...], [...]]`` in a YAML file,
or a bare JSON list of lists / flat list of 48 genes), and the paper's searched architectures by name:
``official:vlt_scar`` and ``official:vlt_tt`` (:data:`OFFICIAL_GENOMES`).

``validation.mode`` / ``repeats`` / ``suc_std`` (optional) record the fitness mode (``ope`` or ``open_loop``), how
many BN-recalibration repeats were averaged and their spread. ``reevaluation`` (optional, same fields as
``validation``) is written by a search with ``final.reeval``: the candidate's score on the larger re-evaluation set,
under which it was chosen; ``validation`` then keeps its score during the search.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import yaml

from asearch.errors import ArchitectureError, ConfigError
from asearch.io import atomic_write_json
from search_spaces.genome import NUM_CHOICES, Genome
from search_spaces.vlt import SPACE_VERSION, SPACES, VARIANTS, VLTSpace, build_space

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Architecture",
    "ValidationRecord",
    "save_architecture",
    "load_architecture",
    "architecture_from_dict",
    "load_genome",
    "find_official_cand",
    "sha256_file",
    "OFFICIAL_GENOMES",
    "OFFICIAL_PREFIX",
]

FORMAT = "asearch-architecture"
FORMAT_VERSION = 1
# absent in older files
_OPTIONAL_VALIDATION_KEYS = ("select", "videos_sha256", "bn_batch_size", "bn_seed", "mode", "repeats", "suc_std")

# The genomes searched in the VLT paper, as released with its configs (experiments/VLT_SCAR.yaml and VLT_TT.yaml of
# the official code, key CAND): [template backbone 20, search backbone 20, template mixers 4, search mixers 4];
# gene 0/1/2 = ShuffleNetV2 k3/k5/k7, 3 = Shuffle-Xception.
OFFICIAL_GENOMES: Dict[str, List[List[int]]] = {
    "vlt_scar": [[2, 2, 2, 0, 3, 1, 3, 3, 3, 0, 2, 3, 0, 2, 2, 2, 2, 3, 2, 1],
                 [1, 3, 0, 2, 1, 2, 2, 3, 1, 2, 3, 0, 3, 1, 2, 3, 3, 3, 2, 0], [3, 0, 3, 0], [3, 0, 3, 0]],
    "vlt_tt": [[3, 3, 2, 2, 3, 3, 0, 0, 2, 3, 3, 2, 2, 2, 0, 3, 2, 1, 1, 3],
               [2, 1, 0, 3, 3, 1, 2, 0, 0, 0, 1, 1, 3, 3, 3, 0, 2, 1, 3, 2], [3, 0, 3, 0], [3, 0, 3, 0]],
}
OFFICIAL_PREFIX = "official:"


def _toolkit_version() -> str:
    from asearch import __version__

    return __version__


@dataclass
class ValidationRecord:
    """The validation SUC of a genome and the protocol that produced it (SUC as a fraction in [0, 1])."""

    suc: float
    protocol: str
    dataset: str
    split: str
    videos: int
    frames: Optional[int]
    bn_batches: int
    select: Optional[str] = None          # how the videos were chosen from the split (spread / first)
    videos_sha256: Optional[str] = None   # SHA-256 of the scored video names joined by newlines
    bn_batch_size: Optional[int] = None
    bn_seed: Optional[int] = None         # the seed of the BN recalibration batches
    mode: Optional[str] = None            # fitness.mode: ope (closed loop) or open_loop (teacher-forced crops)
    repeats: Optional[int] = None         # scores averaged, each with its own BN batches (seeds bn_seed + r)
    suc_std: Optional[float] = None       # their standard deviation (ddof 1; 0 for one repeat)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able dict (the later, optional fields only when known: files of earlier versions lack them)."""
        out = {"suc": float(self.suc), "protocol": self.protocol, "dataset": self.dataset, "split": self.split,
               "videos": int(self.videos), "frames": None if self.frames is None else int(self.frames),
               "bn_batches": int(self.bn_batches)}
        for key in _OPTIONAL_VALIDATION_KEYS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class Architecture:
    """A searched architecture: the genome, its search space and everything needed to judge its score."""

    genome: Genome
    space: VLTSpace = field(default_factory=lambda: build_space("vlt"))
    flops: Optional[int] = None
    params: Optional[int] = None
    validation: Optional[ValidationRecord] = None
    supernet_sha256: Optional[str] = None
    seed: Optional[int] = None
    reevaluation: Optional[ValidationRecord] = None
    model_cost: Optional[Dict[str, Any]] = None  # whole model (vlt_ost: fixed ViT + head + mixers), optional
    toolkit_version: str = field(default_factory=_toolkit_version)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.genome = self.space.validate(self.genome)

    @property
    def input_sizes(self) -> Dict[str, int]:
        """Template and search input sizes of the space."""
        return {"template": int(self.space.template_size), "search": int(self.space.search_size)}

    def labels(self) -> Dict[str, int]:
        """The genome as an nni sample dict ``{label: value}`` (the declared genes of the space)."""
        return self.space.to_sample(self.genome)

    def with_cost(self) -> "Architecture":
        """Fill ``flops``/``params`` from the space's exact cost (returns ``self``)."""
        cost = self.space.cost(self.genome)
        self.flops, self.params = int(cost["flops"]), int(cost["params"])
        return self

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document (see the module docstring)."""
        config = self.space.to_dict()
        name, version = config.pop("name"), config.pop("version")
        return {
            "format": FORMAT,
            "format_version": int(self.format_version),
            "space": {"name": name, "version": version, "config": config},
            "genome": {"labels": self.labels(), "official": self.genome.to_official()},
            "input_sizes": self.input_sizes,
            "flops": None if self.flops is None else int(self.flops),
            "params": None if self.params is None else int(self.params),
            "validation": None if self.validation is None else self.validation.to_dict(),
            "supernet_sha256": self.supernet_sha256,
            "seed": None if self.seed is None else int(self.seed),
            "toolkit_version": self.toolkit_version,
            **({} if self.reevaluation is None else {"reevaluation": self.reevaluation.to_dict()}),
            **({} if self.model_cost is None else {"model_cost": dict(self.model_cost)}),
        }


def sha256_file(path: Union[str, Path], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file (the supernet checkpoint recorded in the architecture JSON)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def save_architecture(arch: Architecture, path: Union[str, Path]) -> Path:
    """Validate ``arch`` (the same checks as loading) and write it as JSON atomically."""
    data = arch.to_dict()
    architecture_from_dict(data, source=str(path))  # refuse to write what could not be read back
    return atomic_write_json(path, data)


# ----- validation ------------------------------------------------------------------------------------------------
def _fail(source: str, fieldname: str, message: str) -> ArchitectureError:
    return ArchitectureError(f"{source}: {fieldname}: {message}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _present(data: Mapping[str, Any], key: str, source: str, prefix: str) -> Any:
    """``data[key]``; a missing key is an error naming the field."""
    if key not in data:
        raise _fail(source, prefix + key, "missing")
    return data[key]


def _is_sha256(text: str) -> bool:
    """64 lowercase hex digits."""
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _nonneg_int(data: Mapping[str, Any], key: str, source: str, prefix: str = "", nullable: bool = False) -> Optional[int]:
    v = _present(data, key, source, prefix)
    if v is None and nullable:
        return None
    if not _is_int(v) or v < 0:
        raise _fail(source, prefix + key, f"must be a non-negative integer{' or null' if nullable else ''}, got {v!r}")
    return v


def _string(data: Mapping[str, Any], key: str, source: str, prefix: str = "", nullable: bool = False) -> Optional[str]:
    v = _present(data, key, source, prefix)
    if v is None and nullable:
        return None
    if not isinstance(v, str) or not v:
        raise _fail(source, prefix + key, f"must be a non-empty string{' or null' if nullable else ''}, got {v!r}")
    return v


def _mapping(data: Mapping[str, Any], key: str, source: str, prefix: str = "") -> Mapping[str, Any]:
    v = _present(data, key, source, prefix)
    if not isinstance(v, Mapping):
        raise _fail(source, prefix + key, f"must be an object, got {type(v).__name__}")
    return v


_TOP_KEYS = ("format", "format_version", "space", "genome", "input_sizes", "flops", "params", "validation",
             "supernet_sha256", "seed", "toolkit_version", "reevaluation", "model_cost")
_MODEL_COST_KEYS = ("flops", "params", "fixed_flops", "fixed_params", "note")


def _parse_model_cost(v: Any, flops: int, params: int, source: str) -> Dict[str, Any]:
    """The optional ``model_cost``: non-negative integers whose whole = fixed part + the top-level (mixer) cost."""
    if not isinstance(v, Mapping):
        raise _fail(source, "model_cost", f"must be an object, got {type(v).__name__}")
    unknown = sorted(set(v) - set(_MODEL_COST_KEYS))
    if unknown:
        raise _fail(source, f"model_cost.{unknown[0]}", f"unknown field (known: {', '.join(_MODEL_COST_KEYS)})")
    out: Dict[str, Any] = {k: _nonneg_int(v, k, source, "model_cost.") for k in _MODEL_COST_KEYS[:4]}
    for key, part in (("flops", flops), ("params", params)):
        if out[key] != out[f"fixed_{key}"] + part:
            raise _fail(source, f"model_cost.{key}", f"{out[key]} is not fixed_{key} {out[f'fixed_{key}']} + "
                        f"{key} {part}")
    if "note" in v:
        out["note"] = _string(v, "note", source, "model_cost.")
    return out


def _parse_space(data: Mapping[str, Any], source: str) -> VLTSpace:
    space = _mapping(data, "space", source)
    unknown = sorted(set(space) - {"name", "version", "config"})
    if unknown:
        raise _fail(source, f"space.{unknown[0]}", "unknown field (known: name, version, config)")
    name = _string(space, "name", source, "space.")
    version = space.get("version")
    if not isinstance(version, str) or not version:
        raise _fail(source, "space.version", f"must be a version string such as {SPACE_VERSION!r}, got {version!r}")
    if version != SPACE_VERSION:
        raise _fail(source, "space.version", f"{version!r} is not the version this toolkit implements "
                    f"({SPACE_VERSION!r})")
    config = space.get("config", {})
    if not isinstance(config, Mapping):
        raise _fail(source, "space.config", f"must be an object, got {type(config).__name__}")
    variant = config.get("variant", "asymmetric")
    if variant not in VARIANTS:
        raise _fail(source, "space.config.variant", f"{variant!r} is not one of {sorted(VARIANTS)}")
    if name not in SPACES:
        raise _fail(source, "space.name", f"unknown search space {name!r} (known: {', '.join(sorted(SPACES))})")
    try:
        return VLTSpace.from_dict({**dict(config), "name": name, "version": version}, source=f"{source}: space.config")
    except (ArchitectureError, ConfigError) as exc:
        text = str(exc)
        raise ArchitectureError(text if text.startswith(source) else f"{source}: space.config: {text}") from None


def architecture_from_dict(data: Any, source: str = "<architecture>") -> Architecture:
    """Validate an architecture JSON document and build an :class:`Architecture`; every field is checked."""
    if not isinstance(data, Mapping):
        raise ArchitectureError(f"{source}: the top level must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise _fail(source, unknown[0], f"unknown field (known: {', '.join(_TOP_KEYS)})")
    if data.get("format") != FORMAT:
        raise _fail(source, "format", f"must be {FORMAT!r}, got {data.get('format')!r}")
    version = data.get("format_version")
    if not _is_int(version) or version < 1:
        raise _fail(source, "format_version", f"must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise _fail(source, "format_version", f"{version} is newer than this toolkit reads ({FORMAT_VERSION}); "
                    "upgrade asearch")

    space = _parse_space(data, source)
    genome = _parse_genome(_mapping(data, "genome", source), space, source)

    sizes = _mapping(data, "input_sizes", source)
    extra = sorted(set(sizes) - {"template", "search"})
    if extra:
        raise _fail(source, f"input_sizes.{extra[0]}", "unknown field (known: template, search)")
    for key, want in (("template", space.template_size), ("search", space.search_size)):
        v = sizes.get(key)
        if not _is_int(v) or v <= 0:
            raise _fail(source, f"input_sizes.{key}", f"must be a positive integer, got {v!r}")
        if v != want:
            raise _fail(source, f"input_sizes.{key}", f"{v} disagrees with space.config.{key}_size = {want}")

    flops = _nonneg_int(data, "flops", source)
    params = _nonneg_int(data, "params", source)
    cost = space.cost(genome)  # the space's exact cost: a file edited by hand or from another space version fails
    for key, value in (("flops", flops), ("params", params)):
        if value != int(cost[key]):
            raise _fail(source, key, f"{value} disagrees with the exact {key} of this genome in space "
                        f"'{space.name}' ({int(cost[key])})")

    if "validation" not in data:
        raise _fail(source, "validation", "missing (null when the genome was never scored)")
    validation = None if data["validation"] is None else _parse_validation(data["validation"], source)

    sha = _string(data, "supernet_sha256", source, nullable=True)
    if sha is not None and not _is_sha256(sha):
        raise _fail(source, "supernet_sha256", f"must be 64 lowercase hex digits or null, got {sha!r}")
    seed = _nonneg_int(data, "seed", source, nullable=True)
    toolkit = _string(data, "toolkit_version", source)
    reeval = data.get("reevaluation")  # optional: only a search with final.reeval writes it
    reeval = None if reeval is None else _parse_validation(reeval, source, "reevaluation")
    whole = data.get("model_cost")  # optional: vlt_ost exports with the supernet's model config
    whole = None if whole is None else _parse_model_cost(whole, flops, params, source)
    return Architecture(genome=genome, space=space, flops=flops, params=params, validation=validation,
                        supernet_sha256=sha, seed=seed, reevaluation=reeval, model_cost=whole,
                        toolkit_version=toolkit, format_version=version)


def _parse_genome(g: Mapping[str, Any], space: VLTSpace, source: str) -> Genome:
    unknown = sorted(set(g) - {"labels", "official"})
    if unknown:
        raise _fail(source, f"genome.{unknown[0]}", "unknown field (known: labels, official)")
    labels = _mapping(g, "labels", source, "genome.")
    expected = space.labels
    for lb in expected:
        if lb not in labels:
            raise _fail(source, f"genome.labels['{lb}']", "missing")
    for lb, v in labels.items():
        if lb not in expected:
            raise _fail(source, f"genome.labels['{lb}']", f"not a label of search space '{space.name}'")
        if not _is_int(v) or not 0 <= v < NUM_CHOICES:
            raise _fail(source, f"genome.labels['{lb}']", f"value {v!r} not in 0..{NUM_CHOICES - 1}")
    from_labels = space.from_sample(dict(labels))
    if "official" not in g:
        raise _fail(source, "genome.official", "missing")
    try:
        from_official = space.from_official(g["official"])
    except ArchitectureError as exc:
        raise _fail(source, "genome.official", str(exc)) from None
    if from_official != from_labels:
        parts = ("template", "search", "template_mixer", "search_mixer")
        bad = next(p for p in parts if getattr(from_official, p) != getattr(from_labels, p))
        raise _fail(source, "genome.official", f"disagrees with genome.labels in part '{bad}': "
                    f"{list(getattr(from_official, bad))} vs {list(getattr(from_labels, bad))}")
    return from_labels


_VALIDATION_KEYS = (("suc", "protocol", "dataset", "split", "videos", "frames", "bn_batches")
                    + _OPTIONAL_VALIDATION_KEYS)


def _parse_validation(v: Any, source: str, key: str = "validation") -> ValidationRecord:
    if not isinstance(v, Mapping):
        raise _fail(source, key, f"must be an object or null, got {type(v).__name__}")
    unknown = sorted(set(v) - set(_VALIDATION_KEYS))
    if unknown:
        raise _fail(source, f"{key}.{unknown[0]}", f"unknown field (known: {', '.join(_VALIDATION_KEYS)})")
    suc = v.get("suc")
    if isinstance(suc, bool) or not isinstance(suc, (int, float)) or not math.isfinite(suc) or not 0 <= suc <= 1:
        raise _fail(source, f"{key}.suc", f"must be a number in [0, 1] (a fraction, not %), got {suc!r}")
    protocol = _string(v, "protocol", source, f"{key}.")
    dataset = _string(v, "dataset", source, f"{key}.")
    split = _string(v, "split", source, f"{key}.")
    videos = _nonneg_int(v, "videos", source, f"{key}.")
    if videos == 0:
        raise _fail(source, f"{key}.videos", "must be at least 1")
    frames = _nonneg_int(v, "frames", source, f"{key}.", nullable=True)
    if frames is not None and frames < 2:
        raise _fail(source, f"{key}.frames", f"must be at least 2 (first frame + one tracked) or null, got {frames}")
    bn = _nonneg_int(v, "bn_batches", source, f"{key}.")
    select = _string(v, "select", source, f"{key}.") if "select" in v else None
    sha = _string(v, "videos_sha256", source, f"{key}.") if "videos_sha256" in v else None
    if sha is not None and not _is_sha256(sha):
        raise _fail(source, f"{key}.videos_sha256", f"must be 64 lowercase hex digits, got {sha!r}")
    bn_batch_size = _nonneg_int(v, "bn_batch_size", source, f"{key}.") if "bn_batch_size" in v else None
    if bn_batch_size == 0:
        raise _fail(source, f"{key}.bn_batch_size", "must be at least 1")
    bn_seed = _nonneg_int(v, "bn_seed", source, f"{key}.") if "bn_seed" in v else None
    mode = _string(v, "mode", source, f"{key}.") if "mode" in v else None
    if mode is not None and mode not in ("ope", "open_loop"):
        raise _fail(source, f"{key}.mode", f"{mode!r} is not one of ['ope', 'open_loop']")
    repeats = _nonneg_int(v, "repeats", source, f"{key}.") if "repeats" in v else None
    if repeats == 0:
        raise _fail(source, f"{key}.repeats", "must be at least 1")
    std = v.get("suc_std")
    if "suc_std" in v and (isinstance(std, bool) or not isinstance(std, (int, float)) or not math.isfinite(std)
                           or std < 0):
        raise _fail(source, f"{key}.suc_std", f"must be a non-negative number, got {std!r}")
    return ValidationRecord(suc=float(suc), protocol=protocol, dataset=dataset, split=split, videos=videos,
                            frames=frames, bn_batches=bn, select=select, videos_sha256=sha,
                            bn_batch_size=bn_batch_size, bn_seed=bn_seed, mode=mode, repeats=repeats,
                            suc_std=None if std is None else float(std))


# ----- loading ---------------------------------------------------------------------------------------------------
def find_official_cand(data: Any) -> Optional[Any]:
    """The value of the first ``CAND`` key found (depth-first) in a parsed official VLT YAML, else ``None``."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            if str(k).upper() == "CAND":
                return v
        for v in data.values():
            found = find_official_cand(v)
            if found is not None:
                return found
    return None


def _official_architecture(lists: Any, source: str, space: Optional[VLTSpace] = None) -> Architecture:
    """An :class:`Architecture` (genome only) from the official form; the space defaults to ``vlt`` (48 genes) or
    ``vlt_ost`` (empty backbone lists)."""
    try:
        if isinstance(lists, list) and lists and all(_is_int(v) for v in lists):
            genome = Genome.from_flat(lists)
        else:
            genome = Genome.from_official(lists)
        if space is None:
            space = build_space("vlt" if genome.template else "vlt_ost")
        genome = space.validate(genome)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{source}: CAND: {exc}") from None
    return Architecture(genome=genome, space=space)


def load_architecture(path: Union[str, Path]) -> Architecture:
    """Read and validate an architecture file.

    Accepts the architecture JSON of :func:`save_architecture`, an official VLT YAML with a ``CAND`` key, a bare
    JSON list of lists (official form) / flat list of genes, or ``official:vlt_scar`` / ``official:vlt_tt`` (the
    paper's searched genomes, :data:`OFFICIAL_GENOMES`). Official inputs give an :class:`Architecture` with
    only the genome known (``flops``/``params``/``validation`` are ``None``).
    """
    if str(path).startswith(OFFICIAL_PREFIX):
        name = str(path)[len(OFFICIAL_PREFIX):]
        if name not in OFFICIAL_GENOMES:
            raise ArchitectureError(f"{path}: no released architecture '{name}' (known: "
                                    f"{', '.join(OFFICIAL_PREFIX + k for k in OFFICIAL_GENOMES)})")
        return _official_architecture([list(part) for part in OFFICIAL_GENOMES[name]], str(path))
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ArchitectureError(f"architecture file not found: {path}")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ArchitectureError(f"{source}: not valid YAML: {exc}") from None
        if isinstance(data, Mapping) and data.get("format") == FORMAT:
            return architecture_from_dict(data, source)
        cand = data if isinstance(data, list) else find_official_cand(data)
        if cand is None:
            raise ArchitectureError(f"{source}: no 'CAND' key (official VLT genome) and not an architecture file")
        return _official_architecture(cand, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArchitectureError(f"{source}: not valid JSON: {exc}") from None
    if isinstance(data, list):
        return _official_architecture(data, source)
    if isinstance(data, Mapping) and "CAND" in data and "format" not in data:
        return _official_architecture(data["CAND"], source)
    return architecture_from_dict(data, source)


def load_genome(spec: Union[str, Path], space: Optional[VLTSpace] = None) -> Genome:
    """A genome from a file (architecture JSON, official YAML/JSON), ``official:<name>`` or inline JSON text
    (``[[..],..]``, validated in ``space`` when given, e.g. a VLT_OST supernet's with its own mixer count)."""
    text = str(spec).strip()
    if text.startswith("["):
        try:
            return _official_architecture(json.loads(text), "<inline genome>", space).genome
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"<inline genome>: not valid JSON: {exc}") from None
    return load_architecture(spec).genome
