"""Attribute annotations: the four attribute words of paper 000 and per-video attribute flags (LaSOT, TNL2K).

Attribute words (paper 000, §3.1): every video is described by four words, *major class*, *root class*, *color* and
*initial position* of the target. The released annotation is a Python dict ``video -> "major,root,color,position"``
saved with ``torch.save`` (e.g. ``{'airplane-1': 'plane,vehicle,white,right'}``). The toolkit reads that form and
two plain forms:

- CSV: one row ``video,major,root,color,position`` per video (a header row with those names is optional);
- JSON: ``{video: "a,b,c,d"}`` or ``{video: ["a", "b", "c", "d"]}``.

The format is chosen by the file suffix (``.csv``, ``.json``); any other suffix is read with
``torch.load(path, weights_only=True)``.

Attribute flags: LaSOT annotates every video with 14 binary attributes, one comma-separated row of 0/1 per video
(``<video>.txt``, in the order of :data:`LASOT_ATTRIBUTES`, the order of the official evaluation toolkit).
TNL2K annotates its 700 test videos with 17 (Wang et al., CVPR 2021): one 0/1 value per line (CRLF) in
``<video>_attribute.txt``, in the order of :data:`TNL2K_ATTRIBUTES` (the ``annos/att`` folder of the official
evaluation toolkit). :func:`read_attribute_flags` reads both forms.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from asearch.errors import DataError

__all__ = [
    "ATTRIBUTE_WORD_FIELDS",
    "LASOT_ATTRIBUTES",
    "LASOT_ATTRIBUTE_FULL_NAMES",
    "TNL2K_ATTRIBUTES",
    "TNL2K_ATTRIBUTE_FULL_NAMES",
    "parse_attribute_words",
    "load_attribute_words",
    "save_attribute_words",
    "read_attribute_flags",
]

PathLike = Union[str, os.PathLike]

#: The four attribute words of paper 000, in the order of the released annotation.
ATTRIBUTE_WORD_FIELDS: Tuple[str, ...] = ("major", "root", "color", "position")

#: LaSOT's 14 attribute abbreviations, in the column order of its attribute files.
LASOT_ATTRIBUTES: Tuple[str, ...] = (
    "IV", "POC", "DEF", "MB", "CM", "ROT", "BC", "VC", "SV", "FOC", "FM", "OV", "LR", "ARC",
)

#: Full names of :data:`LASOT_ATTRIBUTES` (same order).
LASOT_ATTRIBUTE_FULL_NAMES: Tuple[str, ...] = (
    "Illumination Variation", "Partial Occlusion", "Deformation", "Motion Blur", "Camera Motion", "Rotation",
    "Background Clutter", "Viewpoint Change", "Scale Variation", "Full Occlusion", "Fast Motion", "Out-of-View",
    "Low Resolution", "Aspect Ratio Change",
)

#: TNL2K's 17 attribute abbreviations, in the line order of its attribute files (official evaluation toolkit).
TNL2K_ATTRIBUTES: Tuple[str, ...] = (
    "CM", "ROT", "DEF", "FOC", "IV", "OV", "POC", "VC", "SV", "BC", "MB", "ARC", "LR", "FM", "AS", "TC", "MS",
)

#: Full names of :data:`TNL2K_ATTRIBUTES` (same order).
TNL2K_ATTRIBUTE_FULL_NAMES: Tuple[str, ...] = (
    "Camera Motion", "Rotation", "Deformation", "Full Occlusion", "Illumination Variation", "Out-of-View",
    "Partial Occlusion", "Viewpoint Change", "Scale Variation", "Background Clutter", "Motion Blur",
    "Aspect Ratio Change", "Low Resolution", "Fast Motion", "Adversarial Samples", "Thermal Crossover",
    "Modality Switch",
)


def parse_attribute_words(value: object, video: str = "?", path: Optional[PathLike] = None) -> List[str]:
    """Turn ``"a,b,c,d"`` or a 4-item list/tuple of strings into ``[major, root, color, position]``.

    Words are stripped of surrounding white space; a wrong number of words, an empty word or a non-string value
    raises :class:`DataError` naming the file and the video.
    """
    field = f"video '{video}'"
    if isinstance(value, str):
        words = value.split(",")
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(w, str) for w in value):
            raise DataError(f"attribute words must be strings, got {value!r}", path=path, field=field)
        words = list(value)
    else:
        raise DataError(
            f"attribute words must be a string 'major,root,color,position' or a list of 4 strings, got {value!r}",
            path=path, field=field,
        )
    words = [w.strip() for w in words]
    if len(words) != len(ATTRIBUTE_WORD_FIELDS):
        raise DataError(
            f"expected 4 attribute words (major,root,color,position), got {len(words)}: {value!r}",
            path=path, field=field,
        )
    for name, word in zip(ATTRIBUTE_WORD_FIELDS, words):
        if not word:
            raise DataError(f"attribute word '{name}' is empty in {value!r}", path=path, field=field)
    return words


def _from_mapping(data: object, path: Optional[PathLike]) -> Dict[str, List[str]]:
    if not isinstance(data, Mapping):
        raise DataError(
            f"an attribute file must hold a mapping video -> words, got {type(data).__name__}", path=path,
            field="<root>",
        )
    out: Dict[str, List[str]] = {}
    for video, value in data.items():
        if not isinstance(video, str) or not video.strip():
            raise DataError(f"video names must be non-empty strings, got {video!r}", path=path, field="<key>")
        out[video.strip()] = parse_attribute_words(value, video=video, path=path)
    return out


def _read_csv(path: Path) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            cells = [c.strip() for c in row]
            if lineno == 1 and [c.lower() for c in cells] == ["video", *ATTRIBUTE_WORD_FIELDS]:
                continue  # header row
            video = cells[0]
            if len(cells) != 1 + len(ATTRIBUTE_WORD_FIELDS):
                raise DataError(
                    f"line {lineno}: expected 5 columns video,major,root,color,position, got {len(cells)}",
                    path=path, field=f"video '{video}'",
                )
            if not video:
                raise DataError(f"line {lineno}: empty video name", path=path, field="video")
            if video in out:
                raise DataError(f"line {lineno}: video listed twice", path=path, field=f"video '{video}'")
            out[video] = parse_attribute_words(cells[1:], video=video, path=path)
    return out


def load_attribute_words(source: Union[PathLike, Mapping[str, object]]) -> Dict[str, List[str]]:
    """Read an attribute-word annotation (torch-saved dict, CSV or JSON; see module doc) or validate a mapping.

    Returns ``{video: [major, root, color, position]}``. Malformed entries raise :class:`DataError` naming the file
    and the video.
    """
    if isinstance(source, Mapping):
        return _from_mapping(source, path=None)
    path = Path(source)
    if not path.is_file():
        raise DataError("attribute file not found", path=path, field="attributes")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc}", path=path, field="attributes") from None
        return _from_mapping(data, path)
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types (pickle, runtime, unpickling) for a bad file
        raise DataError(
            f"cannot read the attribute dict with torch.load(weights_only=True) ({type(exc).__name__}: {exc}); "
            "use .csv or .json for plain-text annotations", path=path, field="attributes",
        ) from None
    return _from_mapping(data, path)


def save_attribute_words(words: Mapping[str, Sequence[str]], path: PathLike) -> Path:
    """Write ``{video: [major, root, color, position]}`` atomically as JSON, CSV or a torch-saved dict (by suffix).

    The torch form is the released form of paper 000 (values ``"major,root,color,position"``).
    """
    from asearch.io import atomic_torch_save, atomic_write_json, atomic_write_text

    path = Path(path)
    checked = {video: parse_attribute_words(list(w) if not isinstance(w, str) else w, video=video, path=path)
               for video, w in words.items()}
    for video, ws in checked.items():
        if any("," in w for w in ws):
            raise DataError(f"attribute words may not contain commas: {ws}", path=path, field=f"video '{video}'")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return atomic_write_json(path, {v: ",".join(ws) for v, ws in checked.items()})
    if suffix == ".csv":
        lines = ["video," + ",".join(ATTRIBUTE_WORD_FIELDS)] + [f"{v}," + ",".join(ws) for v, ws in checked.items()]
        return atomic_write_text(path, "\n".join(lines) + "\n")
    atomic_torch_save({v: ",".join(ws) for v, ws in checked.items()}, path)
    return path


def read_attribute_flags(path: PathLike, names: Sequence[str] = LASOT_ATTRIBUTES) -> Dict[str, bool]:
    """Read 0/1 attribute flags (one row or one per line; comma or white-space separated) into ``{name: bool}``.

    A wrong number of values or a value other than 0/1 raises :class:`DataError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("attribute flag file not found", path=path, field="attribute_flags")
    tokens = [t for t in re.split(r"[,\s]+", path.read_text(encoding="utf-8").strip()) if t]
    if len(tokens) != len(names):
        raise DataError(
            f"expected {len(names)} attribute flags ({','.join(names)}), got {len(tokens)}", path=path,
            field="attribute_flags",
        )
    flags: Dict[str, bool] = {}
    for name, tok in zip(names, tokens):
        try:
            value = float(tok)
        except ValueError:
            raise DataError(f"flag '{name}' is not a number: {tok!r}", path=path, field="attribute_flags") from None
        if value not in (0.0, 1.0):
            raise DataError(f"flag '{name}' must be 0 or 1, got {tok!r}", path=path, field="attribute_flags")
        flags[name] = value == 1.0
    return flags
