"""Training logs: a per-step CSV file (append-only, truncated back to the checkpoint on resume) and optional
TensorBoard (used only when the ``tensorboard`` package is installed; it is not a dependency of the toolkit)."""
from __future__ import annotations

import csv
import importlib.util
import io
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from asearch.errors import ConfigError, DataError
from asearch.io import atomic_write_text
from asearch.runtime import plain_progress  # noqa: F401  (re-exported: its home is asearch.runtime)

__all__ = ["CsvLogger", "TensorBoardLogger", "tensorboard_available", "progress_line", "plain_progress"]


def progress_line(row: Mapping[str, Any], total: int, name: str = "train") -> str:
    """One plain line of a logged row: ``train step 120/1000 epoch 0 loss 1.2345 lr 1.00e-03 0.512 s/step``."""
    parts = [f"{name} step {row['step']}/{total}", f"epoch {row.get('epoch', 0)}"]
    if isinstance(row.get("loss"), float):
        parts.append(f"loss {row['loss']:.4f}")
    if isinstance(row.get("lr"), float):
        parts.append(f"lr {row['lr']:.2e}")
    if isinstance(row.get("sec_per_step"), float):
        parts.append(f"{row['sec_per_step']:.3f} s/step")
    return " ".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


class CsvLogger:
    """One row per logged step in ``path``; the first column is ``step``, the others are found as they come.

    Rows are appended and flushed one at a time, so a killed run leaves every finished row. A row with a column not
    seen before rewrites the file once (atomically) with the wider header; missing values are left empty.
    ``resume_step``: keep only the rows with ``step <= resume_step`` (the rows a resumed run would otherwise
    duplicate); ``None`` starts a new file.
    """

    def __init__(self, path: Union[str, os.PathLike], resume_step: Optional[int] = None):
        self.path = Path(path)
        self.columns: List[str] = ["step"]
        rows: List[Dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            rows = self._read_rows()
            rows = [r for r in rows if int(float(r["step"])) <= resume_step]
        self._rewrite(rows)

    def _read_rows(self) -> List[Dict[str, str]]:
        with open(self.path, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                return []
            if "step" not in reader.fieldnames:
                raise DataError("training log has no 'step' column", path=str(self.path), field="step")
            self.columns = list(reader.fieldnames)
            rows = []
            for i, row in enumerate(reader, start=2):
                try:
                    int(float(row["step"]))
                except (TypeError, ValueError):
                    raise DataError(f"line {i}: step {row['step']!r} is not a number", path=str(self.path),
                                    field="step") from None
                rows.append(row)
            return rows

    def _rewrite(self, rows: List[Mapping[str, Any]]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) for k, v in row.items() if k in self.columns})
        atomic_write_text(self.path, buf.getvalue())

    def log(self, row: Mapping[str, Any]) -> None:
        """Append ``row`` (a mapping with a ``step`` key and numbers or strings)."""
        if "step" not in row:
            raise ValueError("CsvLogger.log: the row needs a 'step' value")
        new = [k for k in row if k not in self.columns]
        if new:
            old = self._read_rows() if self.path.is_file() else []
            self.columns = self.columns + new
            self._rewrite(old)
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, restval="", lineterminator="\n")
            writer.writerow({k: _fmt(v) for k, v in row.items()})
            fh.flush()

    def close(self) -> None:
        """Nothing to release (every row is flushed when written); kept for symmetry with TensorBoard."""


def tensorboard_available() -> bool:
    """True when the optional ``tensorboard`` package is importable."""
    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger:
    """Scalars to TensorBoard event files in ``log_dir``; on resume, events after ``purge_step`` are dropped."""

    def __init__(self, log_dir: Union[str, os.PathLike], purge_step: Optional[int] = None):
        if not tensorboard_available():
            raise ConfigError(
                "config key 'tensorboard' is true but the 'tensorboard' package is not installed: "
                "`pip install tensorboard` or set tensorboard: false"
            )
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def log(self, row: Mapping[str, Any]) -> None:
        """Write every numeric value of ``row`` at ``row["step"]`` under ``train/<name>``."""
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.flush()
        self.writer.close()
