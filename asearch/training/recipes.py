"""Experiment recipes: build everything an experiment YAML describes and train it (``asearch pretrain`` / ``retrain``).

One function serves both commands (paper 000 Alg. 1 and Alg. 2 differ only in what is trained):

* ``pretrain`` (Alg. 1, Eq. 5 ``W_A = argmin_W E_{a~Gamma(A)} L_train(N(a, W(a)))``): the model is a supernet (no
  ``model.genome``); every optimizer step runs one path ``a`` drawn uniformly from the model's search space by a
  :class:`~search_spaces.paths.PathSampler` seeded with ``(seed, step)`` (the same path on every DDP rank and
  after ``--resume``); parameters off the path get no update. ``pretrain.sampling: fair`` replaces the one uniform
  path by FairNAS strict fairness (Chu et al. 2021): each step runs the 4 paths in which every gene takes each of
  its 4 choices once, on the same batch, and makes one update with their summed gradients (4x the compute of a
  uniform step).
* ``retrain`` (Alg. 2): the model is the fixed subnet of ``model.genome`` (filled from ``--arch``), optionally
  starting from the weights inherited from the supernet (``--weights``, a file of ``asearch export --weights``:
  the subnet and, with ``retrain.inherit: all``, the neck and head pretrained with it), or a vision-only baseline
  (no architecture at all). ``--init`` (``retrain.init``) starts every model tensor from an earlier run's
  training checkpoint instead (a second training stage, e.g. SATracker's fine-tuning after its STARK stage); the
  steps, optimiser and schedule start fresh, unlike ``--resume``.

An experiment YAML (strict: every unknown key is an error naming the file and the key; ``_base_`` files merge)::

    model: {name: vlt_scar, ...}       # the family's model config, resolved through trackers.registry by name
                                       # (SPOS init of a supernet: model.spos_checkpoint -> load_spos_checkpoint)
    loss: {...}                        # the family's loss config
    tracker: {...}                     # the family's tracking hyperparameters (used by asearch track / search)
    language: {encoder: null, mode: sentence, missing: zero, cache_dir: null}
    data:
      datasets:                        # any mix of readers (asearch.data.build_dataset), drawn by ratio
        - {name: lasot, root: null, split: train, ratio: 1.0, attributes: null, options: {}}
      pairs_per_epoch: 1200000         # null: the number of videos (at least one batch per process)
      no_language_share: 0.5           # share of pairs from datasets without language (paper: half); null: ratios
      skip_missing: false              # true: leave out datasets without a root (asearch.training.sources)
      sampler: {...}                   # asearch.data.sampler.SamplerConfig fields; sizes default to the model's;
                                       # crop sides: the family's crop rule (trackers.registry.crop_rule), as
                                       # its tracker crops (context: SiamCAR family only, = tracker.context_amount)
    train: {...}                       # asearch.training.TrainConfig
    pretrain: {sampling: uniform}      # uniform (SPOS: one path per step) | fair (FairNAS: every choice per step)
    retrain: {arch: null, weights: null, inherit: all, init: null}   # inherit: all (subnet + neck/head) |
                                       # backbone; init: a training checkpoint whose model starts this run
    out_dir: null                      # null: runs/<model.name>/<config file stem>
    seed: null                         # null: train.seed

The checkpoints are self-describing: ``build_info = {"model": <model config>, "mode": ..., "search_space": ...}``,
so :func:`trackers.registry.load_model` (``asearch track --checkpoint``, ``asearch search --supernet``) rebuilds
the model from the file alone.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from torch import nn

from asearch.config import apply_overrides, from_dict, load_yaml, to_dict
from asearch.errors import ArchitectureError, ConfigError
from asearch.training.inheritance import (INHERIT_MODES, _adopt_input_format, _check_inherit, load_inherited_weights,
                                         load_initial_checkpoint, resolve_genome, save_inherited_weights,
                                         search_space_of, space_from_checkpoint)
from asearch.training.trainer import TrainConfig
from search_spaces.paths import PathSampler
from trackers.registry import LanguageConfig

__all__ = [
    "DatasetSpec", "DataConfig", "RetrainInit", "ExperimentConfig", "Experiment", "MODES",
    "load_experiment", "validate_experiment", "mix_ratios", "build_pair_dataset", "epoch_loader_factory",
    "search_space_of", "resolve_genome", "default_out_dir", "run_pretrain", "run_retrain", "load_inherited_weights",
    "load_initial_checkpoint", "save_inherited_weights", "space_from_checkpoint", "build_experiment",
    "train_experiment", "INHERIT_MODES",
]

log = logging.getLogger("asearch.training")

#: what :func:`train_experiment` can do
MODES = ("pretrain", "retrain")

ConfigLike = Union["ExperimentConfig", str, Path, Mapping[str, Any]]


# ----------------------------------------------------------------------------------------------------------------------
# config
@dataclass
class DatasetSpec:
    """One training source: a dataset reader (``asearch.data.build_dataset``) and its share of the pairs.

    ``root`` ``null`` reads ``$ASEARCH_<NAME>_ROOT``; ``attributes`` is an attribute-word annotation file;
    ``options`` are reader keyword arguments (e.g. ``split_file``); ``ratio`` is the relative sampling weight.
    """

    name: str = ""
    root: Optional[str] = None
    split: str = "train"
    ratio: float = 1.0
    attributes: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Section ``data``: training sources, pairs per epoch, the share of language-free pairs, pair sampling.

    ``skip_missing``: leave out (with a warning) the datasets whose root is not set or does not exist, and let
    ``no_language_share`` fall back when a language group is left empty (:mod:`asearch.training.sources`)."""

    datasets: List[DatasetSpec] = field(default_factory=list)
    pairs_per_epoch: Optional[int] = None
    no_language_share: Optional[float] = None
    sampler: Dict[str, Any] = field(default_factory=dict)
    skip_missing: bool = False

    def __post_init__(self) -> None:
        for i, ds in enumerate(self.datasets):
            if not ds.name:
                raise ConfigError(f"config key 'data.datasets[{i}].name' is required (a dataset reader name, "
                                  "e.g. lasot, got10k, coco, synthetic)")
            if not ds.ratio >= 0:
                raise ConfigError(f"config key 'data.datasets[{i}].ratio' must be >= 0, got {ds.ratio}")
        if self.pairs_per_epoch is not None and self.pairs_per_epoch < 1:
            raise ConfigError(f"config key 'data.pairs_per_epoch' must be >= 1, got {self.pairs_per_epoch}")
        if self.no_language_share is not None and not 0.0 <= self.no_language_share <= 1.0:
            raise ConfigError(f"config key 'data.no_language_share' must be in [0, 1], got {self.no_language_share}")


