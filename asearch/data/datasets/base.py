"""The base of every dataset reader, and the small parsers all readers share.

A reader lists its videos (names) cheaply at construction and builds each :class:`~asearch.data.sequence.Sequence`
on first access (annotation text files are read then; frames are read lazily by ``Sequence.frame``). Every reader
accepts a split file (one video name per line; blank lines and lines starting with ``#`` are ignored) that replaces
the built-in split, an optional attribute-word annotation (see :mod:`asearch.data.attributes`) and the ``held_out``
option.

Held-out validation videos: a dataset may ship a list of training videos kept out of pretraining so that the
architecture search can score candidates on videos the supernet never saw (package data ``splits/<HELD_OUT_FILE>``;
LaSOT: ``lasot_heldout.txt``). ``held_out: exclude`` drops them from the split (pretraining), ``only`` keeps just
them (the search's validation set), ``keep`` (default) ignores the list.
"""
from __future__ import annotations

import abc
import os
import re
import warnings
from pathlib import Path
from typing import ClassVar, Dict, Iterator, List, Mapping, Optional, Sequence as Seq, Tuple, Union

import numpy as np

from asearch.data.attributes import load_attribute_words, read_attribute_flags
from asearch.data.sequence import Sequence
from asearch.errors import ConfigError, DataError, DataWarning

__all__ = [
    "SequenceDataset",
    "IMAGE_EXTENSIONS",
    "natural_key",
    "list_images",
    "read_boxes",
    "read_int_values",
    "read_sentence",
    "read_split_file",
    "pad_first_frame_only",
    "HELD_OUT_MODES",
    "SPLIT_DIR",
]

PathLike = Union[str, os.PathLike]
AttributeSource = Union[PathLike, Mapping[str, object], None]

#: Folder of the split lists shipped as package data (LaSOT's official test list, held-out validation lists).
SPLIT_DIR = Path(__file__).resolve().parent / "splits"

#: Values of the ``held_out`` reader option (see the module doc).
HELD_OUT_MODES: Tuple[str, ...] = ("keep", "exclude", "only")

#: Image file suffixes a frame folder may hold (compared case-insensitively).
IMAGE_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

