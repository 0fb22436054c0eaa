"""Inherited weights and genomes: what a retraining takes from a supernet (paper 000 Alg. 2).

The search space a model runs (:func:`search_space_of`, :func:`space_from_checkpoint`), the genome of an architecture
file (:func:`resolve_genome`), and the subnet file of ``asearch export --weights``: written by
:func:`save_inherited_weights` (the subnet and the supernet tracker's neck and head), read into a retraining model by
:func:`load_inherited_weights`. Split from :mod:`asearch.training.recipes`, which re-exports these names.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from torch import nn

from asearch.config import to_dict
from asearch.errors import ArchitectureError, CheckpointError, ConfigError

__all__ = ["INHERIT_MODES", "search_space_of", "space_from_checkpoint", "resolve_genome", "load_inherited_weights",
           "load_initial_checkpoint", "save_inherited_weights"]

log = logging.getLogger("asearch.training")

INHERIT_MODES = ("all", "backbone")


def _check_inherit(value: str) -> None:
    if value not in INHERIT_MODES:
        raise ConfigError(f"config key 'retrain.inherit' must be one of {', '.join(INHERIT_MODES)}, got {value!r}")


def search_space_of(model: nn.Module) -> Any:
    """The search space whose genomes ``model`` runs: ``model.search_space()`` when the model defines it, else the
    space of the first :class:`~supernets.VLTSupernet` inside it (variant, width, sizes, language width, sharing);
    ``None`` for a model without a supernet."""
    hook = getattr(model, "search_space", None)
    if callable(hook):
        return hook()
    from search_spaces.vlt import VARIANTS, build_space
    from supernets.vlt import VLTSupernet

    for module in model.modules():
        if isinstance(module, VLTSupernet):
            c = module.config
            return build_space(VARIANTS[c.variant], width_mult=c.width_mult, template_size=c.template_size,
                               search_size=c.search_size, language_dim=c.language_dim,
                               shared_branches=c.shared_branches)
    return None


def space_from_checkpoint(path: Any) -> Any:
    """The search space of a supernet checkpoint: ``build_info['search_space']`` when stored, else rebuilt from
    the model config (:func:`search_space_of`)."""
    from asearch.errors import ConfigError
    from asearch.io import load_torch
    from search_spaces.vlt import VLTSpace

    ckpt = load_torch(path)
    info = ckpt.get("build_info") if isinstance(ckpt, dict) else None
    if isinstance(info, dict) and isinstance(info.get("search_space"), dict):
        return VLTSpace.from_dict(info["search_space"], source=f"{path} (build_info.search_space)")
    from trackers.registry import build_model, model_config_from_checkpoint

    model = build_model(model_config_from_checkpoint(ckpt, str(path)), pretrained=False)
    space = search_space_of(model)
    if space is None:
        raise ConfigError(f"{path}: the model has no search space (not a supernet checkpoint)")
    return space


def resolve_genome(arch: Any) -> Any:
    """A :class:`~search_spaces.genome.Genome` from an architecture file (``asearch export`` JSON, an official
    ``[[20], [20], [4], [4]]`` JSON list or a YAML with ``CAND``), a Genome, or the official list-of-lists."""
    from search_spaces.genome import Genome

    if arch is None or isinstance(arch, Genome):
        return arch
    if isinstance(arch, (list, tuple)):
        return Genome.from_official(arch)
    from asearch import load_architecture

    return load_architecture(arch).genome


def _subnets(model: nn.Module) -> List[Tuple[str, Any]]:
    """``(name, module)`` of every :class:`~supernets.subnet.VLTSubnet` inside ``model``."""
    from supernets.subnet import VLTSubnet

    return [(name, m) for name, m in model.named_modules() if isinstance(m, VLTSubnet)]


def load_inherited_weights(model: nn.Module, path: Union[str, Path], model_name: Optional[str] = None,
                           inherit: str = "all") -> Dict[str, Any]:
    """Copy the subnet weights of ``path`` (``supernets.save_subnet`` / ``asearch export --weights``) into the
    fixed subnet inside ``model``; genome and supernet config must match.

    With ``inherit="all"`` the tracker parts the file carries (neck, head of the supernet's tracker) are loaded too
    when their family equals ``model_name`` (another family's head does not fit: skipped with a warning); every key
    must exist in ``model`` with the same shape, else :class:`CheckpointError` naming it. Returns ``{"path",
    "tensors", "tracker_tensors", "tracker_model"}`` (``tracker_tensors`` 0 when none were loaded).
    """
    from supernets.subnet import load_subnet_file
    from asearch.training.trainer import load_model_state
    from trackers.init_report import note_init

    _check_inherit(inherit)
    targets = _subnets(model)
    if not targets:
        raise ConfigError(f"--weights {path}: the model ({type(model).__name__}) has no searched subnet to receive "
                          "inherited weights (a vision-only baseline or a supernet)")
    src, parts = load_subnet_file(path)
    prefix, dst = targets[0]
    if src.genome != dst.genome:
        raise ArchitectureError(f"--weights {path}: its genome {src.genome.to_official()} differs from the model's "
                                f"{dst.genome.to_official()} (field build_info.genome; pass the matching --arch)")
    a, b = to_dict(src.config), to_dict(dst.config)
    for key in sorted(set(a) | set(b)):
        if key in ("template_size", "search_size"):  # nominal sizes only (cost/export): weights do not depend on them
            continue
        if a.get(key) != b.get(key):
            raise CheckpointError(f"{path}: field 'build_info.config.{key}' is {a.get(key)!r} but the model has "
                                  f"{b.get(key)!r} (model.supernet.{key})")
    state = src.state_dict()
    load_model_state(dst, state, source=str(path))
    note_init(dst, "inherited subnet weights (--weights)", path, len(state))
    out: Dict[str, Any] = {"path": str(path), "tensors": len(state), "tracker_tensors": 0, "tracker_model": None}
    if inherit != "all" or parts is None:
        return out
    family, tracker_state = parts
    out["tracker_model"] = family
    if model_name is not None and family != model_name:
        log.warning("--weights %s: its neck and head belong to a %s supernet, not to %s: only the subnet is "
                    "inherited", path, family, model_name)
        return out
    own = model.state_dict()
    for key, value in tracker_state.items():
        if key.startswith(prefix + ".") or key not in own:
            raise CheckpointError(f"{path}: key '{key}' of field 'tracker.state_dict' is not a {family} neck/head "
                                  f"tensor of this model (set retrain.inherit=backbone to inherit the subnet only)")
        if tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: key '{key}' of field 'tracker.state_dict' has shape "
                                  f"{tuple(value.shape)}, the model needs {tuple(own[key].shape)} (a different "
                                  "model.neck / model.head config? retrain.inherit=backbone skips them)")
    model.load_state_dict(tracker_state, strict=False)  # keys and shapes checked above
    for part in sorted({k.split(".")[0] for k in tracker_state}):
        note_init(model.get_submodule(part), f"inherited {family} {part} weights (--weights)", path,
                  sum(1 for k in tracker_state if k.split(".")[0] == part))
    out["tracker_tensors"] = len(tracker_state)
    return out


def load_initial_checkpoint(model: nn.Module, path: Union[str, Path], model_name: Optional[str] = None
                            ) -> Dict[str, Any]:
    """Copy the model weights of a training checkpoint (an earlier run's ``checkpoints/latest.pt``) into ``model``,
    every tensor (``asearch retrain --init``, a later training stage). The checkpoint's model family
    (``build_info.model.name``) must be ``model_name`` when both are known; a missing, unexpected or misshaped key
    raises :class:`CheckpointError` naming it. Returns ``{"path", "tensors", "step"}``."""
    from asearch.training.trainer import load_checkpoint, load_model_state
    from trackers.init_report import note_init

    ckpt = load_checkpoint(path)
    info = ckpt.get("build_info")
    family = info.get("model", {}).get("name") if isinstance(info, dict) else None
    if model_name is not None and family is not None and family != model_name:
        raise CheckpointError(f"--init {path}: the checkpoint holds a {family} model (field build_info.model.name), "
                              f"not {model_name}")
    load_model_state(model, ckpt["model"], source=f"--init {path}")
    note_init(model, "training checkpoint (--init)", path, len(ckpt["model"]))
    return {"path": str(path), "tensors": len(ckpt["model"]), "step": int(ckpt["step"])}


def _adopt_input_format(model: Dict[str, Any], input_format: str, weights: Union[str, Path]) -> None:
    """Retraining from inherited weights keeps their input format (:mod:`supernets.pixels`): ``model.supernet.
    input_format`` left out takes the subnet file's; a different explicit one is a ``ConfigError``."""
    given = (model.get("supernet") or {}).get("input_format")
    if given is None:
        if input_format != "imagenet_rgb":  # the default needs no record
            model["supernet"] = dict(model.get("supernet") or {}, input_format=input_format)
    elif given != input_format:
        raise ConfigError(f"config key 'model.supernet.input_format' is {given!r}, but --weights {weights} was "
                          f"trained on {input_format!r} input (field build_info.config.input_format)")


def save_inherited_weights(supernet: Union[str, Path], genome: Any, path: Union[str, Path]) -> Dict[str, Any]:
    """Write the subnet of ``genome`` with the weights it inherits from the ``supernet`` checkpoint, and the rest
    of the supernet's tracker (neck and head, trained with every path), to ``path`` (``asearch export --weights``;
    input of :func:`load_inherited_weights`). Returns ``{"model", "tracker_tensors"}``."""
    from supernets import extract_subnet, save_subnet
    from supernets.vlt import VLTSupernet
    from trackers.registry import load_model

    model, model_cfg = load_model(supernet)
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, VLTSupernet)]
    if not found and model_cfg.name == "vlt_ost":
        raise ConfigError(f"{supernet}: VLT_OST exports no inherited weights (--weights): its ViT is fixed, not "
                          "searched; export the architecture without --weights and retrain it from the MAE ViT "
                          "(model.vit.pretrained)")
    if not found:
        raise ConfigError(f"{supernet}: the model holds no VLT supernet to extract from")
    prefix, net = found[0]
    subnet = extract_subnet(net, genome)
    # the tracker around the supernet (neck, head): everything outside the supernet module
    rest = {k: v for k, v in model.state_dict().items() if prefix and not k.startswith(prefix + ".")}
    save_subnet(subnet, path, model_cfg.name if rest else None, rest if rest else None)
    return {"model": model_cfg.name, "tracker_tensors": len(rest)}
