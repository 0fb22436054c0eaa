"""Results files: ``<name>.txt`` with one ``x,y,w,h`` row per frame, and ``<name>_time.json`` with the speed.

Rows are written comma-separated with exact float text (``repr``; integral values without a decimal point), so
reading back gives the same numbers. The reader also takes whitespace- or tab-separated rows (OTB style), CRLF line
ends and trailing blank lines; a malformed row raises :class:`DataError` naming the file and the line.
pytracking-style ``<name>_time.txt`` files (one time in seconds per frame) are read as well.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Dict, Optional, Sequence as Seq, Union

import numpy as np

from asearch.errors import DataError
from asearch.io import atomic_write_json, atomic_write_text

__all__ = ["results_path", "write_results", "read_results", "results_done", "read_speed", "write_frame_info",
           "read_frame_info"]

PathLike = Union[str, os.PathLike]
_SEP = re.compile(r"[,\s]+")


def results_path(results_dir: PathLike, name: str) -> Path:
    """The results file of sequence ``name``: ``<results_dir>/<name>.txt``."""
    return Path(results_dir) / f"{name}.txt"


def _fmt(v: float) -> str:
    v = float(v)
    if math.isfinite(v) and v == int(v):
        return str(int(v))
    return repr(v)  # shortest text that reads back to the same float; 'nan' / 'inf' for non-finite values


def write_results(results_dir: PathLike, name: str, boxes: np.ndarray, fps: Optional[float] = None,
                  times: Optional[Seq[float]] = None) -> Path:
    """Write ``<name>.txt`` (one ``x,y,w,h`` row per frame) atomically; with ``fps`` or per-frame ``times``
    (seconds) also ``<name>_time.json`` (``{"fps", "times", "n_frames"}``). Returns the results file path."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise DataError(f"boxes of sequence '{name}' must be N x 4, got shape {tuple(boxes.shape)}",
                        path=results_path(results_dir, name), field="boxes")
    text = "".join(",".join(_fmt(v) for v in row) + "\n" for row in boxes)
    if times is not None or fps is not None:
        times_list = None if times is None else [float(t) for t in times]
        if fps is None and times_list:
            total = sum(times_list)
            fps = len(times_list) / total if total > 0 else None
        atomic_write_json(Path(results_dir) / f"{name}_time.json",
                          {"fps": None if fps is None else float(fps), "times": times_list,
                           "n_frames": int(len(boxes))})
    # the boxes file last: its presence is what marks the sequence as done
    return atomic_write_text(results_path(results_dir, name), text)


def _plain(value: object) -> object:
    """A JSON-safe scalar: floats (NaN as None), ints, strings, bools, None; anything else as its float."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    value = float(value)  # numpy / torch scalars
    return None if not math.isfinite(value) else value


def write_frame_info(results_dir: PathLike, name: str, keys: Seq[str], frames: Seq[Dict[str, object]]) -> Path:
    """Write ``<name>_info.json`` atomically: ``{"keys": [...], "frames": [{key: value}, ...]}``, one row per frame
    (frame 0, the initialisation, included); values are JSON scalars (a NaN score is stored as null)."""
    rows = [{k: _plain(row.get(k)) for k in keys} for row in frames]
    return atomic_write_json(Path(results_dir) / f"{name}_info.json", {"keys": list(keys), "frames": rows})


def read_frame_info(results_dir: PathLike, name: str) -> Optional[Dict[str, object]]:
    """``<name>_info.json`` as written by :func:`write_frame_info`, or ``None`` when the tracker wrote none.

    Raises:
        DataError: the file is not valid JSON or lacks ``keys`` / ``frames`` (the message names the file).
    """
    path = Path(results_dir) / f"{name}_info.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"per-frame info of sequence '{name}' is not valid JSON: {exc}", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not isinstance(data.get("frames"), list):
        raise DataError(f"per-frame info of sequence '{name}' needs 'keys' and 'frames' lists", path=path,
                        field="frames")
    return data


def read_results(results_dir: PathLike, name: str) -> np.ndarray:
    """Read ``<results_dir>/<name>.txt`` as an ``N x 4`` float64 array.

    Raises:
        DataError: the file is missing (the message names the sequence), or a row does not hold 4 numbers
            (the message names the file and the 1-based line).
    """
    path = results_path(results_dir, name)
    if not path.is_file():
        raise DataError(f"no results for sequence '{name}' (expected {path.name} in {Path(results_dir)})",
                        path=path, field="results")
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = []
    for lineno, line in enumerate(lines, start=1):
        parts = [p for p in _SEP.split(line.strip()) if p]
        if len(parts) != 4:
            raise DataError(f"line {lineno}: expected 4 values x,y,w,h, got {len(parts)}: {line.strip()!r}",
                            path=path, field=f"line {lineno}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise DataError(f"line {lineno}: not a number in {line.strip()!r}", path=path,
                            field=f"line {lineno}") from None
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def results_done(results_dir: PathLike, name: str, n_frames: int) -> bool:
    """True when ``<name>.txt`` exists, parses, and holds exactly ``n_frames`` rows (a finished sequence)."""
    try:
        return len(read_results(results_dir, name)) == int(n_frames)
    except DataError:
        return False


def read_speed(results_dir: PathLike, name: str) -> Optional[Dict[str, object]]:
    """Speed record of sequence ``name`` (``{"fps", "times", "n_frames"}``) or None when none was written.

    Reads ``<name>_time.json`` (this toolkit) or a pytracking ``<name>_time.txt`` (one time per line).
    """
    jpath = Path(results_dir) / f"{name}_time.json"
    if jpath.is_file():
        try:
            data = json.loads(jpath.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc}", path=jpath, field="fps") from None
        return {"fps": data.get("fps"), "times": data.get("times"), "n_frames": data.get("n_frames")}
    tpath = Path(results_dir) / f"{name}_time.txt"
    if tpath.is_file():
        times = []
        for lineno, line in enumerate(tpath.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    times.append(float(line.strip()))
                except ValueError:
                    raise DataError(f"line {lineno}: not a time in seconds: {line.strip()!r}", path=tpath,
                                    field=f"line {lineno}") from None
        total = sum(times)
        return {"fps": len(times) / total if total > 0 else None, "times": times, "n_frames": len(times)}
    return None