@dataclass
class RetrainInit:
    """Section ``retrain``: the searched architecture (``--arch``) and its inherited weights (``--weights``).

    ``inherit``: what of the ``--weights`` file starts the retraining: ``all`` (the subnet and, when the file carries
    them and the tracker family matches, the neck and head pretrained with the supernet) or ``backbone`` (the subnet
    only; neck and head start fresh). Paper 000 Alg. 2 only says "initialize"; the default ``all`` continues from
    the whole pretrained tracker on the chosen path, which is what the search scored.

    ``init`` (``--init``): a training checkpoint of an earlier run of the same model (``checkpoints/latest.pt``)
    whose model weights start this one, all of them (a later training stage); step, optimiser and schedule start
    fresh. It replaces every pretrained-weight key and cannot be combined with ``weights``.
    """

    arch: Optional[str] = None
    weights: Optional[str] = None
    inherit: str = "all"
    init: Optional[str] = None

    def __post_init__(self) -> None:
        _check_inherit(self.inherit)


PATH_SAMPLING = ("uniform", "fair")


@dataclass
class PretrainOptions:
    """Section ``pretrain``: how a supernet step picks its path(s). ``sampling``: ``uniform`` (SPOS, paper 000
    Alg. 1: one uniform path per step) or ``fair`` (FairNAS strict fairness: every choice of every gene once per
    step, gradients summed; see :meth:`search_spaces.paths.PathSampler.fair`)."""

    sampling: str = "uniform"

    def __post_init__(self) -> None:
        if self.sampling not in PATH_SAMPLING:
            raise ConfigError(f"config key 'pretrain.sampling' must be one of {', '.join(PATH_SAMPLING)}, got "
                              f"{self.sampling!r}")