_SEPARATORS = re.compile(r"[,;\s]+")


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: ``img2.png`` < ``img10.jpg`` (case-insensitive for text)."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_images(folder: PathLike, field: str = "frames") -> List[str]:
    """Image files of ``folder`` in natural order; a missing folder raises :class:`DataError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("image folder not found", path=folder, field=field)
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
    return [str(folder / n) for n in sorted(names, key=natural_key)]


def _data_lines(path: Path, field: str) -> List[Tuple[int, str]]:
    """Non-empty lines with 1-based line numbers; trailing blank lines are dropped, inner blank lines are errors."""
    if not path.is_file():
        raise DataError("file not found", path=path, field=field)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    lines = text.splitlines()  # handles \r\n and lone \r
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(f"line {i}: empty row inside the annotation", path=path, field=field)
        out.append((i, line.strip()))
    return out


def read_boxes(path: PathLike, field: str = "groundtruth") -> np.ndarray:
    """Read ``N×4`` boxes ``x, y, w, h``, one row per line, comma- and/or white-space separated (CRLF allowed).

    A row that is not 4 numbers, or holds NaN/inf, raises :class:`DataError` with the line number.
    """
    path = Path(path)
    rows = []
    for lineno, line in _data_lines(path, field):
        tokens = [t for t in _SEPARATORS.split(line) if t]
        if len(tokens) != 4:
            raise DataError(f"line {lineno}: expected 4 values x,y,w,h, got {len(tokens)}: {line!r}",
                            path=path, field=field)
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise DataError(f"line {lineno}: non-numeric value in box row {line!r}", path=path, field=field) from None
        if not all(np.isfinite(values)):
            raise DataError(f"line {lineno}: NaN or infinite value in box row {line!r}", path=path, field=field)
        rows.append(values)
    if not rows:
        raise DataError("no boxes in the file", path=path, field=field)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def read_int_values(path: PathLike, field: str) -> np.ndarray:
    """Read integers separated by commas, white space or newlines (a single row or one per line) into a 1-D array.

    A token that is not an integer raises :class:`DataError` with its line number.
    """
    path = Path(path)
    values: List[int] = []
    for lineno, line in _data_lines(path, field):
        for tok in (t for t in _SEPARATORS.split(line) if t):
            try:
                number = float(tok)
            except ValueError:
                raise DataError(f"line {lineno}: not an integer: {tok!r}", path=path, field=field) from None
            if not np.isfinite(number) or not number.is_integer():
                raise DataError(f"line {lineno}: not an integer: {tok!r}", path=path, field=field)
            values.append(int(number))
    return np.asarray(values, dtype=np.int64)


_WARNED_LANGUAGE: set = set()  # files already warned about in this process (one warning per file)


def _warn_no_language(path: Path, what: str) -> None:
    key = str(path.resolve()) if path.exists() else str(path.absolute())
    if key in _WARNED_LANGUAGE:
        return
    _WARNED_LANGUAGE.add(key)
    warnings.warn(f"{path}: the language file is {what}; the video is treated as having no language "
                  "(language.missing decides: zero, template or attribute)", DataWarning, stacklevel=3)


def read_sentence(path: PathLike, field: str = "language", expected: bool = True) -> Optional[str]:
    """The language description in ``path`` (lines joined by a space, white space folded), or None.

    An empty file (TNL2K ships some) and, when ``expected`` (the layout has one per video), a missing file give
    None with one :class:`~asearch.errors.DataWarning` naming the file: the video then has no language and the
    configured ``language.missing`` strategy (paper 000 Table 7) applies in training, tracking and evaluation.
    Bytes that are not UTF-8 text raise :class:`DataError` naming the file, the field and the byte offset.
    """
    path = Path(path)
    if not path.is_file():
        if expected:
            _warn_no_language(path, "missing")
        return None
    raw = path.read_bytes()
    try:
        decoded = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})", path=path,
                        field=field) from None
    text = " ".join(" ".join(line.strip() for line in decoded.splitlines()).split())
    if not text:
        _warn_no_language(path, "empty")
        return None
    return text


def read_split_file(path: PathLike) -> List[str]:
    """Video names of a split file: one per line, blank lines and ``#`` comments ignored, duplicates an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError("split file not found", path=path, field="split_file")
    names: List[str] = []
    seen: Dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if name in seen:
            raise DataError(f"line {lineno}: video '{name}' already listed at line {seen[name]}", path=path,
                            field="split_file")
        seen[name] = lineno
        names.append(name)
    if not names:
        raise DataError("the split file lists no video", path=path, field="split_file")
    return names


def pad_first_frame_only(boxes: np.ndarray, num_frames: int) -> np.ndarray:
    """Extend a one-row annotation (test splits of GOT-10k/TrackingNet) to ``num_frames`` rows of NaN after row 0."""
    out = np.full((num_frames, 4), np.nan, dtype=np.float64)
    out[0] = boxes[0]
    return out


