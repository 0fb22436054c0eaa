"""TrackingNet (Müller et al., ECCV 2018) in its native layout.

Layout::

    root/TRAIN_<k>/frames/<video>/0.jpg, 1.jpg, ...   0-based frame numbers (natural order)
    root/TRAIN_<k>/anno/<video>.txt                   "x,y,w,h" per frame (spaces and CRLF line ends occur)
    root/TEST/frames/<video>/...  root/TEST/anno/<video>.txt   (first box only)

``split``: ``train`` (every ``TRAIN_<k>`` chunk present, or only ``chunks``), ``test`` (``TEST``) or one chunk
folder name such as ``TRAIN_3``. Paper 000 trains on the first four chunks: ``chunks=(0, 1, 2, 3)``. TrackingNet
has no absence labels and no language: every frame is visible, boxes after the first of a TEST video are NaN.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence as Seq

import numpy as np

from asearch.data.datasets.base import (
    AttributeSource, PathLike, SequenceDataset, list_images, natural_key, pad_first_frame_only, read_boxes,
)
from asearch.data.sequence import Sequence
from asearch.errors import DataError

__all__ = ["TrackingNetDataset"]


class TrackingNetDataset(SequenceDataset):
    """TrackingNet; ``split``: ``train``, ``test`` or a chunk folder (``TRAIN_0`` ...)."""

    dataset_name = "trackingnet"
    LAYOUT = "root/{TRAIN_0..TRAIN_11,TEST}/frames/<video>/<N>.jpg (0-based) and root/<chunk>/anno/<video>.txt"
    SPLIT_BY_FOLDER = True

    def __init__(self, root: PathLike, split: str = "test", attributes: AttributeSource = None,
                 split_file: Optional[PathLike] = None, chunks: Optional[Seq[int]] = None) -> None:
        self.chunks = None if chunks is None else [int(c) for c in chunks]
        self._where: Dict[str, Path] = {}
        super().__init__(root, split=split, attributes=attributes, split_file=split_file)

    def _chunk_dirs(self, split: Optional[str]) -> List[Path]:
        if split == "test":
            dirs = [self.root / "TEST"]
        elif split == "train":
            found = sorted((p for p in self.root.iterdir() if p.is_dir() and re.fullmatch(r"TRAIN_\d+", p.name)),
                           key=lambda p: natural_key(p.name))
            if self.chunks is not None:
                dirs = [self.root / f"TRAIN_{k}" for k in self.chunks]
            else:
                dirs = found
            if not dirs:
                raise DataError(f"no TRAIN_<k> folder. Expected layout: {self.LAYOUT}", path=self.root, field="split")
        else:
            dirs = [self.root / str(split)]
        for d in dirs:
            if not (d / "anno").is_dir():
                raise DataError(f"annotation folder of split '{split}' not found. Expected layout: {self.LAYOUT}",
                                path=d / "anno", field="split")
        return dirs

    def _list_names(self, split: Optional[str]) -> List[str]:
        names: List[str] = []
        for chunk in self._chunk_dirs(split):
            for anno in sorted((chunk / "anno").glob("*.txt"), key=lambda p: natural_key(p.name)):
                if anno.stem in self._where:
                    raise DataError(f"video '{anno.stem}' is in two chunks ({self._where[anno.stem].name} and "
                                    f"{chunk.name})", path=anno, field="anno")
                self._where[anno.stem] = chunk
                names.append(anno.stem)
        return names

    def _load(self, name: str) -> Sequence:
        chunk = self._where[name]
        gt_path = chunk / "anno" / f"{name}.txt"
        boxes = read_boxes(gt_path, field="anno")
        img_dir = chunk / "frames" / name
        frames = list_images(img_dir, field="frames")
        first_only = len(boxes) == 1 and len(frames) > 1
        if first_only:
            boxes = pad_first_frame_only(boxes, len(frames))
        self._check_counts(name, frames, boxes, gt_path, img_dir)
        return Sequence(name=name, frames=frames, boxes=boxes, visible=np.ones(len(boxes), dtype=bool),
                        dataset=self.dataset_name,
                        meta={"annotation_path": str(gt_path), "chunk": chunk.name, "first_frame_only": first_only})