@dataclass
class ExperimentConfig:
    """One experiment YAML (see the module docstring). ``model``/``loss``/``tracker`` stay plain mappings here and
    are checked against the model family's own config classes by :func:`validate_experiment`."""

    model: Dict[str, Any] = field(default_factory=dict)
    loss: Dict[str, Any] = field(default_factory=dict)
    tracker: Dict[str, Any] = field(default_factory=dict)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainOptions = field(default_factory=PretrainOptions)
    retrain: RetrainInit = field(default_factory=RetrainInit)
    out_dir: Optional[str] = None
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        if isinstance(self.language.encoder, str) and self.language.encoder.strip().lower() == "default":
            self.language.encoder = None


def validate_experiment(cfg: ExperimentConfig, source: str = "<config>") -> ExperimentConfig:
    """Check the family-specific sections (``model``, ``loss``, ``tracker``) through the registry; returns ``cfg``.

    Raises :class:`ConfigError` naming ``source`` and the first bad key (e.g. ``model.neck.chanels``).
    """
    from trackers.registry import get_entry, model_config

    if not cfg.model:
        raise ConfigError(f"{source}: the 'model' section is missing (it needs at least model.name)")
    mcfg = model_config(cfg.model, source)
    entry = get_entry(mcfg.name)
    from_dict(entry.loss_config_cls, cfg.loss, source=source, prefix="loss.")
    from_dict(entry.tracker_config_cls, cfg.tracker, source=source, prefix="tracker.")
    if cfg.language.mode not in ("sentence", "attribute"):
        raise ConfigError(f"{source}: key 'language.mode' must be 'sentence' or 'attribute', got "
                          f"{cfg.language.mode!r}")
    if cfg.language.missing not in ("zero", "template", "attribute"):
        raise ConfigError(f"{source}: key 'language.missing' must be one of zero, template, attribute, got "
                          f"{cfg.language.missing!r}")
    return cfg


