"""Build models, training actors and trackers by name, and rebuild a model from a self-describing checkpoint.

Each family registers a :class:`ModelEntry`: its model config dataclass (with a ``name`` field), loss and tracker
config dataclasses and three builders. Entries load lazily from ``"module:attribute"`` strings in
:data:`ENTRIES`; a family adds one line there (or calls :func:`register`).

A model config is the ``model`` section of an experiment YAML, e.g. (SiamCAR family)::

    model:
      name: vlt_scar            # or siamcar
      template_size: 127
      search_size: 255
      stages: [2, 3, 4]
      neck: {channels: 256, center_size: 7}
      head: {num_convs: 4, gn_groups: 32}
      supernet: {width_mult: 1.0, language_dim: 768}   # SupernetConfig fields (vlt_scar)
      genome: null              # official [[20], [20], [4], [4]] list: a fixed subnet instead of the supernet
      resnet: {width_mult: 1.0, pretrained: null}      # siamcar

Checkpoints: the trainer's ``{'model': state_dict, 'config': full config, 'build_info': {...}}``, or
``{'state_dict', 'build_info'}``; the model config is read from ``build_info['model']``, else ``build_info``
itself when it has a ``name``, else ``config['model']`` (see :func:`model_config_from_checkpoint`).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Tuple, Union

from torch import nn

from asearch.config import from_dict, to_dict
from asearch.errors import CheckpointError, ConfigError
from trackers.init_report import PretrainedKey
from trackers.language_config import (  # noqa: F401 (re-exported)
    LanguageConfig, build_featurizer, check_language_width, checkpoint_language, language_record, resolve_language,
)

__all__ = [
    "ModelEntry", "Lazy", "ENTRIES", "check_supernet_sizes", "register", "get_entry", "model_names", "model_config",
    "build_model", "build_actor", "build_tracker", "crop_rule", "build_info", "model_config_from_checkpoint",
    "load_model", "rebuild_model", "LanguageConfig", "build_featurizer", "language_record", "checkpoint_language",
    "resolve_language", "check_language_width", "resolve_input_format", "build_vlt_backbone", "NeckConfig",
    "HeadConfig", "ResNetConfig", "SiamCARModelConfig",
]


# ----------------------------------------------------------------------------------------------------------------------
# configs of the SiamCAR family
@dataclass
class NeckConfig:
    """SiamCAR neck: output channels (256) and template centre crop in cells (7; 0 = none)."""

    channels: int = 256
    center_size: int = 7


@dataclass
class HeadConfig:
    """CAR head: convs per tower (SiamCAR 4), GroupNorm groups, classification prior, ltrb activation."""

    num_convs: int = 4
    gn_groups: int = 32
    prior_prob: float = 0.01
    reg_activation: str = "exp"


@dataclass
class ResNetConfig:
    """SiamCAR's ResNet-50: width multiplier and an optional local ImageNet state-dict file."""

    width_mult: float = 1.0
    pretrained: Optional[str] = None


def check_supernet_sizes(cfg: Any) -> None:
    """A model config's ``supernet`` section may repeat ``template_size`` / ``search_size`` only with the model's
    values (the crops are set once, in ``model.template_size`` / ``model.search_size``): ``ConfigError`` else."""
    for key in ("template_size", "search_size"):
        if key in cfg.supernet and int(cfg.supernet[key]) != getattr(cfg, key):
            raise ConfigError(f"model.supernet.{key} ({cfg.supernet[key]}) differs from model.{key} "
                              f"({getattr(cfg, key)}); set it once, in model.{key}")


