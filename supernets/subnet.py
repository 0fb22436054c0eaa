"""A standalone subnet: only the blocks one genome picks, with weights inherited from the supernet.

The subnet keeps the supernet's parameter names (``backbones.shared.features.3.2.branch_main.0.weight``,
``mixers.search.1.blocks.0...``), so its state dict is a subset of the supernet's and extraction is a copy.
With ``shared_branches=True`` a layer where template and search pick different blocks holds both; where they pick
the same block it is shared, as in the supernet. The checkpoint of :func:`save_subnet` is self-describing
(``{'build_info': {...}, 'state_dict': {...}}``) and :func:`load_subnet` rebuilds it without the supernet.

The file may also carry the rest of the supernet's tracker (``'tracker': {'model': family, 'state_dict': {...}}``:
the neck and head that supernet pretraining trained along with every path), so that retraining can start from the
whole pretrained tracker, not only its backbone (:func:`load_subnet_file`; ``retrain.inherit``).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch

from asearch.config import from_dict, to_dict
from asearch.errors import ArchitectureError, CheckpointError
from asearch.io import atomic_torch_save, load_torch
from search_spaces.genome import Genome
from supernets.vlt import BRANCHES, SupernetConfig, VLTNetwork, VLTSupernet, validate_genome

__all__ = ["VLTSubnet", "extract_subnet", "save_subnet", "load_subnet", "load_subnet_file", "SUBNET_FORMAT"]

SUBNET_FORMAT = "asearch.vlt_subnet/1"


class VLTSubnet(VLTNetwork):
    """The VLT network of one genome (fixed path); same outputs as the supernet on that path."""

    def __init__(self, config: SupernetConfig, genome: Genome) -> None:
        genome = validate_genome(genome, config)  # before building: layer_choices indexes the genes

        def layer_choices(name: str, i: int) -> List[int]:
            branches = BRANCHES if name == "shared" else (name,)
            return [getattr(genome, br)[i] for br in branches]

        def mixer_choices(branch: str, s: int) -> List[int]:
            return [getattr(genome, f"{branch}_mixer")[s]]

        super().__init__(config, layer_choices, mixer_choices)
        self.genome = genome

    def build_info(self) -> Dict[str, Any]:
        """Plain data to rebuild this subnet: format, supernet config and the genome in the official form."""
        return {"format": SUBNET_FORMAT, "config": to_dict(self.config), "genome": self.genome.to_official()}

    def forward(self, template: torch.Tensor, search: torch.Tensor, language: torch.Tensor, *,
                template_box: Optional[torch.Tensor] = None, search_box: Optional[torch.Tensor] = None,
                use_template_language: Optional[torch.Tensor] = None,
                language_mask: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """As :meth:`VLTSupernet.forward` on this subnet's genome."""
        return self._forward(template, search, language, self.genome, template_box=template_box,
                             search_box=search_box, use_template_language=use_template_language,
                             language_mask=language_mask)

    def forward_template(self, template: torch.Tensor, language: torch.Tensor,
                         template_box: Optional[torch.Tensor] = None,
                         use_template_language: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """As :meth:`VLTSupernet.forward_template` on this subnet's genome."""
        return self._forward_template(template, language, self.genome, template_box, use_template_language)

    def forward_search(self, search: torch.Tensor, language: torch.Tensor,
                       template_state: Dict[str, Any]) -> List[torch.Tensor]:
        """As :meth:`VLTSupernet.forward_search` on this subnet's genome."""
        return self._forward_search(search, language, self.genome, template_state)[0]


def extract_subnet(supernet: VLTSupernet, genome: Genome) -> VLTSubnet:
    """A :class:`VLTSubnet` of ``genome`` holding copies of the supernet's weights and BN statistics."""
    genome = supernet.check_genome(genome)
    subnet = VLTSubnet(supernet.config, genome)
    ref = next(supernet.parameters())
    subnet.to(device=ref.device, dtype=ref.dtype)
    source = supernet.state_dict()
    target = subnet.state_dict()
    missing = [k for k in target if k not in source]
    if missing:  # cannot happen when both come from the same config; guard against future drift
        raise ArchitectureError(f"subnet key '{missing[0]}' has no counterpart in the supernet")
    subnet.load_state_dict({k: source[k].detach().clone() for k in target}, strict=True)
    subnet.train(supernet.training)
    return subnet


def save_subnet(subnet: VLTSubnet, path: Union[str, os.PathLike], tracker_model: Optional[str] = None,
                tracker_state: Optional[Mapping[str, torch.Tensor]] = None) -> None:
    """Write ``{'build_info', 'state_dict'}`` atomically (tensors moved to CPU).

    ``tracker_model`` / ``tracker_state``: optionally the family name of the supernet's tracker (e.g. ``vlt_scar``)
    and the state of its modules outside the VLT network (neck, head; keys as in the tracker), stored under
    ``'tracker'`` for :func:`load_subnet_file`.
    """
    state = {k: v.detach().cpu() for k, v in subnet.state_dict().items()}
    obj: Dict[str, Any] = {"build_info": subnet.build_info(), "state_dict": state}
    if (tracker_model is None) != (tracker_state is None):
        raise ValueError("save_subnet: give both tracker_model and tracker_state, or neither")
    if tracker_state is not None:
        obj["tracker"] = {"model": str(tracker_model),
                          "state_dict": {k: v.detach().cpu() for k, v in tracker_state.items()}}
    atomic_torch_save(obj, path)


TrackerParts = Tuple[str, Dict[str, torch.Tensor]]


def load_subnet(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu") -> VLTSubnet:
    """Rebuild a subnet saved by :func:`save_subnet` (no supernet needed); strict about keys and shapes."""
    return _subnet_from(load_torch(path, map_location=map_location, weights_only=True), path, map_location)


def load_subnet_file(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu"
                     ) -> Tuple[VLTSubnet, Optional[TrackerParts]]:
    """The subnet of a :func:`save_subnet` file (as :func:`load_subnet`) and its tracker parts ``(family name,
    state dict)``, ``None`` when the file holds only the subnet; the file is read once. A malformed ``tracker``
    entry raises :class:`CheckpointError` naming the field."""
    obj = load_torch(path, map_location=map_location, weights_only=True)
    return _subnet_from(obj, path, map_location), _tracker_from(obj, path)


def _tracker_from(obj: Any, path: Union[str, os.PathLike]) -> Optional[TrackerParts]:
    if not isinstance(obj, dict) or "tracker" not in obj:
        return None
    entry = obj["tracker"]
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        raise CheckpointError(f"{path}: field 'tracker.model' must be the tracker family's name")
    state = entry.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path}: field 'tracker.state_dict' must map parameter names to tensors")
    return entry["model"], dict(state)


def _subnet_from(obj: Any, path: Union[str, os.PathLike], map_location: Union[str, torch.device]) -> VLTSubnet:
    if not isinstance(obj, dict) or "build_info" not in obj or "state_dict" not in obj:
        raise CheckpointError(f"{path}: not a subnet checkpoint (expected keys 'build_info' and 'state_dict')")
    info = obj["build_info"]
    if not isinstance(info, dict) or info.get("format") != SUBNET_FORMAT:
        raise CheckpointError(f"{path}: field 'build_info.format' must be {SUBNET_FORMAT!r}, "
                              f"got {info.get('format') if isinstance(info, dict) else info!r}")
    config = from_dict(SupernetConfig, info.get("config"), source=f"{path} (build_info.config)")
    try:
        genome = Genome.from_official(info.get("genome"))
    except ArchitectureError as exc:
        raise CheckpointError(f"{path}: field 'build_info.genome': {exc}") from None
    subnet = VLTSubnet(config, genome)
    state = obj["state_dict"]
    expected = subnet.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: state_dict lacks key '{key}'")
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: key '{key}' has shape {tuple(state[key].shape)}, the subnet needs "
                                  f"{tuple(value.shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"{path}: unexpected key '{extra[0]}' in state_dict")
    subnet.load_state_dict(state, strict=True)
    return subnet.to(map_location)