def load_experiment(cfg_or_path: ConfigLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from a YAML path (``_base_`` resolved), a plain mapping or a config object,
    with ``key=value`` overrides applied; validated by :func:`validate_experiment`."""
    if isinstance(cfg_or_path, ExperimentConfig):
        data, source = to_dict(cfg_or_path), "<config>"
    elif isinstance(cfg_or_path, Mapping):
        data, source = dict(cfg_or_path), "<config>"
    else:
        data, source = load_yaml(cfg_or_path), str(cfg_or_path)
    if overrides:
        data = apply_overrides(data, overrides)
        source = f"{source} (with --set)"
    return validate_experiment(from_dict(ExperimentConfig, data, source=source), source)


# ----------------------------------------------------------------------------------------------------------------------
# data
def mix_ratios(ratios: Sequence[float], has_language: Sequence[bool], no_language_share: Optional[float]
               ) -> List[float]:
    """Sampling weights of the sources so that a share ``no_language_share`` of the pairs comes from sources
    without language (paper 000 §4.1: half of every epoch). Within each group the configured ratios keep their
    proportions; ``None`` returns ``ratios`` unchanged (normalised to sum 1).

    Example: ratios ``[1, 3, 2]``, language ``[True, True, False]``, share 0.5 -> ``[0.125, 0.375, 0.5]``.
    """
    if len(ratios) != len(has_language):
        raise ValueError("mix_ratios: one has_language flag per ratio")
    r = [float(x) for x in ratios]
    if any(x < 0 for x in r) or sum(r) <= 0:
        raise ConfigError(f"config key 'data.datasets[*].ratio': ratios must be >= 0 with a positive sum, got {r}")
    if no_language_share is None:
        total = sum(r)
        return [x / total for x in r]
    share = float(no_language_share)
    with_l = sum(x for x, h in zip(r, has_language) if h)
    without = sum(x for x, h in zip(r, has_language) if not h)
    if share > 0 and without <= 0:
        raise ConfigError(f"config key 'data.no_language_share' is {share} but no dataset without language has a "
                          "positive ratio; add one (e.g. coco), set data.no_language_share: null, or set "
                          "data.skip_missing: true (it then falls back to 0)")
    if share < 1 and with_l <= 0:
        raise ConfigError(f"config key 'data.no_language_share' is {share} but no dataset with language has a "
                          "positive ratio; add one (e.g. lasot) or set data.no_language_share: null")
    return [(1.0 - share) * x / with_l if h else share * x / without for x, h in zip(r, has_language)]


def _sampler_config(cfg: ExperimentConfig, model_cfg: Any, source: str, rule: Any = None) -> Any:
    from asearch.data.crops import ContextCrop
    from asearch.data.sampler import SamplerConfig

    data = dict(cfg.data.sampler)
    if "context" in data and rule is not None:
        if not isinstance(rule, ContextCrop):
            raise ConfigError(f"{source}: key 'data.sampler.context' does not apply to model '{model_cfg.name}': "
                              f"its crops follow {type(rule).__name__} (tracker.template_factor / "
                              "tracker.search_factor), in training as in tracking; remove the key")
        if float(data["context"]) != rule.context:
            raise ConfigError(f"{source}: key 'data.sampler.context' ({data['context']}) differs from "
                              f"'tracker.context_amount' ({rule.context}); the family trains on the crops it "
                              "tracks on: set it once, in tracker.context_amount")
    if isinstance(rule, ContextCrop):
        data["context"] = rule.context
    strategy = cfg.language.missing
    if data.get("language_strategy", strategy) != strategy:
        raise ConfigError(f"{source}: key 'data.sampler.language_strategy' ({data['language_strategy']!r}) differs "
                          f"from 'language.missing' ({strategy!r}); set the strategy once, in language.missing")
    data["language_strategy"] = strategy
    for key in ("template_size", "search_size"):
        want = getattr(model_cfg, key, None)
        if want is None:
            continue
        if key in data and int(data[key]) != int(want):
            raise ConfigError(f"{source}: key 'data.sampler.{key}' ({data[key]}) differs from 'model.{key}' "
                              f"({want}); the crops must have the model's input size")
        data[key] = int(want)
    return from_dict(SamplerConfig, data, source=source, prefix="data.sampler.").validate()


def build_pair_dataset(cfg: ExperimentConfig, model_cfg: Any, seed: int, min_length: int = 1,
                       source: str = "<config>", tracker: Any = None) -> Any:
    """The :class:`~asearch.data.sampler.PairDataset` of section ``data`` (sources built by name, mixed by
    :func:`mix_ratios`); its length is ``data.pairs_per_epoch`` or the number of videos (at least
    ``min_length``). Its crops follow the family's crop rule (:func:`trackers.registry.crop_rule`) with the
    tracker section ``tracker`` (default ``cfg.tracker``): the crops the family's tracker takes."""
    from asearch.data.registry import build_dataset
    from asearch.data.sampler import PairDataset
    from asearch.training.sources import fallback_language_share, present_datasets
    from trackers.registry import crop_rule, get_entry

    if not cfg.data.datasets:
        raise ConfigError(f"{source}: 'data.datasets' is empty: list at least one training dataset, e.g. "
                          "[{name: synthetic, root: DIR, split: train}]")
    specs = list(cfg.data.datasets)
    share = cfg.data.no_language_share
    if cfg.data.skip_missing:
        specs = [spec for _, spec in present_datasets(specs, source)]
    sources = []
    for spec in specs:
        sources.append(build_dataset(spec.name, root=spec.root, split=spec.split, attributes=spec.attributes,
                                     **dict(spec.options)))
    flags = [bool(getattr(ds, "has_language", True)) for ds in sources]
    if cfg.data.skip_missing:
        share = fallback_language_share(share, [s.ratio for s in specs], flags, source)
    ratios = mix_ratios([s.ratio for s in specs], flags, share)
    length = cfg.data.pairs_per_epoch
    if length is None:
        length = max(sum(len(ds) for ds in sources), int(min_length))
    own = get_entry(model_cfg.name).build_dataset
    if own is not None:  # a family trained on other items than pairs (trackers.registry.ModelEntry.build_dataset)
        return own(sources, ratios, dict(cfg.data.sampler), model_cfg, cfg.language, seed, length)
    rule = crop_rule(model_cfg, cfg.tracker if tracker is None else tracker)
    sampler_cfg = _sampler_config(cfg, model_cfg, source, rule)
    return PairDataset(list(zip(sources, ratios)), sampler_cfg, seed=seed, length=length, crop_rule=rule)


def epoch_loader_factory(dataset: Any, batch_size: int, seed: int, num_workers: int = 0, pin_memory: bool = False):
    """:func:`~asearch.training.distributed.seeded_loader_factory` over ``dataset`` with
    :func:`~asearch.data.sampler.collate_pairs` that also sets the dataset's epoch (its items are drawn from
    ``(seed, epoch, index)``), so that a resumed run sees exactly the pairs of an unbroken one."""
    from asearch.data.sampler import collate_pairs
    from asearch.training.distributed import seeded_loader_factory

    base = seeded_loader_factory(dataset, batch_size, seed=seed, num_workers=num_workers, collate_fn=collate_pairs,
                                 shuffle=True, drop_last=True, pin_memory=pin_memory)

    def factory(epoch: int, skip_batches: int = 0):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        return base(epoch, skip_batches)

    return factory


# ----------------------------------------------------------------------------------------------------------------------
# the recipe
@dataclass
class Experiment:
    """Everything :func:`build_experiment` built; :meth:`train` runs it."""

    config: ExperimentConfig
    mode: str
    model_config: Any
    model: nn.Module
    actor: Any
    trainer: Any
    dataset: Any
    featurizer: Any
    space: Any
    out_dir: Path
    info: Dict[str, Any]

    def train(self, stop_after: Optional[int] = None) -> Dict[str, Any]:
        """Train (or continue) to ``train.steps``; with ``stop_after`` pause after that many steps and write a
        checkpoint there (continue with ``resume=True``). Returns ``checkpoint, steps, final_loss, out_dir,
        stopped, stats, mode, rank`` (under torchrun only rank 0 writes checkpoints; its loss is its own)."""
        trainer = self.trainer
        result = trainer.train(stop_after=stop_after)
        stopped = trainer.step < trainer.cfg.steps
        ckpt = result.get("checkpoint")
        if stopped and trainer.step > 0:
            ckpt = trainer.save_checkpoint() or ckpt
        if ckpt is None and (self.out_dir / "checkpoints" / "latest.pt").is_file():
            ckpt = self.out_dir / "checkpoints" / "latest.pt"
        stats = result.get("stats") or {}
        return {"checkpoint": None if ckpt is None else str(ckpt), "steps": int(trainer.step),
                "final_loss": stats.get("loss"), "out_dir": str(self.out_dir), "stopped": bool(stopped),
                "stats": dict(stats), "mode": self.mode, "rank": int(trainer.rank)}


def default_out_dir(cfg: ExperimentConfig, mode: str, config_path: Optional[Union[str, Path]] = None) -> Path:
    """``runs/<model.name>/<config file stem>`` (``<mode>`` without a file), relative to the working folder."""
    stem = Path(config_path).stem if config_path is not None else mode
    return Path("runs") / str(cfg.model.get("name", "model")) / stem


def build_experiment(cfg: ExperimentConfig, mode: str, *, out_dir: Optional[Union[str, Path]] = None,
                     resume: Union[bool, str, Path] = False, progress: bool = True, arch: Any = None,
                     weights: Optional[Union[str, Path]] = None, source: str = "<config>",
                     config_path: Optional[Union[str, Path]] = None,
                     init: Optional[Union[str, Path]] = None) -> Experiment:
    """Build model, language featurizer, actor (with the SPOS path sampler for ``pretrain``), pair data,
    optimizer, schedule and :class:`~asearch.training.Trainer` from an :class:`ExperimentConfig`.

    Args:
        cfg: the experiment (see :func:`load_experiment`).
        mode: ``pretrain`` (a supernet, one uniform path per step) or ``retrain`` (a fixed subnet or baseline).
        out_dir: output folder (default ``cfg.out_dir``, else ``runs/<model.name>/<config stem>``).
        resume: as :class:`~asearch.training.Trainer` (``True``: continue from ``out_dir/checkpoints/latest.pt``).
        progress: tqdm bar on the main process.
        arch: retrain: the architecture (file path, Genome or official list; default ``cfg.retrain.arch``).
        weights: retrain: inherited subnet weights (default ``cfg.retrain.weights``).
        source: name of the config in error messages; config_path: its file (for the default ``out_dir``).
        init: retrain: a training checkpoint whose model weights start the run (default ``cfg.retrain.init``).
    """
    from asearch.runtime import seed_everything
    from asearch.training.distributed import init_distributed
    from asearch.training.optim import build_optimizer, build_scheduler
    from asearch.training.trainer import Trainer
    from trackers.registry import (build_actor, build_featurizer, build_info, build_model, check_language_width,
                                   language_record, model_config)
    from trackers.init_report import collect_init, init_lines, null_pretrained_warnings
    from trackers.language_width import language_dim_key, resolve_language_dim
    from trackers.registry import get_entry

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    cfg = dataclasses.replace(cfg, model=dict(cfg.model), train=dataclasses.replace(cfg.train),
                              retrain=dataclasses.replace(cfg.retrain))
    seed = cfg.train.seed if cfg.seed is None else int(cfg.seed)
    cfg.seed = seed
    cfg.train.seed = seed
    out = Path(out_dir if out_dir is not None else (cfg.out_dir or default_out_dir(cfg, mode, config_path)))
    cfg.out_dir = str(out)

    # -- the architecture (retrain)
    genome = None
    if mode == "retrain":
        arch = arch if arch is not None else cfg.retrain.arch
        weights = weights if weights is not None else cfg.retrain.weights
        init = init if init is not None else cfg.retrain.init
        if init is not None and weights is not None:
            raise ConfigError(f"{source}: give either --weights (inherited subnet weights) or --init (a training "
                              "checkpoint whose whole model starts the run), not both")
        genome = resolve_genome(arch)
        if weights is not None:
            from supernets.subnet import load_subnet

            subnet = load_subnet(weights)
            inherited = subnet.genome
            _adopt_input_format(cfg.model, subnet.config.input_format, weights)
            if genome is None:
                genome = inherited
            elif inherited != genome:
                raise ArchitectureError(f"--weights {weights} holds the subnet {inherited.to_official()}, but the "
                                        f"architecture is {genome.to_official()}: give matching --arch and --weights")
        if genome is not None:
            given = cfg.model.get("genome")
            if given is not None and resolve_genome(given) != genome:
                log.warning("%s: the architecture of --arch/--weights replaces model.genome of the config", source)
            cfg.model["genome"] = genome.to_official()
            cfg.retrain.arch = None if arch is None or not isinstance(arch, (str, Path)) else str(arch)
        cfg.retrain.weights = None if weights is None else str(weights)
        cfg.retrain.init = None if init is None else str(init)
    elif (cfg.retrain.arch or cfg.retrain.weights or cfg.retrain.init or arch is not None or weights is not None
          or init is not None):
        raise ConfigError(f"{source}: 'retrain.arch' / 'retrain.weights' are for asearch retrain (so is "
                          "'retrain.init' / --init); pretraining trains the whole supernet")

    dist_info = init_distributed(cfg.train.device)
    device = dist_info.device

    # -- language first: the model's language width follows from the encoder and the mode (trackers.language_width)
    featurizer = None
    if language_dim_key(cfg.model) is not None and cfg.language.enabled:
        featurizer = build_featurizer(cfg.language, device)
    cfg.model = resolve_language_dim(cfg.model, None if featurizer is None else featurizer.dim,
                                     cfg.language.encoder, cfg.language.mode, source)
    model_cfg = model_config(cfg.model, source)

    # -- the model (seeded: the initial weights are a function of the seed); what each part starts from is logged
    seed_everything(seed)
    with collect_init() as init_notes:
        model = build_model(model_cfg, pretrained=True)
    uses_language = bool(getattr(model, "uses_language", False))
    supernet = bool(getattr(model, "needs_genome", False))
    if mode == "pretrain" and not supernet:
        raise ConfigError(f"{source}: asearch pretrain trains a supernet, but model '{model_cfg.name}' "
                          + ("has a fixed genome (set model.genome: null)" if getattr(model_cfg, "genome", None)
                             else "has no searchable path") + "; use asearch retrain for fixed architectures")
    if mode == "retrain":
        if genome is not None and not uses_language:
            raise ConfigError(f"{source}: model '{model_cfg.name}' is a vision-only baseline: it takes no "
                              "architecture (--arch/--weights)")
        if supernet:
            raise ConfigError(f"{source}: model '{model_cfg.name}' is a supernet here: asearch retrain needs the "
                              "searched architecture (--arch arch.json, --weights subnet.pt or model.genome)")
    info: Dict[str, Any] = {"mode": mode, "seed": seed}
    if mode == "retrain" and cfg.retrain.weights:
        with collect_init() as more:
            info["inherited"] = load_inherited_weights(model, cfg.retrain.weights, model_cfg.name,
                                                       cfg.retrain.inherit)
        init_notes.extend(more)
    if mode == "retrain" and cfg.retrain.init:
        with collect_init() as more:
            info["init_checkpoint"] = load_initial_checkpoint(model, cfg.retrain.init, model_cfg.name)
        init_notes[:] = more  # every tensor comes from the checkpoint: earlier loads are overwritten
    info["init"] = init_lines(model, init_notes)
    if dist_info.rank == 0:
        keys = () if cfg.retrain.init else get_entry(model_cfg.name).pretrained
        for text in null_pretrained_warnings(model_cfg, keys, inherited=bool(cfg.retrain.weights), source=source):
            log.warning(text)
        log.info("%s %s: initialisation (before any --resume):\n  %s", mode, model_cfg.name, "\n  ".join(info["init"]))

    # -- actor, data
    if featurizer is not None:
        check_language_width(featurizer, model, cfg.language, source=source)
    space = search_space_of(model) if mode == "pretrain" else None
    if mode == "pretrain" and space is None:
        raise ConfigError(f"{source}: model '{model_cfg.name}' exposes no search space to sample paths from")
    sampler = PathSampler.from_space(space, seed, cfg.pretrain.sampling) if space is not None else None
    actor = build_actor(model, model_cfg, featurizer, cfg.loss, sampler)
    dataset = build_pair_dataset(cfg, model_cfg, seed, min_length=cfg.train.batch_size * dist_info.world_size,
                                 source=source)
    factory = epoch_loader_factory(dataset, cfg.train.batch_size, seed, cfg.train.num_workers,
                                   pin_memory=device.type == "cuda")

    # -- optimisation
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train)
    binfo = build_info(model_cfg)
    binfo["mode"] = mode
    if featurizer is not None:  # track and search rebuild the same language branch from it
        binfo["language"] = language_record(cfg.language, featurizer)
    if space is not None:
        binfo["search_space"] = space.to_dict()
    trainer = Trainer(model, actor, factory, optimizer, scheduler, cfg.train, out, device=device,
                      config_dict=to_dict(cfg), resume=resume, build_info=binfo, progress=progress)
    return Experiment(cfg, mode, model_cfg, model, actor, trainer, dataset, featurizer, space, out, info)


