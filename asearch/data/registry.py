"""Build any dataset reader by name: ``build_dataset("lasot", split="test")``.

Roots come from the ``root`` argument or from ``$ASEARCH_<NAME>_ROOT`` (e.g. ``ASEARCH_LASOT_EXT_ROOT``); a missing
root raises :class:`~asearch.errors.ConfigError` that says what to set and the layout the reader expects.
"""
from __future__ import annotations

import inspect
from typing import Dict, List, Optional, Type

from asearch.config import dataset_root
from asearch.data.datasets import (
    COCODataset, GOT10kDataset, LaSOTDataset, LaSOTExtDataset, OTB99LangDataset, RefCOCODataset, SequenceDataset,
    SyntheticBenchmarkDataset, TNL2KDataset, TrackingNetDataset, VLSOT500Dataset, WebUAV3MDataset,
)
from asearch.data.datasets.base import AttributeSource, PathLike
from asearch.errors import ConfigError

__all__ = ["DATASETS", "dataset_names", "dataset_class", "build_dataset"]

#: Registry name -> reader class.
DATASETS: Dict[str, Type[SequenceDataset]] = {
    "lasot": LaSOTDataset,
    "lasot_ext": LaSOTExtDataset,
    "tnl2k": TNL2KDataset,
    "otb99_lang": OTB99LangDataset,
    "got10k": GOT10kDataset,
    "trackingnet": TrackingNetDataset,
    "webuav3m": WebUAV3MDataset,
    "vl_sot500": VLSOT500Dataset,
    "coco": COCODataset,
    "refcoco": RefCOCODataset,
    "synthetic": SyntheticBenchmarkDataset,
}

_ALIASES = {
    "lasotext": "lasot_ext", "lasot_extension": "lasot_ext", "otb99": "otb99_lang", "otb99lang": "otb99_lang",
    "otb_lang": "otb99_lang", "got_10k": "got10k", "webuav_3m": "webuav3m", "vlsot500": "vl_sot500",
}


def dataset_names() -> List[str]:
    """Names :func:`build_dataset` accepts."""
    return list(DATASETS)


def dataset_class(name: str) -> Type[SequenceDataset]:
    """The reader class of dataset ``name`` (case, ``-`` and ``_`` are forgiven: ``LaSOT-ext`` = ``lasot_ext``)."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})")
    return DATASETS[key]


def build_dataset(name: str, root: Optional[PathLike] = None, split: str = "test",
                  attributes: AttributeSource = None, **kw: object) -> SequenceDataset:
    """Reader of dataset ``name`` at ``root`` (or ``$ASEARCH_<NAME>_ROOT``) for ``split``.

    Args:
        name: one of :func:`dataset_names`.
        root: dataset root folder; None reads the environment variable.
        split: split name (per dataset: ``train``/``test``/``val``/``all``...; COCO has ``train``/``val``).
        attributes: attribute-word annotation file (torch dict, CSV or JSON) or mapping.
        **kw: reader options, e.g. ``split_file`` (any reader), ``flags_dir`` (LaSOT, TNL2K), ``held_out``
            (``keep`` / ``exclude`` / ``only`` LaSOT's held-out validation videos), ``chunks`` (TrackingNet),
            ``year`` / ``annotation_file`` (COCO), ``dataset`` / ``split_by`` / ``annotation_dir`` / ``refs_file`` /
            ``image_dir`` (refcoco: RefCOCO, RefCOCO+ or RefCOCOg). An option the reader does not take raises
            ConfigError.
    """
    cls = dataset_class(name)
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in kw if k not in params or k in ("self", "root", "split", "attributes"))
    if unknown:
        known = [p for p in params if p not in ("self", "root", "split", "attributes")]
        raise ConfigError(f"dataset '{cls.dataset_name}': unknown option '{unknown[0]}' (known: {', '.join(known)})")
    path = dataset_root(cls.dataset_name, None if root is None else str(root), layout=cls.LAYOUT)
    return cls(path, split=split, attributes=attributes, **kw)