@dataclass
class SiamCARModelConfig:
    """Model section of the SiamCAR family (``name``: ``vlt_scar`` or ``siamcar``). A family that shares these keys
    with another head (SiamRPN++) subclasses it and sets ``names`` / ``family`` and ``head``."""

    names: ClassVar[Tuple[str, ...]] = ("vlt_scar", "siamcar")
    family: ClassVar[str] = "SiamCAR"
    name: str = "vlt_scar"
    template_size: int = 127
    search_size: int = 255
    stages: List[int] = field(default_factory=lambda: [2, 3, 4])
    neck: NeckConfig = field(default_factory=NeckConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    supernet: Dict[str, Any] = field(default_factory=dict)
    genome: Optional[List[List[int]]] = None
    spos_checkpoint: Optional[str] = None
    resnet: ResNetConfig = field(default_factory=ResNetConfig)

    def __post_init__(self) -> None:
        if self.name not in self.names:
            raise ConfigError(f"model.name {self.name!r} is not of the {self.family} family ({', '.join(self.names)})")
        if not self.stages or any(s not in (2, 3, 4) for s in self.stages):
            raise ConfigError(f"model.stages must be a non-empty subset of [2, 3, 4] (the stride-8 stages), "
                              f"got {self.stages}")
        check_supernet_sizes(self)


# ----------------------------------------------------------------------------------------------------------------------
# entries
@dataclass(frozen=True)
class ModelEntry:
    """One family member: configs and builders.

    ``build_model(cfg, pretrained) -> nn.Module``; ``build_actor(model, featurizer, loss_cfg, path_sampler)``;
    ``build_tracker(model, tracker_cfg, featurizer, genome, device)``. ``language_dim_key``: the dotted key of the
    model section holding the language width (``supernet.language_dim``; ``None``: a vision-only family), filled
    from the text encoder by :func:`trackers.language_width.resolve_language_dim`, as is ``language_encoder_key``
    (the key holding ``language.encoder``, for a model with its own language model). ``pretrained``: the family's
    pretrained-weight keys and the files its paper starts from (``init_report.null_pretrained_warnings``).
    ``build_dataset(sources, ratios, sampler_options, model_cfg, language_cfg, seed, length)``: a family that does
    not train on template/search pairs (the grounding model: whole frames) builds its own training items; ``None``:
    the pair sampler (:func:`asearch.training.recipes.build_pair_dataset`)."""

    config_cls: type
    loss_config_cls: type
    tracker_config_cls: type
    build_model: Callable[..., nn.Module]
    build_actor: Callable[..., Any]
    build_tracker: Callable[..., Any]
    language_dim_key: Optional[str] = None
    pretrained: Tuple[PretrainedKey, ...] = ()
    language_encoder_key: Optional[str] = None
    build_dataset: Optional[Callable[..., Any]] = None


class Lazy:
    """A callable standing for ``"module:attribute"``, imported on the first call and called with its arguments:
    a family's entry names its actor and tracker classes without importing them (they import the registry)."""

    def __init__(self, target: str) -> None:
        self.module, _, self.attribute = target.partition(":")
        if not self.module or not self.attribute:
            raise ValueError(f"Lazy target must be 'module:attribute', got {target!r}")

    def __repr__(self) -> str:
        return f"Lazy('{self.module}:{self.attribute}')"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.attribute)(*args, **kwargs)


#: name -> "module:attribute" of its :class:`ModelEntry` (loaded on first use)
ENTRIES: Dict[str, str] = {
    "vlt_scar": "trackers.registry:VLT_SCAR",
    "siamcar": "trackers.registry:SIAMCAR",
    "vlt_ost": "trackers.models.ostrack:VLT_OST",
    "ostrack": "trackers.models.ostrack:OSTRACK",
    "vlt_tt": "trackers.models.transt:VLT_TT_ENTRY",
    "transt": "trackers.models.transt:TRANST_ENTRY",
    "vlt_rpnpp": "trackers.models.rpn:VLT_RPNPP_ENTRY",
    "siamrpnpp": "trackers.models.rpn:SIAMRPNPP_ENTRY",
    "pjvlt": "trackers.models.pjvlt:PJVLT_ENTRY",
    "cost": "trackers.models.cost:COST_ENTRY",
    "ctrtnl": "trackers.models.ctrtnl:CTRTNL_ENTRY",
    "satracker": "trackers.models.satracker:SATRACKER_ENTRY",
    "grounding": "trackers.models.grounding:GROUNDING_ENTRY",
}
_LOADED: Dict[str, ModelEntry] = {}


def register(name: str, entry: ModelEntry) -> None:
    """Register (or replace) the entry of ``name``."""
    _LOADED[name] = entry


def model_names() -> List[str]:
    """Every registered model name."""
    return sorted(set(ENTRIES) | set(_LOADED))