def train_experiment(cfg_or_path: ConfigLike, mode: str, *, out_dir: Optional[Union[str, Path]] = None,
                     overrides: Sequence[str] = (), resume: Union[bool, str, Path] = False, progress: bool = True,
                     arch: Any = None, weights: Optional[Union[str, Path]] = None,
                     stop_after: Optional[int] = None, init: Optional[Union[str, Path]] = None) -> Dict[str, Any]:
    """Load, build (:func:`build_experiment`) and train an experiment; the function behind both commands.

    Returns ``{"checkpoint": path of the last checkpoint, "steps", "final_loss" (mean loss of the last logged
    interval), "out_dir", "stopped" (paused by ``stop_after``), "stats", "mode"}``, plus ``"inherited"`` (what
    :func:`load_inherited_weights` loaded) when retraining started from ``--weights``, and ``"init_checkpoint"``
    (what :func:`load_initial_checkpoint` loaded) when it started from ``--init``.
    """
    cfg = load_experiment(cfg_or_path, overrides)
    path = None if isinstance(cfg_or_path, (ExperimentConfig, Mapping)) else Path(cfg_or_path)
    exp = build_experiment(cfg, mode, out_dir=out_dir, resume=resume, progress=progress, arch=arch,
                           weights=weights, source=str(path) if path is not None else "<config>",
                           config_path=path, init=init)
    if exp.info.get("inherited"):
        got = exp.info["inherited"]
        log.info("inherited %d subnet tensors%s from %s", got["tensors"],
                 f" and {got['tracker_tensors']} neck/head tensors" if got["tracker_tensors"] else "", got["path"])
    try:
        result = exp.train(stop_after=stop_after)
        if exp.info.get("inherited"):
            result["inherited"] = dict(exp.info["inherited"])
        if exp.info.get("init_checkpoint"):
            result["init_checkpoint"] = dict(exp.info["init_checkpoint"])
            log.info("started from the %d model tensors of %s (its step %d)", result["init_checkpoint"]["tensors"],
                     result["init_checkpoint"]["path"], result["init_checkpoint"]["step"])
        return result
    finally:
        from asearch.training.distributed import cleanup_distributed

        cleanup_distributed()


