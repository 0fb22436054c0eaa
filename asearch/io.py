"""Atomic file writing (write to a temporary file in the same folder, then rename) and self-describing checkpoints."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Union

import torch

from asearch.errors import CheckpointError

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_torch_save", "load_torch",
           "atomic_link"]

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` then rename ``tmp_path`` onto ``path``: a kill leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_link(source: PathLike, path: PathLike) -> str:
    """Make ``path`` the same file as ``source`` atomically: a hard link (no second copy on disk; removing
    ``source`` later leaves ``path`` whole), or a copy where the file system has no hard links. Returns ``"link"``
    or ``"copy"``. ``path`` is replaced by rename, never written in place, so ``source`` is never touched."""
    import shutil

    made = {"how": "link"}

    def _w(tmp: str) -> None:
        os.unlink(tmp)  # mkstemp's placeholder: os.link needs a free name
        try:
            os.link(source, tmp)
        except OSError:  # no hard links here (some network / FAT file systems): copy
            shutil.copyfile(source, tmp)
            made["how"] = "copy"

    atomic_write(path, _w)
    return made["how"]


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    def _w(tmp: str) -> None:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    return atomic_write(path, _w)


def atomic_write_json(path: PathLike, data: Any, indent: int = 2) -> Path:
    """Write ``data`` as JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(data, indent=indent, sort_keys=False) + "\n")


def atomic_torch_save(obj: Any, path: PathLike) -> Path:
    """``torch.save`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: PathLike, map_location: Union[str, torch.device] = "cpu", weights_only: bool = True) -> Dict[str, Any]:
    """``torch.load`` with a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(str(path), map_location=map_location, weights_only=weights_only)
    except Exception as exc:  # corrupt or foreign file: say which one
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
