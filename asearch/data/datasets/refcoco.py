"""RefCOCO, RefCOCO+ and RefCOCOg referring expressions (Yu et al. / Mao et al.; the ``refer`` release of
L. Yu) as one-frame sequences with a sentence: the grounding model's (image, sentence, box) items.

Layout (that of the ``refer`` API's ``data`` folder; ``root`` is that folder)::

    root/<dataset>/refs(<split_by>).p         the refs list (pickle), or refs(<split_by>).json (a JSON export)
    root/<dataset>/instances.json             COCO format: images {id, file_name, ...}, annotations {id, image_id,
                                              bbox [x, y, w, h]}, categories {id, name} (optional)
    root/images/mscoco/images/train2014/      the COCO train2014 images named by instances.json's file_name

``dataset``: ``refcoco`` | ``refcoco+`` | ``refcocog``; ``split_by``: ``unc`` (default of refcoco and refcoco+),
``umd`` (default of refcocog), ``google``. Options ``annotation_dir`` (replaces ``root/<dataset>``), ``refs_file``
(a refs file anywhere, ``.p`` / ``.pkl`` pickle or ``.json``; instances.json is then read beside it unless
``annotation_dir`` is given) and ``image_dir`` (replaces the image folder) point
elsewhere. A ref is ``{ref_id, ann_id, image_id, split, sentences: [{sent, raw, ...}], category_id, ...}``; ``split``
selects refs as the ``refer`` API does: ``train``, ``val``, ``test`` (every ``test*`` split), ``testA`` /
``testB`` / ``testC`` (the test splits holding that letter), any other split name exactly, or ``all``.

Every sentence of a ref is one :class:`Sequence` of one frame, named ``ref<ref_id>_<k>`` (``k``: the sentence's
place in the ref), with the annotation's box and the sentence (``sent``, else ``raw``), so an epoch of TransVG is
the number of expressions. The pickle is untrusted input: it is read with
:func:`~asearch.data.safe_pickle.load_plain_pickle` (plain data only; nothing in it runs).

Bad input: a missing annotation or image folder, or a missing refs / instances file, is a :class:`DataError` that
says what to put where; so are a refs file that is not a list of ref objects, a ref without one of the keys above,
a duplicate ``ref_id``, an ``ann_id`` that is not in instances.json (or whose image is not the ref's), an image
that is not in instances.json, an id that is not an integer or a string, and a box that is not 4 finite numbers
>= 0 (every ref is checked, whatever the split). A ref of the split with no usable sentence (an empty list, or
blank ones) and one with a box of zero width or height give one :class:`DataWarning` per kind (count and first
``ref_id``) and are skipped: both occur in otherwise good data, and the rest trains.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from asearch.data.datasets.base import AttributeSource, PathLike, SequenceDataset
from asearch.data.safe_pickle import load_plain_pickle
from asearch.data.sequence import Sequence
from asearch.errors import ConfigError, DataError, DataWarning

__all__ = ["RefCOCODataset", "REFER_DATASETS", "load_refs"]

#: dataset -> (its default split_by, the split_by values it is released with)
REFER_DATASETS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "refcoco": ("unc", ("unc", "google")),
    "refcoco+": ("unc", ("unc",)),
    "refcocog": ("umd", ("umd", "google")),
}

_REF_KEYS = ("ref_id", "ann_id", "image_id", "split", "sentences")
_Record = Tuple[str, List[float], str, Optional[str], Dict[str, object]]


def load_refs(path: PathLike) -> List[Dict[str, Any]]:
    """The refs list of a ``refs(<split_by>).p`` pickle (plain data only, nothing executed) or of its JSON export
    (``.json``); :class:`DataError` naming the file when it is missing, unreadable or not a list of objects."""
    path = Path(path)
    if not path.is_file():
        raise DataError("refs file not found", path=path, field="refs")
    if path.suffix.lower() == ".json":
        try:
            refs = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"not valid JSON: {exc}", path=path, field="refs") from None
    else:
        refs = load_plain_pickle(path, field="refs")
    if not isinstance(refs, list):
        raise DataError(f"the refs must be a list of ref objects, got {type(refs).__name__}", path=path, field="refs")
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise DataError(f"a ref must be an object, got {type(ref).__name__}", path=path, field=f"refs[{i}]")
    return refs


def split_matches(wanted: str, split: str) -> bool:
    """Whether a ref of ``split`` belongs to the requested split ``wanted`` (the ``refer`` API's rule, module doc)."""
    if wanted == "all":
        return True
    if wanted == "test":
        return split.startswith("test")
    if wanted in ("testA", "testB", "testC"):
        return split.startswith("test") and wanted[-1] in split[4:]
    return split == wanted


def _sentences(ref: Dict[str, Any], path: Path, field: str) -> List[str]:
    """The non-blank sentences of a ref (``sent``, else ``raw``; a bare string also counts), white space folded."""
    sents = ref["sentences"]
    if not isinstance(sents, (list, tuple)):
        raise DataError(f"sentences must be a list, got {type(sents).__name__}", path=path, field=field)
    out = []
    for k, sent in enumerate(sents):
        text = sent
        if isinstance(sent, dict):
            text = sent.get("sent", sent.get("raw"))
            if text is None:
                raise DataError("a sentence needs the key 'sent' or 'raw'", path=path, field=f"{field}[{k}]")
        if not isinstance(text, str):
            raise DataError(f"a sentence must be text, got {type(text).__name__}", path=path, field=f"{field}[{k}]")
        out.append(" ".join(text.split()))
    return out


def _box(bbox: Any, path: Path, field: str) -> List[float]:
    """``x, y, w, h`` of an annotation: 4 finite numbers >= 0, else DataError."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise DataError(f"bbox must be 4 numbers x,y,w,h, got {bbox!r}", path=path, field=field)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bbox):
        raise DataError(f"non-numeric bbox {bbox!r}", path=path, field=field)
    box = [float(v) for v in bbox]
    if not all(math.isfinite(v) for v in box):
        raise DataError(f"NaN or infinite bbox {bbox!r}", path=path, field=field)
    if min(box) < 0:
        raise DataError(f"negative value in bbox {bbox!r} (x, y, w, h must be >= 0)", path=path, field=field)
    return box


def _check_id(value: Any, path: Path, field: str) -> Any:
    """An id as the files give it (an integer or a string), else DataError."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"an id must be an integer or a string, got {value!r}", path=path, field=field)
    return value


def _read_instances(path: Path) -> Tuple[Dict[Any, Dict[str, Any]], Dict[Any, str], Dict[Any, str], Dict[Any, int]]:
    """Annotations by id, image file names by id, category names by id, and each annotation's index in the file."""
    if not path.is_file():
        raise DataError("instances.json not found (it comes with the refs file in the refer release)", path=path,
                        field="instances")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON: {exc}", path=path, field="instances") from None
    if not isinstance(data, dict):
        raise DataError("the top level must be an object", path=path, field="instances")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise DataError(f"missing list '{key}'", path=path, field=key)
    images: Dict[Any, str] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise DataError("an image needs 'id' and 'file_name'", path=path, field=f"images[{i}]")
        images[_check_id(im["id"], path, f"images[{i}].id")] = im["file_name"]
    anns: Dict[Any, Dict[str, Any]] = {}
    index: Dict[Any, int] = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "id" not in ann or "image_id" not in ann or "bbox" not in ann:
            raise DataError("an annotation needs 'id', 'image_id' and 'bbox'", path=path, field=f"annotations[{i}]")
        ann_id = _check_id(ann["id"], path, f"annotations[{i}].id")
        _check_id(ann["image_id"], path, f"annotations[{i}].image_id")
        anns[ann_id] = ann
        index[ann_id] = i
    categories: Dict[Any, str] = {}
    for i, cat in enumerate(data.get("categories") or []):
        if isinstance(cat, dict) and isinstance(cat.get("id"), (int, str)) and isinstance(cat.get("name"), str):
            categories[cat["id"]] = cat["name"]
    return anns, images, categories, index


def _checked_ref(i: int, ref: Dict[str, Any], anns: Dict[Any, Dict[str, Any]], images: Dict[Any, str],
                 ann_index: Dict[Any, int], refs_path: Path, inst_path: Path
                 ) -> Tuple[Any, Dict[str, Any], List[float], List[str]]:
    """``refs[i]`` checked against instances.json: its ``ref_id``, annotation, box and non-blank sentences;
    DataError naming the file and the field of the first problem (module doc)."""
    field = f"refs[{i}]"
    missing = [k for k in _REF_KEYS if k not in ref]
    if missing:
        raise DataError(f"a ref needs the key '{missing[0]}'", path=refs_path, field=f"{field}.{missing[0]}")
    ref_id, ann_id, image_id = (_check_id(ref[k], refs_path, f"{field}.{k}") for k in ("ref_id", "ann_id", "image_id"))
    if not isinstance(ref["split"], str):
        raise DataError(f"split must be text, got {ref['split']!r}", path=refs_path, field=f"{field}.split")
    if ann_id not in anns:
        raise DataError(f"ann_id {ann_id!r} is not an annotation id of {inst_path} (refs and instances.json of "
                        "different datasets?)", path=refs_path, field=f"{field}.ann_id")
    ann = anns[ann_id]
    if ann["image_id"] != image_id:
        raise DataError(f"annotation {ann_id!r} is on image {ann['image_id']!r} in {inst_path}, the ref says image "
                        f"{image_id!r}", path=refs_path, field=f"{field}.image_id")
    if image_id not in images:
        raise DataError(f"image_id {image_id!r} (of annotation {ann_id!r}) is not an image id of this file",
                        path=inst_path, field="images")
    box = _box(ann["bbox"], inst_path, f"annotations[{ann_index[ann_id]}].bbox")
    sentences = [text for text in _sentences(ref, refs_path, f"{field}.sentences") if text]
    return ref_id, ann, box, sentences


class RefCOCODataset(SequenceDataset):
    """RefCOCO / RefCOCO+ / RefCOCOg referring expressions, one one-frame sequence per sentence (module doc)."""

    dataset_name = "refcoco"
    LAYOUT = ("root/<dataset>/refs(<split_by>).p (or .json) and root/<dataset>/instances.json from the refer release "
              "(dataset refcoco | refcoco+ | refcocog), the COCO train2014 images in "
              "root/images/mscoco/images/train2014/ (options annotation_dir, refs_file, image_dir point elsewhere)")
    NATIVE_LANGUAGE = True

    def __init__(self, root: PathLike, split: str = "train", attributes: AttributeSource = None,
                 split_file: Optional[PathLike] = None, dataset: str = "refcoco", split_by: Optional[str] = None,
                 annotation_dir: Optional[PathLike] = None, refs_file: Optional[PathLike] = None,
                 image_dir: Optional[PathLike] = None) -> None:
        key = str(dataset).strip().lower()
        if key not in REFER_DATASETS:
            raise ConfigError(f"dataset 'refcoco': option dataset must be one of {', '.join(REFER_DATASETS)}, got "
                              f"{dataset!r}")
        self.refer_dataset = key
        self.split_by = str(split_by) if split_by else REFER_DATASETS[key][0]
        root_path = Path(root)
        self.annotation_dir = Path(annotation_dir) if annotation_dir is not None else root_path / key
        self.refs_file = None if refs_file is None else Path(refs_file)
        # instances.json: in annotation_dir when it is given or there is no refs_file, else beside refs_file
        self._instances_dir = (self.refs_file.parent if self.refs_file is not None and annotation_dir is None
                               else self.annotation_dir)
        self.image_dir = (Path(image_dir) if image_dir is not None
                          else root_path / "images" / "mscoco" / "images" / "train2014")
        self._records: Dict[str, _Record] = {}
        super().__init__(root, split=split, attributes=attributes, split_file=split_file)

    # -- files ------------------------------------------------------------------------------------------------------
    def _find_refs_file(self) -> Path:
        if self.refs_file is not None:
            if not self.refs_file.is_file():
                raise DataError("refs file not found", path=self.refs_file, field="refs_file")
            return self.refs_file
        if not self.annotation_dir.is_dir():
            raise DataError(f"annotation folder not found: put refs({self.split_by}).p and instances.json of "
                            f"{self.refer_dataset} (the refer release's {self.refer_dataset}.zip) there, or set the "
                            f"option annotation_dir. Expected layout: {self.LAYOUT}", path=self.annotation_dir,
                            field="annotation_dir")
        tried = [self.annotation_dir / f"refs({self.split_by}){ext}" for ext in (".p", ".json")]
        for path in tried:
            if path.is_file():
                return path
        released = ", ".join(REFER_DATASETS[self.refer_dataset][1])
        raise DataError(f"no refs file for split_by '{self.split_by}' (tried {', '.join(p.name for p in tried)}; "
                        f"{self.refer_dataset} is released split by {released}). Expected layout: {self.LAYOUT}",
                        path=self.annotation_dir, field="split_by")

    # -- SequenceDataset hooks --------------------------------------------------------------------------------------
    def _list_names(self, split: Optional[str]) -> List[str]:
        refs_path = self._find_refs_file()
        inst_path = self._instances_dir / "instances.json"
        if not self.image_dir.is_dir():
            raise DataError(f"image folder not found: put the COCO train2014 images (train2014/*.jpg) there, or set "
                            f"the option image_dir. Expected layout: {self.LAYOUT}", path=self.image_dir,
                            field="image_dir")
        refs = load_refs(refs_path)
        anns, images, categories, ann_index = _read_instances(inst_path)
        wanted = "all" if split is None else str(split)
        names: List[str] = []
        seen: Dict[Any, int] = {}
        splits_found: set = set()
        no_sentence: List[Any] = []
        empty_box: List[Any] = []
        for i, ref in enumerate(refs):
            ref_id, ann, box, sentences = _checked_ref(i, ref, anns, images, ann_index, refs_path, inst_path)
            if ref_id in seen:
                raise DataError(f"ref_id {ref_id!r} already used by refs[{seen[ref_id]}]", path=refs_path,
                                field=f"refs[{i}].ref_id")
            seen[ref_id] = i
            splits_found.add(ref["split"])
            if not split_matches(wanted, ref["split"]):   # every ref is checked; those of the split are kept
                continue
            if not sentences:
                no_sentence.append(ref_id)
                continue
            if box[2] <= 0 or box[3] <= 0:
                empty_box.append(ref_id)
                continue
            frame = str(self.image_dir / images[ann["image_id"]])
            category_id = ref.get("category_id", ann.get("category_id"))
            category = categories.get(category_id) if isinstance(category_id, (int, str)) else None
            meta = {"ref_id": ref_id, "ann_id": ann["id"], "image_id": ann["image_id"], "split": ref["split"],
                    "annotation_path": str(refs_path)}
            for k, sentence in enumerate(sentences):
                name = f"ref{ref_id}_{k}"
                self._records[name] = (frame, box, sentence, category, meta)
                names.append(name)
        for skipped, what in ((no_sentence, "no sentence (field sentences empty or blank)"),
                              (empty_box, "a box of zero width or height")):
            if skipped:
                warnings.warn(DataWarning(f"{refs_path}: {len(skipped)} ref(s) of split '{wanted}' with {what} "
                                          f"skipped (first: ref_id {skipped[0]!r})"), stacklevel=4)
        if not names:
            raise DataError(f"no usable referring expression in split '{wanted}' (splits in the file: "
                            f"{', '.join(sorted(splits_found)) or 'none'}; or 'all')", path=refs_path, field="split")
        return names

    def _load(self, name: str) -> Sequence:
        frame, box, sentence, category, meta = self._records[name]
        return Sequence(name=name, frames=[frame], boxes=np.asarray([box]), visible=np.ones(1, dtype=bool),
                        sentence=sentence, dataset=self.dataset_name, category=category, meta=dict(meta))

