"""`asearch search`: evolutionary architecture search of a pretrained supernet (paper 000 Eq. 6) on Ray.

Reads a :class:`~asearch.search.evolution.SearchConfig` YAML (``seed``, ``device``, ``evolution``, ``fitness``,
``ray``), scores candidates by validation SUC after BN recalibration and writes into ``--out``:
``candidates.csv``, ``topk_gen{g}.json``, ``search_progress.png``, ``best.json`` (architecture JSON),
``search_state.json`` + ``scored.jsonl`` (for ``--resume``) and ``search_config.yaml`` (the config used). With
``final.reeval.topk > 0`` the top-k are then re-scored on a larger validation set (``reeval.json``, ``reeval.csv``)
and ``best.json`` becomes the best of that re-evaluation (:mod:`asearch.search.reeval`). A validation set that the
supernet was trained on (its checkpoint's ``data`` section) gets a warning (:mod:`asearch.search.overlap`).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from asearch.commands import add_config_args

__all__ = ["add_parser", "run", "space_from_checkpoint", "build_search"]


def add_parser(sub) -> None:
    """Register `asearch search`."""
    p = sub.add_parser("search", help="evolutionary search of a pretrained supernet (Ray)",
                       description="Evolutionary (SPOS) or random search over the supernet's paths; each candidate "
                                   "is scored by SUC on a fixed validation set after BN recalibration, in parallel "
                                   "on Ray. State is saved after every generation (--resume continues).")
    add_config_args(p)
    p.add_argument("--supernet", required=True, help="supernet checkpoint written by asearch pretrain")
    p.add_argument("--out", required=True, help="output folder of the search")
    p.add_argument("--resume", action="store_true", help="continue the search saved in --out")
    p.add_argument("--address", default=None, help="join an existing Ray cluster (e.g. auto, ray://host:10001); "
                                                   "default: start a local Ray")
    p.add_argument("--mode", choices=["evolution", "random"], default=None,
                   help="evolution (default) or the random-search baseline with the same budget")
    p.add_argument("--workers", type=int, default=None, help="trials in flight at once (ray.workers)")
    p.add_argument("--local", action="store_true", help="score in this process, no Ray (ray.backend=local)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def space_from_checkpoint(path: Any) -> Any:
    """The search space of a supernet checkpoint (:func:`asearch.training.recipes.space_from_checkpoint`)."""
    from asearch.training.recipes import space_from_checkpoint as find

    return find(path)


def build_search(cfg: Any, supernet: Any, out: Any, progress: bool = True):
    """``(engine, fitness)`` of a :class:`SearchConfig` for a supernet checkpoint (nothing started yet).

    Warns (:class:`~asearch.errors.DataWarning` and the log) when the validation videos, or those of the final
    re-evaluation, are in the supernet's recorded training data (:mod:`asearch.search.overlap`)."""
    from asearch.config import to_dict
    from asearch.search.architecture import sha256_file
    from asearch.search.evolution import EvolutionSearch
    from asearch.search.fitness import TrackingFitness
    from asearch.search.overlap import check_validation_overlap
    from trackers.models.ost_cost import model_cost_function

    fitness = TrackingFitness(supernet, cfg.fitness, device=cfg.device)
    check_validation_overlap(supernet, cfg.fitness.validation,
                             *([cfg.final.reeval.validation] if cfg.final.reeval.topk > 0 else []))
    space = space_from_checkpoint(supernet)
    sha = sha256_file(supernet)
    snapshot = {"seed": cfg.seed, "evolution": to_dict(cfg.evolution), "fitness": to_dict(cfg.fitness),
                "supernet_sha256": sha, "space": space.to_dict()}
    if cfg.final.reeval.topk > 0:  # searches without a re-evaluation keep the snapshot of before
        snapshot["final"] = to_dict(cfg.final)
    engine = EvolutionSearch(space, cfg.evolution, out, seed=cfg.seed, validation=fitness.protocol_record(),
                             supernet_sha256=sha, snapshot=snapshot, progress=progress,
                             model_cost=model_cost_function(supernet) if getattr(space, "variant", "") == "ost" else None)
    return engine, fitness


def run(args: argparse.Namespace) -> int:
    """Entry point of `asearch search`."""
    from asearch.config import load_config, to_dict
    from asearch.io import atomic_write_text
    from asearch.search.evolution import SearchConfig, run_local
    from asearch.search.ray_search import resolve_resources, run_tune

    overrides = list(args.overrides)
    if args.mode:
        overrides.append(f"evolution.mode={args.mode}")
    if args.address:
        overrides.append(f"ray.address={args.address}")
    if args.workers:
        overrides.append(f"ray.workers={args.workers}")
    if args.local:
        overrides.append("ray.backend=local")
    cfg = load_config(SearchConfig, args.config, overrides)
    cfg.ray = resolve_resources(cfg.ray)  # gpus_per_trial: auto -> a number; cores capped (written as run)
    out = Path(args.out)
    engine, fitness = build_search(cfg, args.supernet, out, progress=not args.no_progress)
    engine.start(resume=args.resume)
    atomic_write_text(out / "search_config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    if engine.done:
        print(f"asearch search: the search in {out} is already complete")
    elif cfg.ray.backend == "local":
        run_local(engine, fitness)
    else:
        run_tune(engine, fitness, cfg.ray)
    best = engine.best()
    n = len(engine.state.records)
    print(f"asearch search: {n} candidates scored ({cfg.evolution.mode}); best SUC {best.suc:.4f} "
          f"(generation {best.generation}) {best.genome.to_json()}")
    outputs = "candidates.csv, topk_gen*.json, search_progress.png, best.json"
    if cfg.final.reeval.topk > 0:
        from asearch.search.reeval import reevaluate

        again = reevaluate(engine, fitness, cfg.final.reeval, progress=not args.no_progress)
        print(f"asearch search: re-evaluated the top {cfg.final.reeval.topk}: best SUC {again['suc']:.4f} "
              f"(std {again['suc_std']:.4f} over {cfg.final.reeval.repeats} repeats; search rank "
              f"{again['search_rank']}, search SUC {again['search_suc']:.4f}) -> best.json")
        outputs += ", reeval.json, reeval.csv"
    print(f"asearch search: outputs in {out} ({outputs})")
    return 0