class SequenceDataset(abc.ABC):
    """A list of videos of one dataset split, indexable by position or by name.

    Subclasses set :attr:`dataset_name`, :attr:`LAYOUT` (the expected on-disk layout, shown in errors),
    :attr:`SPLIT_BY_FOLDER` (whether a split is a folder, which a split file then selects from),
    :attr:`NATIVE_LANGUAGE`, :attr:`ATTRIBUTE_NAMES` with :attr:`FLAG_FILE` (per-video attribute flags, read from
    a ``flags_dir`` option) and :attr:`HELD_OUT_FILE`, and implement :meth:`_list_names` and :meth:`_load`.

    Args:
        root: dataset root folder.
        split: the split name (meaning per dataset).
        attributes: attribute-word annotation (file path or mapping ``video -> words``) filling
            ``Sequence.attributes``; videos not in it keep what the reader found (usually None).
        split_file: a file of video names (one per line) replacing the built-in split.
        held_out: ``keep``, ``exclude`` or ``only`` the dataset's held-out validation videos (module doc).
    """

    dataset_name: ClassVar[str] = ""
    LAYOUT: ClassVar[str] = ""
    SPLIT_BY_FOLDER: ClassVar[bool] = False
    NATIVE_LANGUAGE: ClassVar[bool] = False
    ATTRIBUTE_NAMES: ClassVar[Tuple[str, ...]] = ()
    #: name of a video's attribute-flag file in ``flags_dir`` (``{video}`` is replaced); "": no flag files
    FLAG_FILE: ClassVar[str] = ""
    #: file name (in :data:`SPLIT_DIR`) of the held-out validation list; "": the dataset ships none
    HELD_OUT_FILE: ClassVar[str] = ""

    def __init__(self, root: PathLike, split: str = "test", attributes: AttributeSource = None,
                 split_file: Optional[PathLike] = None, held_out: str = "keep") -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"dataset root not found. Expected layout: {self.LAYOUT}", path=self.root, field="root")
        self.split = split
        self.split_file = None if split_file is None else Path(split_file)
        self.attribute_words: Optional[Dict[str, List[str]]] = (
            None if attributes is None else load_attribute_words(attributes))
        if self.split_file is not None:
            candidates = self._list_names(split if self.SPLIT_BY_FOLDER else None)
            self._names = self._select(read_split_file(self.split_file), candidates)
        else:
            self._names = self._list_names(split)
        self.held_out = held_out
        self._names = self._apply_held_out(self._names)
        self._index = {n: i for i, n in enumerate(self._names)}
        self._cache: Dict[str, Sequence] = {}

    # -- subclass hooks ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _list_names(self, split: Optional[str]) -> List[str]:
        """Video names of ``split`` (None: every video the split file may choose from)."""

    @abc.abstractmethod
    def _load(self, name: str) -> Sequence:
        """Build the :class:`Sequence` of video ``name`` from its annotation files."""

    # -- shared behaviour -------------------------------------------------------------------------------------------
    @classmethod
    def held_out_names(cls) -> List[str]:
        """The dataset's held-out validation videos (package data); ConfigError when it ships no list."""
        if not cls.HELD_OUT_FILE:
            raise ConfigError(f"dataset '{cls.dataset_name}' ships no held-out validation list: option held_out "
                              "must be 'keep' (choose videos with split_file instead)")
        return read_split_file(SPLIT_DIR / cls.HELD_OUT_FILE)

    @classmethod
    def filter_held_out(cls, names: Seq[str], mode: str) -> List[str]:
        """Those of ``names`` that the ``held_out`` option ``mode`` keeps (``keep``: all, ``exclude``: those not in
        :meth:`held_out_names`, ``only``: those in it), in their order; ConfigError for an unknown mode."""
        if mode not in HELD_OUT_MODES:
            raise ConfigError(f"dataset '{cls.dataset_name}': option held_out must be one of "
                              f"{', '.join(HELD_OUT_MODES)}, got {mode!r}")
        if mode == "keep":
            return list(names)
        held = set(cls.held_out_names())
        return [n for n in names if (n in held) == (mode == "only")]

    def _apply_held_out(self, names: List[str]) -> List[str]:
        kept = self.filter_held_out(names, self.held_out)
        if self.held_out != "only":
            return kept
        listed = self.held_out_names()
        present = set(kept)
        if not kept:
            raise DataError(f"none of the {len(listed)} held-out videos (e.g. '{listed[0]}') is in split "
                            f"'{self.split}' under {self.root}", path=SPLIT_DIR / self.HELD_OUT_FILE,
                            field="held_out")
        if len(kept) < len(listed):
            warnings.warn(DataWarning(f"{self.root}: {len(listed) - len(kept)} of the {len(listed)} held-out "
                                      f"videos are not in split '{self.split}' (first: "
                                      f"{next(n for n in listed if n not in present)}); using the {len(kept)} "
                                      "present"), stacklevel=3)
        return kept

    def _init_flags_dir(self, flags_dir: Optional[PathLike]) -> None:
        """Check and keep ``flags_dir``, the folder of per-video attribute-flag files (None: no flags)."""
        self.flags_dir = None if flags_dir is None else Path(flags_dir)
        if self.flags_dir is not None and not self.flags_dir.is_dir():
            raise DataError("attribute flag folder not found", path=self.flags_dir, field="flags_dir")

    def _attribute_flags_of(self, name: str) -> Optional[Dict[str, bool]]:
        """Flags of video ``name`` from ``flags_dir/FLAG_FILE`` (None: no folder, or no file for that video); a
        malformed file raises :class:`DataError` naming it."""
        folder = getattr(self, "flags_dir", None)
        if folder is None or not self.FLAG_FILE:
            return None
        path = folder / self.FLAG_FILE.format(video=name)
        return read_attribute_flags(path, self.ATTRIBUTE_NAMES) if path.is_file() else None

    def _select(self, wanted: List[str], candidates: Seq[str]) -> List[str]:
        known = set(candidates)
        for name in wanted:
            if name not in known:
                raise DataError(
                    f"video '{name}' is not in the dataset under {self.root}"
                    + (f" (split folder '{self.split}')" if self.SPLIT_BY_FOLDER else ""),
                    path=self.split_file, field="split_file",
                )
        return list(wanted)

    def _attribute_words_of(self, name: str) -> Optional[List[str]]:
        if self.attribute_words is None:
            return None
        words = self.attribute_words.get(name)
        return None if words is None else list(words)

    @property
    def name(self) -> str:
        """Dataset name (registry key), e.g. ``"lasot"``."""
        return self.dataset_name

    @property
    def names(self) -> List[str]:
        """Video names in this split, in order."""
        return list(self._names)

    @property
    def has_language(self) -> bool:
        """True when the videos carry language: native sentences or an attribute-word annotation."""
        return self.NATIVE_LANGUAGE or self.attribute_words is not None

    @property
    def attribute_names(self) -> Tuple[str, ...]:
        """Names of the per-video attribute flags this dataset has (empty when none)."""
        return self.ATTRIBUTE_NAMES

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[Sequence]:
        for name in self._names:
            yield self[name]

    def __getitem__(self, key: Union[int, str]) -> Sequence:
        if isinstance(key, (int, np.integer)):
            if not -len(self._names) <= int(key) < len(self._names):
                raise IndexError(f"{self.dataset_name}: index {key} out of range for {len(self._names)} videos")
            name = self._names[int(key)]
        elif isinstance(key, str):
            if key not in self._index:
                raise KeyError(f"{self.dataset_name} ({self.split}): no video named '{key}'")
            name = key
        else:
            raise TypeError(f"index a dataset by position or video name, not {type(key).__name__}")
        seq = self._cache.get(name)
        if seq is None:
            seq = self._load(name)
            seq.dataset = self.dataset_name
            words = self._attribute_words_of(name)
            if words is not None:  # a given annotation replaces words a reader derives itself (GOT-10k)
                seq.attributes = words
            self._cache[name] = seq
        return seq

    def sequences(self) -> List[Sequence]:
        """Every video of the split as a list (loads all annotations)."""
        return [self[n] for n in self._names]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, videos={len(self)})"

    # -- helpers for subclasses -------------------------------------------------------------------------------------
    @staticmethod
    def _check_counts(name: str, frames: List[str], boxes: np.ndarray, gt_path: Path, img_dir: Path) -> None:
        if len(frames) != len(boxes):
            raise DataError(
                f"sequence '{name}': {len(frames)} frames in {img_dir} but {len(boxes)} boxes",
                path=gt_path, field="groundtruth",
            )
