"""Errors of the toolkit: each names the file and the field at fault so that a user can fix the input."""
from __future__ import annotations

from typing import Optional

__all__ = ["ASearchError", "ConfigError", "DataError", "ArchitectureError", "CheckpointError", "ModelNotFoundError",
           "DataWarning"]


class ASearchError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class ConfigError(ASearchError, ValueError):
    """A config file, key or override is wrong (unknown key, bad type, missing dataset root)."""


class DataError(ASearchError, ValueError):
    """A dataset file is malformed; ``path`` and ``field`` say where."""

    def __init__(self, message: str, path: Optional[str] = None, field: Optional[str] = None):
        self.path = None if path is None else str(path)
        self.field = field
        where = ", ".join(p for p in (self.path and f"file {self.path}", field and f"field {field}") if p)
        super().__init__(f"{where}: {message}" if where else message)


class ArchitectureError(ASearchError, ValueError):
    """An architecture JSON or genome is invalid; the message names the bad field."""


class CheckpointError(ASearchError, ValueError):
    """A checkpoint does not fit the model (wrong keys or shapes); the message names the first bad key."""


class ModelNotFoundError(ASearchError, FileNotFoundError):
    """A local model (text encoder, pretrained weights) is missing; the message says what to put where."""


class DataWarning(UserWarning):
    """A data problem the toolkit can go on with: a dataset file empty or missing (e.g. a video without language),
    or validation videos that are also training data; the message names the file or videos and what is done."""