def get_entry(name: str) -> ModelEntry:
    """The entry of model ``name`` (``ConfigError`` listing the known names when unknown)."""
    if name in _LOADED:
        return _LOADED[name]
    if name not in ENTRIES:
        raise ConfigError(f"unknown model name {name!r} (key model.name); known: {', '.join(model_names())}")
    module, attr = ENTRIES[name].split(":")
    entry = getattr(importlib.import_module(module), attr)
    _LOADED[name] = entry
    return entry


def model_config(cfg: Union[Mapping[str, Any], Any], source: str = "model") -> Any:
    """The model config dataclass of ``cfg`` (a mapping with ``name``, or already a dataclass)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return cfg
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise ConfigError(f"{source}: the model config needs a 'name' (one of {', '.join(model_names())})")
    entry = get_entry(str(cfg["name"]))
    return from_dict(entry.config_cls, cfg, source=source, prefix="model.")


def build_model(cfg: Union[Mapping[str, Any], Any], pretrained: bool = True) -> nn.Module:
    """Build the model named by ``cfg.name``; ``pretrained`` loads the configured initial weights (ImageNet ResNet,
    SPOS supernet), which a rebuild from a checkpoint skips."""
    cfg = model_config(cfg)
    return get_entry(cfg.name).build_model(cfg, pretrained)


def _section(cls: type, value: Any, name: str) -> Any:
    """A family's config section ``name`` (``loss``, ``tracker``): ``value`` itself when it is already a dataclass,
    else ``cls`` read from the mapping (``None``: the defaults)."""
    return value if dataclasses.is_dataclass(value) else from_dict(cls, value or {}, name, name + ".")


def build_actor(model: nn.Module, cfg: Union[Mapping[str, Any], Any], featurizer: Any = None,
                loss: Union[Mapping[str, Any], Any, None] = None, path_sampler: Any = None) -> Any:
    """The training actor of the model family of ``cfg`` with the ``loss`` section."""
    cfg = model_config(cfg)
    entry = get_entry(cfg.name)
    return entry.build_actor(model, featurizer, _section(entry.loss_config_cls, loss, "loss"), path_sampler)


def build_tracker(model: nn.Module, cfg: Union[Mapping[str, Any], Any], tracker: Union[Mapping[str, Any], Any, None]
                  = None, featurizer: Any = None, genome: Any = None, device: Any = None) -> Any:
    """The tracker (inference policy) of the model family of ``cfg`` with the ``tracker`` section."""
    cfg = model_config(cfg)
    entry = get_entry(cfg.name)
    tcfg = _section(entry.tracker_config_cls, tracker, "tracker")
    if featurizer is not None and getattr(model, "uses_language", False):
        check_language_width(featurizer, model, source="this tracker")
    return entry.build_tracker(model, tcfg, featurizer, genome, device)


def crop_rule(cfg: Union[Mapping[str, Any], Any], tracker: Union[Mapping[str, Any], Any, None] = None) -> Any:
    """The crop rule (:class:`~asearch.data.crops.CropRule`) of the model family of ``cfg`` with the ``tracker``
    section: the one its tracker crops with, handed to the training pair sampler so that a family trains on the
    crops it tracks on. It comes from the tracker config's ``crop_rule(template_size, search_size)``."""
    cfg = model_config(cfg)
    entry = get_entry(cfg.name)
    tcfg = _section(entry.tracker_config_cls, tracker, "tracker")
    if not hasattr(tcfg, "crop_rule"):
        raise ConfigError(f"model '{cfg.name}': its tracker config {type(tcfg).__name__} defines no "
                          "crop_rule(template_size, search_size)")
    return tcfg.crop_rule(cfg.template_size, cfg.search_size)


def build_info(cfg: Any) -> Dict[str, Any]:
    """Plain data stored in checkpoints to rebuild the model: ``{'model': <model config dict>}``; a VLT backbone
    initialised from the official SPOS weights gets its resolved ``supernet.input_format: spos_bgr`` written out
    (:func:`resolve_input_format`), so the record holds it whatever later becomes of ``spos_checkpoint``."""
    cfg = model_config(cfg)
    data = to_dict(cfg)
    if isinstance(data.get("supernet"), dict) and getattr(cfg, "spos_checkpoint", None):
        data["supernet"] = dict(data["supernet"], input_format=resolve_input_format(cfg))
    return {"model": data}


