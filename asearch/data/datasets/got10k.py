"""GOT-10k (Huang et al., TPAMI 2021) in its native layout.

Layout::

    root/<split>/list.txt                       video names (optional; else the folders, in natural order)
    root/<split>/<video>/00000001.jpg ...
                         groundtruth.txt        "x,y,w,h" per frame (the test split: first frame only)
                         absence.label          one 0/1 per line
                         cover.label            one integer 0..8 per line (visible fraction in eighths)
                         meta_info.ini          "key: value" lines; object_class, motion_class, major_class,
                                                root_class are used

``split`` is the folder: ``train``, ``val`` or ``test``. A frame is visible when it is not absent and its cover is
above 0; the cover labels are kept in ``Sequence.meta["cover"]`` (the GOT-10k protocol drops cover-0 frames).

Language (paper 000, §4.1): GOT-10k has no sentence, so the pseudo sentence "<object> <motion> <major> <root>"
is made from meta_info.ini (e.g. "dove walking bird animal"), and the attribute words default to
``[major, root, "none", "none"]`` (**choice**: the unknown color and position get the paper's filler word
"none"); an attribute-word annotation passed to the reader replaces them. A key missing from meta_info.ini gives
``None`` for its field (the category for ``object_class``; the sentence is made of the other words, the attribute
word becomes "none") and one :class:`~asearch.errors.DataWarning` naming the file and the key. The test split's
ground truth has the first box only: the other rows are NaN (``meta["first_frame_only"]``).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from asearch.data.datasets.base import (
    SequenceDataset, list_images, natural_key, pad_first_frame_only, read_boxes, read_int_values,
)
from asearch.data.sequence import Sequence
from asearch.errors import DataError, DataWarning

__all__ = ["GOT10kDataset", "read_meta_info"]

_META_KEYS = ("object_class", "motion_class", "major_class", "root_class")


def read_meta_info(path: Path) -> Dict[str, str]:
    """Parse a GOT-10k ``meta_info.ini`` by key (``key: value`` lines; section headers ignored)."""
    if not path.is_file():
        raise DataError("meta_info.ini not found", path=path, field="meta_info")
    info: Dict[str, str] = {}
    for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith(("[", "#", ";")):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            key, sep, value = line.partition("=")
        if sep:
            info[key.strip().lower()] = value.strip()
    return info


class GOT10kDataset(SequenceDataset):
    """GOT-10k; ``split``: ``train``, ``val`` or ``test`` (a folder under the root)."""

    dataset_name = "got10k"
    LAYOUT = ("root/{train,val,test}/<video>/ with 00000001.jpg..., groundtruth.txt, absence.label, cover.label, "
              "meta_info.ini")
    SPLIT_BY_FOLDER = True
    NATIVE_LANGUAGE = True

    def _list_names(self, split: Optional[str]) -> List[str]:
        self._dir = self.root / str(split)
        if not self._dir.is_dir():
            raise DataError(f"split folder '{split}' not found. Expected layout: {self.LAYOUT}", path=self._dir,
                            field="split")
        list_file = self._dir / "list.txt"
        if list_file.is_file():
            names = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
        else:
            names = sorted((p.name for p in self._dir.iterdir() if p.is_dir()), key=natural_key)
        if not names:
            raise DataError(f"no videos in the split folder. Expected layout: {self.LAYOUT}", path=self._dir,
                            field="split")
        return names

    def _labels(self, path: Path, n: int, name: str) -> Optional[np.ndarray]:
        if not path.is_file():
            return None
        values = read_int_values(path, field=path.name)
        if len(values) != n:
            raise DataError(f"sequence '{name}': {len(values)} labels but {n} frames", path=path, field=path.name)
        return values

    def _load(self, name: str) -> Sequence:
        folder = self._dir / name
        if not folder.is_dir():
            raise DataError(f"video folder of '{name}' not found", path=folder, field="frames")
        gt_path = folder / "groundtruth.txt"
        boxes = read_boxes(gt_path)
        frames = list_images(folder, field="frames")
        first_only = len(boxes) == 1 and len(frames) > 1
        if first_only:
            boxes = pad_first_frame_only(boxes, len(frames))
        self._check_counts(name, frames, boxes, gt_path, folder)
        absence = self._labels(folder / "absence.label", len(boxes), name)
        cover = self._labels(folder / "cover.label", len(boxes), name)
        visible = np.ones(len(boxes), dtype=bool)
        if absence is not None:
            visible &= absence == 0
        if cover is not None:
            visible &= cover > 0
        meta: Dict[str, object] = {"annotation_path": str(gt_path), "first_frame_only": first_only}
        if cover is not None:
            meta["cover"] = cover
        sentence = attributes = category = None
        meta_path = folder / "meta_info.ini"
        if meta_path.is_file():
            info = read_meta_info(meta_path)
            missing = [k for k in _META_KEYS if not info.get(k)]
            if missing:
                warnings.warn(DataWarning(
                    f"{meta_path}: key(s) {', '.join(missing)} missing or empty; those fields are None (the pseudo "
                    "sentence is made of the other words, the attribute words get the filler 'none')"), stacklevel=2)
            words = [info[k] for k in _META_KEYS if info.get(k)]
            sentence = " ".join(w.replace("_", " ") for w in words) or None
            attributes = [info.get("major_class") or "none", info.get("root_class") or "none", "none", "none"]
            category = info.get("object_class") or None
            meta["meta_info"] = info
        return Sequence(name=name, frames=frames, boxes=boxes, visible=visible, sentence=sentence,
                        attributes=attributes, dataset=self.dataset_name, category=category, meta=meta)
