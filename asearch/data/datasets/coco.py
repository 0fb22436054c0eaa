"""COCO (Lin et al., ECCV 2014) object annotations as one-frame sequences (an image dataset for pair sampling).

Layout::

    root/annotations/instances_<split><year>.json   e.g. instances_train2017.json
    root/<split><year>/<file_name>                  the images

``split``: ``train`` or ``val`` (year 2017, else 2014, unless ``year`` or ``annotation_file`` is given). Every
non-crowd object annotation with a positive-size box is one :class:`Sequence` of one frame, named
``<image file stem>_<annotation id>``, with the category name in ``Sequence.category``. COCO has no language:
the ``attribute`` missing-language strategy of paper 000 uses the category.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from asearch.data.datasets.base import AttributeSource, PathLike, SequenceDataset
from asearch.data.sequence import Sequence
from asearch.errors import DataError

__all__ = ["COCODataset"]


class COCODataset(SequenceDataset):
    """COCO instances; each object annotation is a one-frame sequence (see the module doc)."""

    dataset_name = "coco"
    LAYOUT = "root/annotations/instances_{train,val}2017.json and root/{train,val}2017/<image files>"
    SPLIT_BY_FOLDER = True

    def __init__(self, root: PathLike, split: str = "train", attributes: AttributeSource = None,
                 split_file: Optional[PathLike] = None, year: Optional[str] = None,
                 annotation_file: Optional[PathLike] = None, image_dir: Optional[PathLike] = None) -> None:
        self.year = None if year is None else str(year)
        self.annotation_file = None if annotation_file is None else Path(annotation_file)
        self.image_dir = None if image_dir is None else Path(image_dir)
        self._records: Dict[str, Tuple[str, List[float], str]] = {}
        super().__init__(root, split=split, attributes=attributes, split_file=split_file)

    def _find_files(self, split: str) -> Tuple[Path, Path]:
        years = [self.year] if self.year else ["2017", "2014"]
        ann = self.annotation_file
        if ann is None:
            tried = [self.root / "annotations" / f"instances_{split}{y}.json" for y in years]
            ann = next((p for p in tried if p.is_file()), None)
            if ann is None:
                raise DataError(f"no annotation file for split '{split}' (tried {', '.join(p.name for p in tried)})"
                                f". Expected layout: {self.LAYOUT}", path=self.root / "annotations", field="split")
        if not ann.is_file():
            raise DataError("annotation file not found", path=ann, field="annotation_file")
        img_dir = self.image_dir
        if img_dir is None:
            stem = ann.stem[len("instances_"):] if ann.stem.startswith("instances_") else split
            img_dir = self.root / stem
        if not img_dir.is_dir():
            raise DataError(f"image folder not found. Expected layout: {self.LAYOUT}", path=img_dir, field="images")
        return ann, img_dir

    def _list_names(self, split: Optional[str]) -> List[str]:
        ann_path, img_dir = self._find_files(str(split))
        try:
            data = json.loads(ann_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc}", path=ann_path, field="annotations") from None
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise DataError(f"missing list '{key}'", path=ann_path, field=key)
        try:
            categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
            images = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed image or category entry ({exc})", path=ann_path, field="images") from None
        names: List[str] = []
        for i, ann in enumerate(data["annotations"]):
            field = f"annotations[{i}]"
            if not isinstance(ann, dict):
                raise DataError("an annotation must be an object", path=ann_path, field=field)
            if ann.get("iscrowd", 0):
                continue
            bbox = ann.get("bbox")
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise DataError(f"bbox must be 4 numbers x,y,w,h, got {bbox!r}", path=ann_path, field=field + ".bbox")
            try:
                box = [float(v) for v in bbox]
            except (TypeError, ValueError):
                raise DataError(f"non-numeric bbox {bbox!r}", path=ann_path, field=field + ".bbox") from None
            if not np.all(np.isfinite(box)):
                raise DataError(f"NaN or infinite bbox {bbox!r}", path=ann_path, field=field + ".bbox")
            if box[2] <= 0 or box[3] <= 0:
                continue
            image_id, category_id = ann.get("image_id"), ann.get("category_id")
            if image_id not in images:
                raise DataError(f"unknown image_id {image_id!r}", path=ann_path, field=field + ".image_id")
            if category_id not in categories:
                raise DataError(f"unknown category_id {category_id!r}", path=ann_path, field=field + ".category_id")
            file_name = images[image_id]
            name = f"{Path(file_name).stem}_{ann.get('id', i)}"
            self._records[name] = (str(img_dir / file_name), box, categories[category_id])
            names.append(name)
        if not names:
            raise DataError("no usable object annotation", path=ann_path, field="annotations")
        return names

    def _load(self, name: str) -> Sequence:
        frame, box, category = self._records[name]
        return Sequence(name=name, frames=[frame], boxes=np.asarray([box]), visible=np.ones(1, dtype=bool),
                        dataset=self.dataset_name, category=category)
