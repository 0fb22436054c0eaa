"""Which fitness ranks subnets best? The supernet side of a finished ``asearch rank`` run, re-scored with each
fitness variant, against the same stand-alone results.

The supernet scores are cached in ``DIR/rank_fitness_scores.json``, so they can be computed while the rank run is
still training (the script then says so and stops) and the table printed once it has finished.

``asearch rank`` trains K subnets stand-alone (the expensive part) and scores them with one fitness. This script
takes such a run (``--rank DIR``: its ``subnets.json`` and ``standalone/``), scores the same K genomes on the
supernet with every combination of ``--modes`` (``ope``, ``open_loop``) and ``--repeats`` (e.g. 1 and 3) over the
rank config's ``fitness`` section, and prints for each: Kendall τ-b and Spearman ρ against the stand-alone SUC (from
scratch and inherited) with their bootstrap 95 % intervals (:func:`asearch.search.rank.rank_statistics`), and the
fitness's seconds per candidate. The table goes to ``DIR/rank_fitness.json`` too. ``--tag`` keeps another
variant's files apart (another ``--supernet``, e.g. a longer or fair pretraining, or ``--set fitness.bn.batches=32``),
scored against the same stand-alone results.

Usage (README "Is the search's ranking right?")::

    python benchmarks/rank_fitness.py --config experiments/demo/rank.yaml --rank rank_demo \
        --supernet DEMO_DIR/pretrain/checkpoints/latest.pt --root DEMO_DIR/data
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import List


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the rank YAML of the run")
    p.add_argument("--rank", required=True, help="a finished asearch rank folder")
    p.add_argument("--supernet", required=True)
    p.add_argument("--root", help="fitness.validation.root")
    p.add_argument("--modes", nargs="+", default=["ope", "open_loop"])
    p.add_argument("--repeats", type=int, nargs="+", default=[1, 3])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--tag", default="", help="names this variant's files (rank_fitness_scores.TAG.json, "
                   "rank_fitness.TAG.json): another supernet or --set against the same stand-alone results")
    args = p.parse_args(argv)

    import torch

    from asearch.config import load_config
    from asearch.search.fitness import TrackingFitness, clear_worker_cache
    from asearch.search.rank import RankConfig, rank_statistics

    if args.threads:
        torch.set_num_threads(args.threads)
    sets = list(args.overrides) + ([f"fitness.validation.root={args.root}"] if args.root else [])
    cfg = load_config(RankConfig, args.config, sets)
    folder = Path(args.rank)
    subnets = json.loads((folder / "subnets.json").read_text())["subnets"]
    suffix = f".{args.tag}" if args.tag else ""
    cache_path = folder / f"rank_fitness_scores{suffix}.json"  # supernet scores per variant: computed once
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    rows = []
    for mode in args.modes:
        for r in args.repeats:
            key = f"{mode}x{r}"
            if key not in cache:
                clear_worker_cache()
                fcfg = dataclasses.replace(cfg.fitness, mode=mode, repeats=r)
                fit = TrackingFitness(args.supernet, fcfg, device=cfg.device)
                scores = [fit(s["genome"]) for s in subnets]
                cache[key] = {"supernet_suc": [x["suc"] for x in scores],
                              "seconds": sum(x["seconds"] for x in scores) / len(scores),
                              "mean_std": sum(x["suc_std"] for x in scores) / len(scores)}
                cache_path.write_text(json.dumps(cache, indent=2) + "\n")
            rows.append({"mode": mode, "repeats": r, **cache[key]})
            print(f"# {mode} x {r}: done ({cache[key]['seconds']:.2f} s per candidate)", flush=True)
    inits = [i for i in ("scratch", "inherited") if all((folder / "standalone" / f"subnet{s['id']}" / f"{i}.json")
                                                         .is_file() for s in subnets)]
    if not inits:
        print(f"{folder}: the stand-alone results are not complete yet; the supernet scores are saved in "
              f"{cache_path}: run again when the rank run has finished")
        return 0
    truth = {i: [json.loads((folder / "standalone" / f"subnet{s['id']}" / f"{i}.json").read_text())["suc"]
                 for s in subnets] for i in inits}
    for row in rows:
        for i in inits:
            row[i] = rank_statistics(row["supernet_suc"], truth[i], cfg.bootstrap, cfg.seed)

    def cell(stat):
        v, ci = stat["value"], stat["ci95"]
        return "n/a" if v is None else f"{v:+.2f} [{ci['low']:+.2f}, {ci['high']:+.2f}]"

    print(f"\n# {len(subnets)} subnets of {folder}; stand-alone: {', '.join(inits)}; 95% bootstrap intervals")
    head = " | ".join(f"τ-b {i} | ρ {i}" for i in inits)
    print(f"| fitness | repeats | s / candidate | mean std over repeats | {head} |")
    print("|---|---:|---:|---:|" + "---:|" * (2 * len(inits)))
    for row in rows:
        cells = " | ".join(f"{cell(row[i]['kendall_tau_b'])} | {cell(row[i]['spearman_rho'])}" for i in inits)
        print(f"| {row['mode']} | {row['repeats']} | {row['seconds']:.2f} | {row['mean_std'] * 100:.2f} | {cells} |")
    (folder / f"rank_fitness{suffix}.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
