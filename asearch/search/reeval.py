"""Re-evaluation of a search's top-k on a larger validation set (``final.reeval`` of the search YAML).

A search ranks thousands of candidates with a cheap, noisy fitness; the winner of that ranking is partly the luckiest
draw (the winner's curse). At the end of a search, the ``topk`` best candidates are scored again with the fitness
re-configured by ``final.reeval``: its own validation videos and frames, its own ``repeats`` (independent BN batches)
and optionally another ``mode``; the BN settings and the tracker stay the search's. ``best.json`` then holds the best
of that re-evaluation (ties: the better search rank first), with ``validation`` = its score during the search and
``reevaluation`` = its re-evaluated score and protocol.

Outputs in the search folder (atomic): ``reeval.json`` (protocol and one entry per re-scored candidate, written after
each, so a killed re-evaluation resumes with the candidates not scored yet and scores none twice) and
``reeval.csv``. Scoring runs in the driver process, one candidate after another (k is small).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from asearch.config import to_dict
from asearch.errors import ConfigError
from asearch.io import atomic_write_json, atomic_write_text
from asearch.search.fitness import FITNESS_MODES, ValidationConfig

__all__ = ["ReevalConfig", "FinalConfig", "reevaluate", "reevaluation_pick", "REEVAL_FILE"]

REEVAL_FILE = "reeval.json"


@dataclass
class ReevalConfig:
    """``final.reeval``: re-score the ``topk`` best candidates (0: off) on ``validation`` with ``repeats`` BN
    repeats and ``mode`` (``null``: the search's ``fitness.mode``)."""

    topk: int = 0
    validation: ValidationConfig = field(default_factory=lambda: ValidationConfig(videos=40, frames=None))
    repeats: int = 3
    mode: Optional[str] = None

    def __post_init__(self) -> None:
        if self.topk < 0:
            raise ConfigError(f"final.reeval.topk: must be >= 0 (0: no re-evaluation), got {self.topk}")
        if self.repeats < 1:
            raise ConfigError(f"final.reeval.repeats: must be >= 1, got {self.repeats}")
        if self.mode is not None and self.mode not in FITNESS_MODES:
            raise ConfigError(f"final.reeval.mode: {self.mode!r} is not one of {list(FITNESS_MODES)} or null")


@dataclass
class FinalConfig:
    """Section ``final`` of the search YAML: what happens after the last generation."""

    reeval: ReevalConfig = field(default_factory=ReevalConfig)


def reevaluation_pick(results: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The re-evaluated candidate ``best.json`` takes: the highest re-evaluated SUC, ties to the better search rank
    (``results``: the entries of ``reeval.json``)."""
    return max(results, key=lambda r: (r["suc"], -r["search_rank"]))


def reeval_fitness(fitness: Any, cfg: ReevalConfig) -> Any:
    """The search's :class:`~asearch.search.fitness.TrackingFitness` re-configured for the re-evaluation."""
    return fitness.with_config(validation=cfg.validation, repeats=cfg.repeats, mode=cfg.mode or fitness.config.mode)


def _load(path: Path, protocol: Dict[str, Any]) -> List[Dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); delete it to re-evaluate from scratch") from None
    if data.get("protocol") != protocol:
        raise ConfigError(f"{path}: written with another re-evaluation protocol than final.reeval now gives; "
                          "delete it (or restore the config) to go on")
    return list(data.get("results", []))


def _csv(results: Sequence[Dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["search_rank", "search_suc", "suc", "suc_std", "seconds", "genome"])
    for r in results:
        w.writerow([r["search_rank"], repr(r["search_suc"]), repr(r["suc"]), repr(r["suc_std"]),
                    f"{r['seconds']:.4f}", json.dumps(r["genome"], separators=(",", ":"))])
    return buf.getvalue()


def reevaluate(engine: Any, fitness: Any, cfg: ReevalConfig, progress: bool = True) -> Optional[Dict[str, Any]]:
    """Re-score the top ``cfg.topk`` of a finished search (:class:`~asearch.search.evolution.EvolutionSearch`)
    and rewrite its ``best.json`` as the best of them; returns that entry of ``reeval.json`` (``None`` when off)."""
    from tqdm.auto import tqdm

    from asearch.search.architecture import ValidationRecord, save_architecture

    if cfg.topk == 0:
        return None
    out_dir = Path(engine.out_dir)
    fit = reeval_fitness(fitness, cfg)
    protocol = fit.protocol_record()
    path = out_dir / REEVAL_FILE
    results = _load(path, protocol)
    done = {json.dumps(r["genome"]) for r in results}
    top = list(engine.state.topk)[:cfg.topk]
    todo = [(rank, rec) for rank, rec in enumerate(top, 1) if json.dumps(rec.genome.to_official()) not in done]
    bar = tqdm(total=len(top), initial=len(top) - len(todo), desc="re-evaluation", unit="cand",
               disable=not progress, dynamic_ncols=True)
    try:
        for rank, rec in todo:
            res = fit(rec.genome)
            results.append({"search_rank": rank, "genome": rec.genome.to_official(), "search_suc": rec.suc,
                            "suc": float(res["suc"]), "suc_std": float(res.get("suc_std", 0.0)),
                            "seconds": float(res["seconds"])})
            atomic_write_json(path, {"protocol": protocol, "config": to_dict(cfg), "results": results})
            bar.update(1)
    finally:
        bar.close()
    results.sort(key=lambda r: r["search_rank"])
    atomic_write_text(out_dir / "reeval.csv", _csv(results))
    best = reevaluation_pick(results)
    record = top[best["search_rank"] - 1]
    arch = engine.architecture(record)
    arch.reevaluation = ValidationRecord(suc=min(max(best["suc"], 0.0), 1.0), suc_std=best["suc_std"], **protocol)
    save_architecture(arch, out_dir / "best.json")
    return best