def model_config_from_checkpoint(ckpt: Mapping[str, Any], source: str = "<checkpoint>",
                                 language_encoder: Optional[str] = None) -> Any:
    """The model config stored in a checkpoint (module docstring); ``CheckpointError`` when it holds none.

    ``language_encoder`` (``language.encoder`` of the command's YAML or ``--set``) replaces, for a family with its own
    language model (``ModelEntry.language_encoder_key``, e.g. PJVLT's ``text.encoder``), the encoder path recorded at
    training time: the checkpoint holds the language model's weights, but its config and tokenizer are read from that
    folder, which may not exist on the machine that tracks."""
    info = ckpt.get("build_info")
    found = None
    if isinstance(info, Mapping):
        if isinstance(info.get("model"), Mapping):
            found = info["model"], f"{source} (build_info.model)"
        elif "name" in info:
            found = info, f"{source} (build_info)"
    config = ckpt.get("config")
    if found is None and isinstance(config, Mapping) and isinstance(config.get("model"), Mapping):
        found = config["model"], f"{source} (config.model)"
    if found is not None:
        model, where = found
        key = None
        if language_encoder is not None and "name" in model:
            key = get_entry(str(model["name"])).language_encoder_key
        if key is not None:
            from trackers.language_width import _set

            model = dict(model)
            _set(model, key, str(language_encoder))
        return model_config(model, where)
    raise CheckpointError(f"{source}: no model config found (expected 'build_info.model' or 'config.model' with a "
                          "'name'); a subnet file of supernets.save_subnet is a backbone, not a tracker")


def load_model(path: Union[str, Path], map_location: Any = "cpu") -> Tuple[nn.Module, Any]:
    """Rebuild a model from a self-describing checkpoint and load its weights (strict): ``(model, model_cfg)``."""
    from asearch.io import load_torch

    return rebuild_model(load_torch(path, map_location=map_location), str(path))


def rebuild_model(ckpt: Any, path: str = "<checkpoint>",
                  language_encoder: Optional[str] = None) -> Tuple[nn.Module, Any]:
    """:func:`load_model` on a checkpoint already read (e.g. to read its :func:`checkpoint_language` too);
    ``language_encoder``: see :func:`model_config_from_checkpoint`."""
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{path}: not a checkpoint dict")
    cfg = model_config_from_checkpoint(ckpt, str(path), language_encoder)
    state = ckpt.get("model", ckpt.get("state_dict"))
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: no weights (expected key 'model' or 'state_dict')")
    model = build_model(cfg, pretrained=False)
    own = model.state_dict()
    for key in own:
        if key not in state:
            raise CheckpointError(f"{path}: key '{key}' of the model is missing from the checkpoint")
        if tuple(state[key].shape) != tuple(own[key].shape):
            raise CheckpointError(f"{path}: key '{key}' has shape {tuple(state[key].shape)} in the checkpoint, "
                                  f"{tuple(own[key].shape)} in the model")
    extra = [k for k in state if k not in own]
    if extra:
        raise CheckpointError(f"{path}: key '{extra[0]}' of the checkpoint does not belong to the model")
    model.load_state_dict(dict(state), strict=True)
    return model, cfg


# ----------------------------------------------------------------------------------------------------------------------
# SiamCAR family builders
def _neck_head(cfg: SiamCARModelConfig, channels: List[int], stride: int):
    from trackers.heads.car import SiamCARHead
    from trackers.necks import AdjustNeck

    neck = AdjustNeck([channels[s - 1] for s in cfg.stages], cfg.neck.channels, cfg.neck.center_size)
    head = SiamCARHead(len(cfg.stages), cfg.neck.channels, cfg.head.num_convs, 2, cfg.head.gn_groups,
                       cfg.head.prior_prob, cfg.head.reg_activation, stride)
    return neck, head