def run_pretrain(cfg_or_path: ConfigLike, out_dir: Optional[Union[str, Path]] = None, overrides: Sequence[str] = (),
                 resume: Union[bool, str, Path] = False, progress: bool = True, stop_after: Optional[int] = None
                 ) -> Dict[str, Any]:
    """Supernet pretraining (``asearch pretrain``, paper 000 Alg. 1): see :func:`train_experiment`.

    ``cfg_or_path``: an experiment YAML path, a plain mapping or an :class:`ExperimentConfig`; ``overrides``:
    ``key=value`` strings; ``resume``: continue from ``out_dir/checkpoints/latest.pt``; ``stop_after``: pause after
    that many steps (checkpoint written; continue with ``resume=True``). Returns ``{"checkpoint", "steps",
    "final_loss", ...}``.
    """
    return train_experiment(cfg_or_path, "pretrain", out_dir=out_dir, overrides=overrides, resume=resume,
                            progress=progress, stop_after=stop_after)


def run_retrain(cfg_or_path: ConfigLike, arch: Any = None, weights: Optional[Union[str, Path]] = None,
                out_dir: Optional[Union[str, Path]] = None, overrides: Sequence[str] = (),
                resume: Union[bool, str, Path] = False, progress: bool = True, stop_after: Optional[int] = None,
                init: Optional[Union[str, Path]] = None) -> Dict[str, Any]:
    """Retraining of a searched subnet in its tracker, or of a vision-only baseline (``asearch retrain``, paper
    000 Alg. 2): see :func:`train_experiment`. ``arch``: architecture JSON path (``asearch export``), official
    list-of-lists or Genome (default ``retrain.arch``; none for siamcar/transt/ostrack); ``weights``: inherited
    subnet weights (``asearch export --weights``; default ``retrain.weights``); ``init``: a training checkpoint
    whose model weights start the run (a later stage; default ``retrain.init``)."""
    return train_experiment(cfg_or_path, "retrain", out_dir=out_dir, overrides=overrides, resume=resume,
                            progress=progress, arch=arch, weights=weights, stop_after=stop_after, init=init)
