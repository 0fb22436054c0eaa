"""Search state on disk: a JSON snapshot written atomically after every generation, plus a per-candidate journal.

- ``search_state.json`` (atomic): the generation in progress and its population, every scored candidate of the
  finished generations, the top-k, the NumPy generator state and the config the search runs with.
- ``scored.jsonl`` (append-only, one line per scored candidate, flushed and fsync'd): lets ``--resume`` reuse the
  scores of a generation that was killed half-way, so no candidate is scored twice. A torn last line (kill during
  the write) is ignored.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from asearch.errors import ConfigError
from asearch.io import atomic_write_json
from search_spaces.genome import Genome

__all__ = ["Candidate", "CandidateRecord", "SearchState", "save_state", "load_state", "Journal",
           "STATE_FILE", "JOURNAL_FILE"]

STATE_FILE = "search_state.json"
JOURNAL_FILE = "scored.jsonl"
STATE_FORMAT = "asearch-search-state"


@dataclass(frozen=True)
class Candidate:
    """A genome proposed for a generation: where it came from (``random``, ``mutation``, ``crossover``) and its cost."""

    genome: Genome
    origin: str
    flops: Optional[int] = None
    params: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able dict."""
        return {"genome": self.genome.to_official(), "origin": self.origin, "flops": self.flops,
                "params": self.params}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Candidate":
        """Inverse of :meth:`to_dict`."""
        return cls(Genome.from_official(d["genome"]), d["origin"], d.get("flops"), d.get("params"))


@dataclass
class CandidateRecord:
    """One scored candidate (a row of ``candidates.csv``)."""

    genome: Genome
    generation: int
    index: int
    origin: str
    mode: str
    suc: float
    flops: Optional[int]
    params: Optional[int]
    seconds: float
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able dict."""
        return {"genome": self.genome.to_official(), "generation": self.generation, "index": self.index,
                "origin": self.origin, "mode": self.mode, "suc": float(self.suc), "flops": self.flops,
                "params": self.params, "seconds": float(self.seconds), "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "CandidateRecord":
        """Inverse of :meth:`to_dict`."""
        return cls(Genome.from_official(d["genome"]), int(d["generation"]), int(d["index"]), d["origin"], d["mode"],
                   float(d["suc"]), d.get("flops"), d.get("params"), float(d["seconds"]), dict(d.get("extra", {})))


@dataclass
class SearchState:
    """Everything needed to continue a search exactly where it stopped."""

    config: Dict[str, Any]
    mode: str
    seed: int
    generation: int = 0
    done: bool = False
    population: List[Candidate] = field(default_factory=list)
    records: List[CandidateRecord] = field(default_factory=list)
    topk: List[CandidateRecord] = field(default_factory=list)
    rng_state: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able dict."""
        return {"format": STATE_FORMAT, "version": 1, "config": self.config, "mode": self.mode, "seed": self.seed,
                "generation": self.generation, "done": self.done,
                "population": [c.to_dict() for c in self.population],
                "records": [r.to_dict() for r in self.records],
                "topk": [[r.generation, r.index] for r in self.topk],
                "rng_state": self.rng_state}

    @classmethod
    def from_dict(cls, d: Dict[str, Any], source: str = STATE_FILE) -> "SearchState":
        """Inverse of :meth:`to_dict` (top-k entries point into ``records`` by generation and index)."""
        if d.get("format") != STATE_FORMAT:
            raise ConfigError(f"{source}: not a search state file (format {d.get('format')!r})")
        records = [CandidateRecord.from_dict(r) for r in d["records"]]
        by_key = {(r.generation, r.index): r for r in records}
        try:
            topk = [by_key[(int(g), int(i))] for g, i in d["topk"]]
        except KeyError as exc:
            raise ConfigError(f"{source}: field 'topk' points at a candidate not in 'records': {exc}") from None
        return cls(config=d["config"], mode=d["mode"], seed=int(d["seed"]), generation=int(d["generation"]),
                   done=bool(d["done"]), population=[Candidate.from_dict(c) for c in d["population"]],
                   records=records, topk=topk, rng_state=d["rng_state"])


def save_state(state: SearchState, out_dir: Union[str, Path]) -> Path:
    """Write ``search_state.json`` atomically."""
    return atomic_write_json(Path(out_dir) / STATE_FILE, state.to_dict(), indent=1)


def load_state(out_dir: Union[str, Path]) -> Optional[SearchState]:
    """The saved state of the search in ``out_dir``, or ``None`` when there is none."""
    path = Path(out_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: unreadable search state ({exc}); it is written atomically, so this file was "
                          "edited or truncated by hand") from None
    return SearchState.from_dict(data, str(path))


class Journal:
    """Append-only record of scored candidates (``scored.jsonl``): survives a kill in the middle of a generation."""

    def __init__(self, out_dir: Union[str, Path]):
        self.path = Path(out_dir) / JOURNAL_FILE

    def append(self, record: CandidateRecord) -> None:
        """Add one scored candidate (flushed and fsync'd before returning)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read(self) -> List[CandidateRecord]:
        """Every complete line; a torn last line is skipped."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(CandidateRecord.from_dict(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
        return out

    def clear(self) -> None:
        """Start a fresh journal (a new search in this folder)."""
        if self.path.exists():
            self.path.unlink()
