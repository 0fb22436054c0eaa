"""Load the official SPOS ImageNet supernet into the VLT supernet (paper 000 §3.3: "φ_t and φ_s reuse the
pretrained supernet of SPOS"; "φ_m copies the weight of the last layer").

The official file (``checkpoint-*.pth.tar``) is ``{'state_dict': {...}}`` with a ``module.`` prefix on every key:
``first_conv.0.weight`` (stem conv), ``first_conv.1.*`` (stem BN statistics), ``features.{layer}.{choice}.
{branch_main|branch_proj}.{idx}.{weight|running_mean|running_var|num_batches_tracked}`` (20 layers × 4 choices,
all BatchNorms ``affine=False``), and the classification head ``conv_last.*`` and ``classifier.*``.

Loading: every stem/feature tensor goes to the same name in each backbone of the supernet (``backbones.shared`` or
``backbones.template`` and ``backbones.search``), BN running statistics included; the head is skipped; then every
mixer block (4 choices × 4 stages × 2 branches) is initialised from the loaded block of the same choice in its
stage's last layer. All shapes and keys are checked before any tensor is copied: the first key whose shape does not
match (e.g. a supernet of width ≠ 1.0) raises :class:`CheckpointError` naming it, and so does a key the supernet
has no place for or a backbone tensor the file lacks. With ``affine_bn=True`` the BN weights/biases, which the file
does not have, keep their initial values and are listed in the report.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import torch

from asearch.errors import CheckpointError
from asearch.io import load_torch
from supernets.vlt import VLTNetwork, stage_layer_ranges

__all__ = ["load_spos_checkpoint", "CheckpointReport", "SKIPPED_PREFIXES", "read_spos_state_dict"]

#: parts of the SPOS classification net that the tracking supernet does not have
SKIPPED_PREFIXES: Tuple[str, ...] = ("conv_last.", "classifier.", "globalpool.", "dropout.")
_BACKBONE_PREFIXES: Tuple[str, ...] = ("first_conv.", "features.")


@dataclass
class CheckpointReport:
    """What :func:`load_spos_checkpoint` did (keys of the file and of the supernet)."""

    path: str
    loaded: List[str] = field(default_factory=list)  #: file keys copied into the backbone(s)
    skipped: List[str] = field(default_factory=list)  #: file keys not used (classification head)
    initialised: List[str] = field(default_factory=list)  #: supernet mixer keys copied from stage last layers
    kept_init: List[str] = field(default_factory=list)  #: supernet keys the file has no value for (affine BN)

    def to_dict(self) -> Dict[str, Any]:
        """Plain data (for logs and JSON)."""
        return {"path": self.path, "loaded": list(self.loaded), "skipped": list(self.skipped),
                "initialised": list(self.initialised), "kept_init": list(self.kept_init)}

    def __str__(self) -> str:
        return (f"SPOS checkpoint {self.path}: loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} "
                f"({', '.join(sorted({k.split('.')[0] for k in self.skipped})) or 'none'}), initialised "
                f"{len(self.initialised)} mixer tensors, kept {len(self.kept_init)} initial tensors")


def read_spos_state_dict(path: Union[str, os.PathLike]) -> Dict[str, torch.Tensor]:
    """The official file's state dict with the ``module.`` prefix removed (``weights_only`` loading)."""
    obj = load_torch(path, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: expected a SPOS checkpoint {{'state_dict': {{...}}}}, got {type(obj).__name__}")
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: key '{key}' is not a tensor")
        out[key[len("module."):] if key.startswith("module.") else key] = value
    return out


def load_spos_checkpoint(supernet: VLTNetwork, path: Union[str, os.PathLike]) -> CheckpointReport:
    """Load the official SPOS supernet checkpoint into ``supernet`` (both backbones) and initialise its mixers.

    The official supernet was trained on BGR pixels 0..255 without mean/std normalisation, so the loader sets the
    supernet's ``config.input_format`` to ``spos_bgr`` (:mod:`supernets.pixels`): the RGB 0..255 crops it is fed
    then reach the stem as the official preprocessing gives them. A tracker config records the same through
    :func:`trackers.registry.resolve_input_format`."""
    path = Path(path)
    source = read_spos_state_dict(path)
    target = supernet.state_dict()
    names = list(supernet.backbones.keys())
    report = CheckpointReport(path=str(path))

    # 1. plan and check everything before copying anything
    plan: List[Tuple[str, torch.Tensor]] = []
    for key, value in source.items():
        if key.startswith(SKIPPED_PREFIXES):
            report.skipped.append(key)
            continue
        if not key.startswith(_BACKBONE_PREFIXES):
            raise CheckpointError(f"{path}: key '{key}' is not part of the SPOS supernet layout "
                                  f"(expected first_conv.*, features.*, conv_last.*, classifier.*)")
        for name in names:
            dest = f"backbones.{name}.{key}"
            if dest not in target:
                raise CheckpointError(f"{path}: key '{key}' has no place in the supernet (no '{dest}')")
            if tuple(target[dest].shape) != tuple(value.shape):
                raise CheckpointError(
                    f"{path}: key '{key}' has shape {tuple(value.shape)} but the supernet's '{dest}' has "
                    f"{tuple(target[dest].shape)} (is the supernet width_mult {supernet.config.width_mult} the "
                    f"checkpoint's?)")
            plan.append((dest, value))
        report.loaded.append(key)
    planned = {dest for dest, _ in plan}
    for name in names:
        prefix = f"backbones.{name}."
        for dest in target:
            if dest.startswith(prefix) and dest not in planned:
                if dest.endswith((".weight", ".bias")) and _is_batchnorm(supernet, dest):
                    report.kept_init.append(dest)
                else:
                    raise CheckpointError(f"{path}: the checkpoint lacks key '{dest[len(prefix):]}' "
                                          f"(needed for '{dest}')")

    # 2. copy the backbone tensors
    with torch.no_grad():
        for dest, value in plan:
            target[dest].copy_(value)

        # 3. mixer blocks <- the stage's last layer, same choice ("φ_m copies the weight of the last layer")
        last_layers = [r[-1] for r in stage_layer_ranges()]
        for branch, mixers in supernet.mixers.items():
            backbone = supernet.backbone(branch)
            for s, mixer in enumerate(mixers):
                for choice in mixer.blocks.choices:
                    if choice not in backbone.features[last_layers[s]].choices:
                        continue
                    src = backbone.features[last_layers[s]].block(choice).state_dict()
                    dst = mixer.blocks.block(choice).state_dict()
                    for k, v in dst.items():
                        if tuple(src[k].shape) != tuple(v.shape):  # same layer shape by construction
                            raise CheckpointError(f"mixers.{branch}.{s}.blocks.{choice}.{k}: shape {tuple(v.shape)}"
                                                  f" differs from the last layer's {tuple(src[k].shape)}")
                        v.copy_(src[k])
                        report.initialised.append(f"mixers.{branch}.{s}.blocks.{choice}.{k}")
    supernet.config.input_format = "spos_bgr"
    supernet.pixels.input_format = "spos_bgr"
    from trackers.init_report import note_init

    note_init(supernet, "SPOS supernet checkpoint", path, len(report.loaded) + len(report.initialised))
    return report


def _is_batchnorm(module: torch.nn.Module, key: str) -> bool:
    owner = module.get_submodule(key.rsplit(".", 1)[0])
    return isinstance(owner, torch.nn.modules.batchnorm._BatchNorm)
