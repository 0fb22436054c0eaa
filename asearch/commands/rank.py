"""`asearch rank`: the supernet ranking check (Kendall τ-b / Spearman ρ of the supernet's fitness against
stand-alone training of the same subnets); see :mod:`asearch.search.rank`.

Writes into ``--out``: ``pool.jsonl`` and ``subnets.json`` (the pick), ``standalone/subnet<i>/`` (each subnet's
training runs and ``<init>.json`` scores), ``rank.csv``, ``rank.json``, ``rank.png`` and ``rank_settings.json``
(for ``--resume``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from asearch.commands import add_config_args

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register `asearch rank`."""
    p = sub.add_parser("rank", help="check the supernet's ranking against stand-alone training (Kendall tau)",
                       description="Pick K subnets spanning the supernet's fitness range (M random candidates "
                                   "scored by the search fitness, or a search's candidates.csv), train each "
                                   "stand-alone from scratch and from its inherited weights (one Ray Tune trial "
                                   "per subnet), score them with the same protocol and report Kendall tau-b and "
                                   "Spearman rho with bootstrap 95% intervals. Resumable (--resume).")
    add_config_args(p, required=True)
    p.add_argument("--supernet", required=True, help="supernet checkpoint written by asearch pretrain")
    p.add_argument("--out", required=True, help="output folder of the rank run")
    p.add_argument("--resume", action="store_true", help="continue the rank run saved in --out")
    p.add_argument("--from-search", default=None, help="take the candidates from this search folder's "
                                                       "candidates.csv instead of scoring a random pool")
    p.add_argument("--address", default=None, help="join an existing Ray cluster (e.g. auto); default: start a "
                                                   "local Ray")
    p.add_argument("--local", action="store_true", help="train in this process, no Ray (ray.backend=local)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `asearch rank`."""
    from asearch.config import load_config
    from asearch.search.rank import RankConfig, RankRun, summary_lines
    from asearch.search.ray_search import resolve_resources

    overrides = list(args.overrides)
    if args.address:
        overrides.append(f"ray.address={args.address}")
    if args.local:
        overrides.append("ray.backend=local")
    cfg = load_config(RankConfig, args.config, overrides)
    cfg.ray = resolve_resources(cfg.ray)  # gpus_per_trial: auto -> a number; cores capped
    runner = RankRun(cfg, args.supernet, args.out, config_path=args.config, from_search=args.from_search,
                     progress=not args.no_progress)
    summary = runner.run(resume=args.resume)
    for line in summary_lines(summary, runner.inits()):
        print(line)
    print(f"asearch rank: outputs in {Path(args.out)} (rank.csv, rank.json, rank.png)")
    return 0