def resolve_input_format(cfg: Any) -> str:
    """The input format of a VLT backbone's stem (:mod:`supernets.pixels`): ``model.supernet.input_format`` when set,
    else ``spos_bgr`` with ``model.spos_checkpoint`` (the official SPOS weights were trained on BGR 0..255) and
    ``imagenet_rgb`` without. An explicit ``imagenet_rgb`` beside an SPOS checkpoint is a ``ConfigError``: the stem
    would see red and blue swapped and input statistics far from its BatchNorms'."""
    from supernets.pixels import check_input_format

    given = dict(cfg.supernet).get("input_format")
    spos = getattr(cfg, "spos_checkpoint", None)
    if given is None:
        return "spos_bgr" if spos else "imagenet_rgb"
    check_input_format(given, "model.supernet.input_format")
    if spos and given != "spos_bgr":
        raise ConfigError(f"config key 'model.supernet.input_format' is {given!r}, but model.spos_checkpoint "
                          f"({spos}) holds the official SPOS weights, trained on 'spos_bgr' input (BGR 0..255): "
                          "set it to spos_bgr or null")
    return str(given)


def build_vlt_backbone(cfg: Any, pretrained: bool = True) -> nn.Module:
    """The VLT backbone of a model config with ``supernet`` (SupernetConfig fields), ``template_size``,
    ``search_size``, ``genome`` and ``spos_checkpoint``: the supernet when ``genome`` is null, else that genome's
    subnet (with weights inherited from the SPOS checkpoint when ``pretrained`` and one is configured)."""
    from supernets import SupernetConfig, VLTSubnet, build_supernet, extract_subnet, load_spos_checkpoint

    sn = dict(cfg.supernet)
    sn.update(template_size=cfg.template_size, search_size=cfg.search_size,
              input_format=resolve_input_format(cfg))
    net_cfg = from_dict(SupernetConfig, sn, source="model.supernet", prefix="model.supernet.")
    spos = cfg.spos_checkpoint if pretrained else None
    if cfg.genome is None:
        backbone = build_supernet(net_cfg)
        if spos:
            load_spos_checkpoint(backbone, spos)
    elif spos:
        supernet = build_supernet(net_cfg)
        report = load_spos_checkpoint(supernet, spos)
        backbone = extract_subnet(supernet, cfg.genome)
        from trackers.init_report import note_init

        note_init(backbone, "SPOS supernet checkpoint (its subnet)", spos, len(report.loaded))
    else:
        from supernets.vlt import validate_genome

        backbone = VLTSubnet(net_cfg, validate_genome(cfg.genome, net_cfg))
    return backbone


def _build_vlt_scar(cfg: SiamCARModelConfig, pretrained: bool = True) -> nn.Module:
    from trackers.models.vlt_scar import VLTSCAR

    backbone = build_vlt_backbone(cfg, pretrained)
    neck, head = _neck_head(cfg, backbone.channels, backbone.stride)
    return VLTSCAR(backbone, neck, head, cfg.stages, cfg.template_size, cfg.search_size,
                   backbone.config.language_dim)


def _build_siamcar(cfg: SiamCARModelConfig, pretrained: bool = True) -> nn.Module:
    from trackers.backbones.resnet import resnet50
    from trackers.models.siamcar import SiamCAR

    backbone = resnet50(cfg.resnet.width_mult, cfg.resnet.pretrained if pretrained else None)
    neck, head = _neck_head(cfg, backbone.channels, backbone.stride)
    return SiamCAR(backbone, neck, head, cfg.stages, cfg.template_size, cfg.search_size)


#: the files the papers start from (:attr:`ModelEntry.pretrained`)
SPOS_INIT = PretrainedKey("spos_checkpoint", "the SPOS ImageNet supernet (the official SPOS checkpoint-*.pth.tar)",
                          inherited_replaces=True)
RESNET_INIT = PretrainedKey("resnet.pretrained", "an ImageNet ResNet-50 (torchvision's resnet50-*.pth state dict)")


def _family(build, language_dim_key: Optional[str] = None, pretrained: Tuple[PretrainedKey, ...] = ()):
    from trackers.inference.siamcar import TrackerConfig
    from trackers.losses.car import CARLossConfig

    return ModelEntry(SiamCARModelConfig, CARLossConfig, TrackerConfig, build,
                      Lazy("trackers.actors.siamcar:SiamCARActor"), Lazy("trackers.inference.siamcar:SiamCARTracker"),
                      language_dim_key, pretrained)


VLT_SCAR = _family(_build_vlt_scar, "supernet.language_dim", (SPOS_INIT,))
SIAMCAR = _family(_build_siamcar, None, (RESNET_INIT,))
