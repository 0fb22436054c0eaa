"""WebUAV-3M (Zhang et al., TPAMI 2023) and VL-SOT500 (COST, paper 003) in their released layouts (vision + language).

Where the layouts come from (found with the search tool): the WebUAV-3M README (github.com/983632847/WebUAV-3M,
"The directory should have the below format") and the VL-SOT500 README (github.com/983632847/
Awesome-Multimodal-Object-Tracking, ``VL-SOT500/README.md``); both videos folders hold the same annotation files::

    WebUAV-3M/{Train,Val,Test}/<video>/img/000001.jpg ...     frames (the README also lists a stray 000001.jpg
                                      groundtruth_rect.txt    one "x,y,w,h" row per frame
                                      absent.txt              per-frame absence labels
                                      attributes.txt          per-video attribute values
                                      language.txt            the sentence
                                      scenario.txt            per-video scenario values (UTUSC protocol)
    VL-SOT500/{VL-SOT230,VL-SOT270}/<video>/imgs/000001.jpg ... (and a copy of 000001.jpg beside imgs/)
                                      groundtruth_rect.txt, absent.txt, attributes.txt, language.txt
                                      relative_speed.txt (VL-SOT270 only)

Splits are folders (``train`` / ``val`` / ``test`` for WebUAV-3M, ``vl-sot230`` / ``vl-sot270`` for VL-SOT500,
matched case-insensitively); when none exists the root itself is read as one split.

Choices: the frame folder is ``img/`` or ``imgs/`` (the two READMEs differ); absence is a ground-truth row with a
non-positive width or height (``0,0,0,0``), as the authors' own evaluation toolkit derives it (its code marks reading
``absent.txt`` as "to do"; the file's format is not documented, so it is not read); ``attributes.txt`` and
``scenario.txt`` are not read yet (their value order is not documented beside the data), so the videos carry no
attribute flags; COST's derived attributes (``asearch evaluate --derived-attributes``) work on any reader.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Dict, List, Optional, Tuple

from asearch.data.datasets.base import SequenceDataset, list_images, natural_key, read_boxes, read_sentence
from asearch.data.sequence import Sequence
from asearch.errors import DataError

__all__ = ["WebUAV3MDataset", "VLSOT500Dataset"]

_FRAME_FOLDERS: Tuple[str, ...] = ("img", "imgs")


class _UAVLayoutDataset(SequenceDataset):
    """The per-video layout shared by WebUAV-3M and VL-SOT500 (module doc); subclasses set :attr:`SPLITS`."""

    SPLIT_BY_FOLDER = True
    NATIVE_LANGUAGE = True
    #: split name -> folder name under the root
    SPLITS: ClassVar[Dict[str, str]] = {}

    def _split_dir(self, split: Optional[str]) -> Path:
        folders = {p.name.lower(): p for p in self.root.iterdir() if p.is_dir()}
        wanted = self.SPLITS.get((split or "").lower())
        if wanted is not None and wanted.lower() in folders:
            return folders[wanted.lower()]
        if any(f.lower() in folders for f in self.SPLITS.values()):
            raise DataError(f"no folder for split '{split}' (splits: {', '.join(self.SPLITS)}). Expected layout: "
                            f"{self.LAYOUT}", path=self.root, field="split")
        return self.root

    def _list_names(self, split: Optional[str]) -> List[str]:
        self._dir = self._split_dir(split)
        names = sorted((p.name for p in self._dir.iterdir()
                        if p.is_dir() and (p / "groundtruth_rect.txt").is_file()), key=natural_key)
        if not names:
            raise DataError(f"no video folders with groundtruth_rect.txt found. Expected layout: {self.LAYOUT}",
                            path=self._dir, field="root")
        return names

    def _load(self, name: str) -> Sequence:
        folder = self._dir / name
        gt_path = folder / "groundtruth_rect.txt"
        boxes = read_boxes(gt_path)
        img_dir = next((folder / f for f in _FRAME_FOLDERS if (folder / f).is_dir()), None)
        if img_dir is None:
            raise DataError(f"no frame folder ({' or '.join(_FRAME_FOLDERS)}/) in video '{name}'", path=folder,
                            field="frames")
        frames = list_images(img_dir, field=img_dir.name)
        self._check_counts(name, frames, boxes, gt_path, img_dir)
        visible = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        return Sequence(name=name, frames=frames, boxes=boxes, visible=visible,
                        sentence=read_sentence(folder / "language.txt", field="language"),
                        dataset=self.dataset_name, meta={"annotation_path": str(gt_path)})


class WebUAV3MDataset(_UAVLayoutDataset):
    """WebUAV-3M; ``split``: ``train`` (3,520 videos), ``val`` (200) or ``test`` (780)."""

    dataset_name = "webuav3m"
    LAYOUT = ("root/{Train,Val,Test}/<video>/ (or root/<video>/) with img/*.jpg, groundtruth_rect.txt "
              "(x,y,w,h per line, 0,0,0,0 = absent), language.txt")
    SPLITS = {"train": "Train", "val": "Val", "test": "Test"}


class VLSOT500Dataset(_UAVLayoutDataset):
    """VL-SOT500 (paper 003); ``split``: ``vl-sot230`` (generic small objects) or ``vl-sot270`` (high speed)."""

    dataset_name = "vl_sot500"
    LAYOUT = ("root/{VL-SOT230,VL-SOT270}/<video>/ (or root/<video>/) with imgs/*.jpg, groundtruth_rect.txt "
              "(x,y,w,h per line, 0,0,0,0 = absent), language.txt")
    SPLITS = {"vl-sot230": "VL-SOT230", "vl-sot270": "VL-SOT270", "230": "VL-SOT230", "270": "VL-SOT270"}
