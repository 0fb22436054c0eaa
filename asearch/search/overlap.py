"""Is the search's validation set training data? The validation videos a supernet was pretrained on (issue 18).

Eq. 6 of paper 000 ranks candidates by SUC on *validation* videos; videos the supernet's shared weights were
trained on favour the paths that fit them best, not the ones that track best. The checkpoint of ``asearch
pretrain`` stores its ``data`` section, so the overlap is decided from names alone (no training root is read): a
training source covers a validation video when it is the same dataset (registry name) and the same split, its
``held_out`` option does not drop the video (``exclude`` drops the dataset's held-out list, ``only`` keeps just
it; :mod:`asearch.data.datasets.base`) and, when it has a readable ``split_file``, that file lists the video (an
unreadable one counts as covering it). Splits are compared by name: a source of split ``all`` is not matched
against a validation split ``train``.

:func:`check_validation_overlap` is what ``asearch search`` calls: one :class:`~asearch.errors.DataWarning` and one
log record naming the videos when there is an overlap. The defaults are clean: LaSOT's held-out videos are
excluded from the VLT pretraining configs and are the validation set of ``experiments/vlt_scar/search.yaml``.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, List, Mapping, Optional, Union

from asearch.errors import DataError, DataWarning
from asearch.search.fitness import ValidationConfig, validation_names

__all__ = ["training_overlap", "check_validation_overlap"]

log = logging.getLogger("asearch.search")


def _trained_on(spec: Mapping[str, Any], names: List[str]) -> List[str]:
    """Those of ``names`` (videos of the source's dataset and split) that training source ``spec`` trains on."""
    from asearch.data.datasets.base import read_split_file
    from asearch.data.registry import dataset_class

    options = dict(spec.get("options") or {})
    names = dataset_class(str(spec["name"])).filter_held_out(names, options.get("held_out", "keep"))
    split_file = options.get("split_file")
    if split_file is not None and Path(split_file).is_file():
        try:
            listed = set(read_split_file(split_file))
        except DataError:  # a broken file is the trainer's error to raise; here it counts as covering everything
            listed = None
        if listed is not None:
            names = [n for n in names if n in listed]
    return names


def training_overlap(validation: ValidationConfig, data: Optional[Mapping[str, Any]],
                     names: Optional[List[str]] = None) -> List[str]:
    """The validation videos of ``validation`` that the training ``data`` section (a checkpoint's) trains on.

    Args:
        validation: the fitness's validation set.
        data: a ``data`` section (``datasets``: name, split, options...), e.g. ``checkpoint["config"]["data"]``;
            None or empty: no recorded training data, no overlap.
        names: the validation video names when already known (default: :func:`validation_names`).

    Returns:
        The overlapping video names, in validation order (empty when the validation set is held out).
    """
    from asearch.data.registry import dataset_class

    sources = list((data or {}).get("datasets") or [])
    key = dataset_class(validation.dataset).dataset_name
    matching = [s for s in sources if isinstance(s, Mapping) and s.get("name")
                and dataset_class(str(s["name"])).dataset_name == key and s.get("split", "train") == validation.split]
    if not matching:
        return []
    names = validation_names(validation) if names is None else list(names)
    covered = set()
    for spec in matching:
        covered.update(_trained_on(spec, names))
    return [n for n in names if n in covered]


def check_validation_overlap(supernet: Union[str, Path], *validations: ValidationConfig) -> List[str]:
    """Warn (:class:`~asearch.errors.DataWarning` and the ``asearch.search`` log), once per validation set, when
    its videos overlap the training data recorded in the ``supernet`` checkpoint's config (read once); returns the
    overlapping names of all the sets, in order."""
    from asearch.io import load_torch

    ckpt = load_torch(supernet, map_location="cpu")
    config = ckpt.get("config") if isinstance(ckpt, Mapping) else None
    data = config.get("data") if isinstance(config, Mapping) else None
    del ckpt
    found: List[str] = []
    for validation in validations:
        overlap = training_overlap(validation, data)
        if overlap:
            shown = ", ".join(overlap[:5]) + (", ..." if len(overlap) > 5 else "")
            message = (f"{len(overlap)} of the validation videos ({validation.dataset} split '{validation.split}': "
                       f"{shown}) are in the training data of the supernet {supernet} (its config's data.datasets); "
                       "the search then favours paths that fit them. Score held-out videos instead (LaSOT: "
                       "fitness.validation.options: {held_out: only}, pretraining with options: "
                       "{held_out: exclude})")
            warnings.warn(DataWarning(message), stacklevel=2)
            log.warning(message)
        found += overlap
    return found
