"""OTB99-Lang (Li et al., CVPR 2017: OTB100 videos with one sentence each) in its released layout.

Layout implemented (the release; the videos may also sit directly under the root)::

    root/OTB_videos/<video>/img/0001.jpg ...         (or root/<video>/img/)
                            groundtruth_rect.txt     "x,y,w,h" rows, comma- OR white-space separated
    root/OTB_query_train/<video>.txt                 sentence of each training video
    root/OTB_query_test/<video>.txt                  sentence of each test video

The split is the query folder: ``train`` lists ``OTB_query_train``, ``test`` lists ``OTB_query_test``, ``all`` both.
Videos with two targets (``Jogging``, ``Skating2``) are two sequences named as the OTB toolkits name them,
``Jogging-1`` / ``Jogging-2``, reading ``Jogging/groundtruth_rect.1.txt`` / ``.2.txt`` (when no folder of their
own exists); a video whose only annotation is one numbered file (``Human4``: ``groundtruth_rect.2.txt``) keeps its
name and reads that file. OTB has no absence labels: every frame is visible. For the OTB videos whose image folder
holds more frames than annotated boxes, the annotated range of the OTB benchmark is used
(:data:`OTB_FRAME_RANGES`); any other mismatch is an error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from asearch.data.datasets.base import SequenceDataset, list_images, natural_key, read_boxes, read_sentence
from asearch.data.sequence import Sequence
from asearch.errors import ConfigError, DataError

__all__ = ["OTB99LangDataset", "OTB_FRAME_RANGES"]

#: 1-based first and last annotated frame of the OTB videos whose img/ folder holds extra frames.
OTB_FRAME_RANGES: Dict[str, Tuple[int, int]] = {
    "David": (300, 770),
    "Football1": (1, 74),
    "Freeman3": (1, 460),
    "Freeman4": (1, 283),
    "Diving": (1, 215),
}

_QUERY_DIRS = {"train": "OTB_query_train", "test": "OTB_query_test"}


def _numbered_annotations(folder: Path) -> List[Path]:
    """``groundtruth_rect.<n>.txt`` files of a video folder, in natural order (one per target; Human4 has one)."""
    return sorted(folder.glob("groundtruth_rect.*.txt"), key=lambda g: natural_key(g.name))


class OTB99LangDataset(SequenceDataset):
    """OTB99-Lang; ``split``: ``train`` (51 videos), ``test`` (48 videos) or ``all``."""

    dataset_name = "otb99_lang"
    LAYOUT = ("root/OTB_videos/<video>/ (or root/<video>/) with img/*.jpg and groundtruth_rect.txt; "
              "root/OTB_query_train/<video>.txt and root/OTB_query_test/<video>.txt (one sentence each)")
    NATIVE_LANGUAGE = True

    def _video_root(self) -> Path:
        return self.root / "OTB_videos" if (self.root / "OTB_videos").is_dir() else self.root

    def _queries(self, split: str) -> Dict[str, Path]:
        folder = self.root / _QUERY_DIRS[split]
        if not folder.is_dir():
            raise DataError(f"language folder for split '{split}' not found. Expected layout: {self.LAYOUT}",
                            path=folder, field="split")
        return {p.stem: p for p in folder.iterdir() if p.suffix == ".txt"}

    def _list_names(self, split: Optional[str]) -> List[str]:
        if split is None or split == "all":
            splits = [s for s in _QUERY_DIRS if (self.root / _QUERY_DIRS[s]).is_dir()]
            if not splits and split == "all":
                raise DataError(f"no language folder found. Expected layout: {self.LAYOUT}", path=self.root,
                                field="root")
        elif split in _QUERY_DIRS:
            splits = [split]
        else:
            raise ConfigError(f"dataset 'otb99_lang': unknown split '{split}' (known: train, test, all)")
        self._query_paths: Dict[str, Path] = {}
        for s in splits:
            self._query_paths.update(self._queries(s))
        names = set(self._query_paths)
        if split is None:  # choosing with a split file: videos without a sentence are allowed too
            names |= set(self._all_video_names())
        return sorted(names, key=natural_key)

    def _all_video_names(self) -> List[str]:
        names = []
        for p in self._video_root().iterdir():
            if not p.is_dir():
                continue
            numbered = _numbered_annotations(p)
            if (p / "groundtruth_rect.txt").is_file() or len(numbered) == 1:
                if (p / "img").is_dir():
                    names.append(p.name)
            else:  # two-target videos: Jogging/groundtruth_rect.1.txt -> Jogging-1
                names += [f"{p.name}-{gt.name.split('.')[1]}" for gt in numbered]
        return names

    def _locate(self, name: str) -> Tuple[Path, Path]:
        """(image folder, ground-truth file) of video ``name``."""
        root = self._video_root()
        folder = root / name
        if folder.is_dir():
            gt = folder / "groundtruth_rect.txt"
            numbered = _numbered_annotations(folder)
            if not gt.is_file() and len(numbered) == 1:  # Human4: groundtruth_rect.2.txt only
                gt = numbered[0]
            return folder / "img", gt
        base, _, idx = name.rpartition("-")
        if base and idx.isdigit() and (root / base).is_dir():
            return root / base / "img", root / base / f"groundtruth_rect.{idx}.txt"
        raise DataError(f"video folder of '{name}' not found. Expected layout: {self.LAYOUT}", path=folder,
                        field="img")

    def _load(self, name: str) -> Sequence:
        img_dir, gt_path = self._locate(name)
        boxes = read_boxes(gt_path, field="groundtruth_rect")
        frames = list_images(img_dir, field="img")
        base = name.rpartition("-")[0] if img_dir.parent.name != name else name
        if len(frames) > len(boxes) and base in OTB_FRAME_RANGES:
            first, last = OTB_FRAME_RANGES[base]
            by_number = {int(Path(f).stem): f for f in frames if Path(f).stem.isdigit()}
            frames = [by_number[i] for i in range(first, last + 1) if i in by_number]
        self._check_counts(name, frames, boxes, gt_path, img_dir)
        query = self._query_paths.get(name)
        sentence = read_sentence(query, field="language") if query is not None else None
        return Sequence(
            name=name, frames=frames, boxes=boxes, visible=np.ones(len(boxes), dtype=bool), sentence=sentence,
            dataset=self.dataset_name, category=None, meta={"annotation_path": str(gt_path)},
        )
