"""What each part of a model was initialised from: files and tensor counts, or random init.

The weight loaders (:func:`supernets.load_spos_checkpoint`, :meth:`trackers.backbones.resnet.ResNet.load_pretrained`,
:func:`trackers.backbones.vit.load_vit_weights`, the inherited subnet of ``asearch retrain --weights``) call
:func:`note_init` with the module they filled; inside :func:`collect_init` the notes are kept, and
:func:`init_lines` turns them into one line per top-level part of the model. :func:`null_pretrained_warnings`
names the pretrained-weight keys of a family (:attr:`trackers.registry.ModelEntry.pretrained`) that a config
leaves null, with the file the paper starts from: training from scratch is then a choice the log shows.
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence

from torch import nn

__all__ = ["InitNote", "PretrainedKey", "note_init", "collect_init", "init_lines", "null_pretrained_warnings"]


@dataclass
class InitNote:
    """``tensors`` tensors of ``module`` were loaded from ``path`` (``what``: e.g. "SPOS supernet checkpoint")."""

    module: nn.Module
    what: str
    path: str
    tensors: int


class PretrainedKey(NamedTuple):
    """A family's pretrained-weight key (dotted, under ``model``), the file the paper starts from, and whether
    ``asearch retrain --weights`` replaces it (the searched subnet inherits the supernet's weights)."""

    key: str
    paper: str
    inherited_replaces: bool = False


_NOTES: contextvars.ContextVar[Optional[List[InitNote]]] = contextvars.ContextVar("asearch_init_notes", default=None)


def note_init(module: nn.Module, what: str, path: Any, tensors: int) -> None:
    """Record that ``module`` got ``tensors`` tensors from ``path`` (kept only inside :func:`collect_init`)."""
    notes = _NOTES.get()
    if notes is not None:
        notes.append(InitNote(module, what, str(path), int(tensors)))


@contextlib.contextmanager
def collect_init() -> Iterator[List[InitNote]]:
    """Collect the :func:`note_init` calls made inside the block into the yielded list."""
    notes: List[InitNote] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)


def init_lines(model: nn.Module, notes: Sequence[InitNote]) -> List[str]:
    """One line per top-level part of ``model``: ``"backbone: SPOS supernet checkpoint F (250 tensors loaded of
    260)"`` or ``"head: random init (12 tensors)"``; notes on modules no longer in the model are dropped."""
    names = {id(m): name for name, m in model.named_modules()}
    located = [(names[id(n.module)], n) for n in notes if id(n.module) in names]
    parts = list(model.named_children()) or [("model", model)]
    lines = []
    for part, module in parts:
        total = len(module.state_dict())
        if not total:
            continue
        mine = [n for name, n in located if name == "" or name == part or name.startswith(part + ".")]
        if not mine:
            lines.append(f"{part}: random init ({total} tensors)")
            continue
        seen = []
        for n in mine:
            text = f"{n.what} {n.path} ({n.tensors} tensors)"
            if text not in seen:
                seen.append(text)
        lines.append(f"{part}: " + "; ".join(seen) + f" [{total} tensors in the part]")
    return lines


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None
    return node


def null_pretrained_warnings(model_cfg: Any, keys: Sequence[PretrainedKey], inherited: bool = False,
                             source: str = "<config>") -> List[str]:
    """A warning per pretrained key of ``keys`` that ``model_cfg`` leaves null (skipping those that inherited
    weights replace when ``inherited``), naming the key and the file the paper starts from."""
    out = []
    for spec in keys:
        if _get(model_cfg, spec.key) is not None or (inherited and spec.inherited_replaces):
            continue
        out.append(f"{source}: model.{spec.key} is null, so that part starts from RANDOM INIT; the paper starts "
                   f"from {spec.paper}: set model.{spec.key} to that local file (nothing is downloaded)")
    return out
