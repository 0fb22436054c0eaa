"""TNL2K (Wang et al., CVPR 2021) in its native layout.

Layout (one folder per split; the root may also be the split folder itself)::

    root/<split folder>/<video>/imgs/<frame>.jpg|.png   mixed names and suffixes, put in natural order
                                groundtruth.txt          one "x,y,w,h" row per frame
                                language.txt             the sentence (some files are empty -> no sentence)

Split folders: ``train`` -> ``TNL2K_train_subset`` or ``train``; ``test`` -> ``TNL2K_test_subset`` or ``test``.
When none of them exists, the videos are read from the root itself whatever the split.

Quirks: absence is marked by ``0,0,0,0`` rows (any row with a non-positive width or height is absent); boxes keep
their raw values, including negative x/y of targets partly outside the image.

Attribute flags: TNL2K's 17 per-video attributes (:data:`~asearch.data.attributes.TNL2K_ATTRIBUTES`) are not in the
video folders; the official evaluation toolkit ships them as ``annos/att/<video>_attribute.txt`` (700 test videos),
one 0/1 value per line in the order CM, ROT, DEF, FOC, IV, OV, POC, VC, SV, BC, MB, ARC, LR, FM, AS, TC, MS. Give
that folder as ``flags_dir``; a video without a file has no flags, a malformed file raises DataError naming it.
Choice: only that 17-value form is read (a Python port of the toolkit re-ships the files with an 18th, leading
"ALL" value that is 1 for every video; such a file fails with "expected 17 attribute flags").
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from asearch.data.attributes import TNL2K_ATTRIBUTES
from asearch.data.datasets.base import (
    AttributeSource, PathLike, SequenceDataset, list_images, natural_key, read_boxes, read_sentence,
)
from asearch.data.sequence import Sequence
from asearch.errors import DataError

__all__ = ["TNL2KDataset"]

_SPLIT_FOLDERS: Dict[str, tuple] = {
    "train": ("TNL2K_train_subset", "train"),
    "test": ("TNL2K_test_subset", "test"),
}


class TNL2KDataset(SequenceDataset):
    """TNL2K; ``split``: ``train`` or ``test`` (a folder, see the module doc); ``flags_dir``: the folder of the
    17 attribute flags per video (the toolkit's ``annos/att``)."""

    dataset_name = "tnl2k"
    LAYOUT = ("root/{TNL2K_train_subset,TNL2K_test_subset}/<video>/ (or root/<video>/) with imgs/*.jpg|png, "
              "groundtruth.txt (x,y,w,h per line, 0,0,0,0 = absent), language.txt")
    SPLIT_BY_FOLDER = True
    NATIVE_LANGUAGE = True
    ATTRIBUTE_NAMES = TNL2K_ATTRIBUTES
    FLAG_FILE = "{video}_attribute.txt"

    def __init__(self, root: PathLike, split: str = "test", attributes: AttributeSource = None,
                 split_file: Optional[PathLike] = None, flags_dir: Optional[PathLike] = None,
                 held_out: str = "keep") -> None:
        self._init_flags_dir(flags_dir)
        super().__init__(root, split=split, attributes=attributes, split_file=split_file, held_out=held_out)

    def _split_dir(self, split: Optional[str]) -> Path:
        for folder in _SPLIT_FOLDERS.get(split or "", ()):
            if (self.root / folder).is_dir():
                return self.root / folder
        if any((self.root / f).is_dir() for folders in _SPLIT_FOLDERS.values() for f in folders):
            raise DataError(f"no folder for split '{split}' (looked for {', '.join(_SPLIT_FOLDERS.get(split or '', ()))})"
                            f". Expected layout: {self.LAYOUT}", path=self.root, field="split")
        return self.root

    def _list_names(self, split: Optional[str]) -> List[str]:
        self._dir = self._split_dir(split)
        names = sorted((p.name for p in self._dir.iterdir()
                        if p.is_dir() and ((p / "imgs").is_dir() or (p / "groundtruth.txt").is_file())),
                       key=natural_key)
        if not names:
            raise DataError(f"no video folders found. Expected layout: {self.LAYOUT}", path=self._dir, field="root")
        return names

    def _load(self, name: str) -> Sequence:
        folder = self._dir / name
        gt_path = folder / "groundtruth.txt"
        boxes = read_boxes(gt_path)
        img_dir = folder / "imgs"
        frames = list_images(img_dir, field="imgs")
        self._check_counts(name, frames, boxes, gt_path, img_dir)
        visible = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        return Sequence(
            name=name, frames=frames, boxes=boxes, visible=visible,
            sentence=read_sentence(folder / "language.txt", field="language"),
            attribute_flags=self._attribute_flags_of(name), dataset=self.dataset_name,
            meta={"annotation_path": str(gt_path)},
        )
