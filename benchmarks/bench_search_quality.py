"""Evolution vs random search at the same budget, over several seeds, as NAS papers should report it (Lindauer &
Hutter 2020, "Best Practices for Scientific Research on Neural Architecture Search": same budget, several seeds,
the spread, the final model's quality rather than the search's own score).

For each seed ``s`` of ``--seeds`` and each mode (``evolution``, ``random``) one search of the ``--config`` search
YAML runs on the ``--supernet`` with ``seed = s`` (so both modes of a seed start from the same first generation),
then its top ``--reeval-topk`` are re-evaluated (``final.reeval`` of the config, or ``--reeval-videos`` /
``--reeval-frames`` / ``--reeval-repeats`` over it): the winner's curse of a noisy fitness is paid by both modes
alike. With ``--standalone RECIPE`` the chosen genome of every run is trained stand-alone with that retraining
recipe (:func:`asearch.search.rank.train_subnet`, from scratch, the same steps and seed for all) and tracked closed
loop on the re-evaluation videos. Printed: per mode the mean and standard deviation over seeds of the best search
SUC, its re-evaluated SUC and (``--standalone``) its stand-alone SUC, and every run's numbers; the table is also
written to ``OUT/search_quality.json``. Runs are resumable (``OUT/seed<s>_<mode>/``: ``asearch search --resume``).

Usage (the demo's supernet and search; README "Evolution vs random")::

    python benchmarks/bench_search_quality.py --config experiments/demo/search.yaml \
        --supernet DEMO_DIR/pretrain/checkpoints/latest.pt --root DEMO_DIR/data --out sq \
        --seeds 0 1 2 --standalone DEMO_DIR/configs/retrain.yaml
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List


def _args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="search YAML (e.g. experiments/demo/search.yaml)")
    p.add_argument("--supernet", required=True, help="supernet checkpoint of asearch pretrain")
    p.add_argument("--root", help="dataset root of the validation videos (fitness.validation.root)")
    p.add_argument("--out", required=True, help="folder of the runs and search_quality.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--reeval-topk", type=int, default=3)
    p.add_argument("--reeval-split", default=None, help="split of the re-evaluation videos (default: the fitness's)")
    p.add_argument("--reeval-videos", type=int, default=None)
    p.add_argument("--reeval-frames", type=int, default=None)
    p.add_argument("--reeval-repeats", type=int, default=3)
    p.add_argument("--standalone", metavar="RECIPE", help="also train each run's genome stand-alone with this "
                                                          "retraining YAML")
    p.add_argument("--local", action="store_true", help="score in-process (ray.backend=local)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a search config key (repeatable)")
    return p.parse_args(argv)


def _search(args: argparse.Namespace, seed: int, mode: str) -> Dict[str, Any]:
    from asearch.commands.search import build_search
    from asearch.config import load_config
    from asearch.search.evolution import SearchConfig, run_local
    from asearch.search.ray_search import run_tune
    from asearch.search.reeval import reevaluate
    from asearch.search.state import load_state

    sets = list(args.overrides) + [f"seed={seed}", f"evolution.mode={mode}",
                                   f"final.reeval.topk={args.reeval_topk}",
                                   f"final.reeval.repeats={args.reeval_repeats}"]
    if args.local:
        sets.append("ray.backend=local")
    if args.root:
        sets.append(f"fitness.validation.root={args.root}")
    cfg = load_config(SearchConfig, args.config, sets)
    reeval = dict(json.loads(json.dumps(_plain(cfg.fitness.validation))))  # the fitness's videos, then the options
    for key, value in (("split", args.reeval_split), ("videos", args.reeval_videos), ("frames", args.reeval_frames)):
        if value is not None:
            reeval[key] = value
    cfg = load_config(SearchConfig, args.config, sets + [f"final.reeval.validation={json.dumps(reeval)}"])
    out = Path(args.out) / f"seed{seed}_{mode}"
    engine, fitness = build_search(cfg, args.supernet, out, progress=False)
    engine.start(resume=load_state(out) is not None)
    if not engine.done:
        (run_local(engine, fitness) if cfg.ray.backend == "local" else run_tune(engine, fitness, cfg.ray))
    again = reevaluate(engine, fitness, cfg.final.reeval, progress=False)
    best = engine.best()
    return {"seed": seed, "mode": mode, "search_best": best.suc, "chosen": again["genome"],
            "chosen_search_suc": again["search_suc"], "reeval": again["suc"], "reeval_std": again["suc_std"],
            "validation": reeval, "candidates": len(engine.state.records)}


def _plain(cfg: Any) -> Dict[str, Any]:
    from asearch.config import to_dict

    return to_dict(cfg)


def _standalone(args: argparse.Namespace, run: Dict[str, Any]) -> float:
    import hashlib

    from asearch.search.rank import train_subnet

    key = hashlib.sha256(json.dumps(run["chosen"]).encode()).hexdigest()[:12]
    task = {"id": key, "genome": run["chosen"], "dir": str((Path(args.out) / "standalone" / key).resolve()),
            "supernet": str(Path(args.supernet).resolve()), "recipe": str(Path(args.standalone).resolve()),
            "overrides": {}, "model_from_supernet": True, "inits": ["scratch"], "validation": run["validation"],
            "mode": "ope", "device": None, "threads": None}
    return float(train_subnet(task)["scratch"]["suc"])


def _spread(values: List[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values) * 100
    sd = statistics.stdev(values) * 100 if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {sd:.1f}"


def main(argv: List[str]) -> int:
    args = _args(argv)
    runs = []
    for seed in args.seeds:
        for mode in ("evolution", "random"):
            run = _search(args, seed, mode)
            if args.standalone:
                run["standalone"] = _standalone(args, run)
            runs.append(run)
            print(f"# seed {seed} {mode}: search best {run['search_best'] * 100:.1f}, chosen re-evaluated "
                  f"{run['reeval'] * 100:.1f} (std {run['reeval_std'] * 100:.1f})"
                  + (f", stand-alone {run['standalone'] * 100:.1f}" if "standalone" in run else ""), flush=True)
    print(f"\n# evolution vs random, {len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}), "
          f"{runs[0]['candidates']} candidates per search; SUC % mean ± sd over seeds")
    print("| mode | search best | re-evaluated best | stand-alone |")
    print("|---|---:|---:|---:|")
    for mode in ("evolution", "random"):
        mine = [r for r in runs if r["mode"] == mode]
        print(f"| {mode} | {_spread([r['search_best'] for r in mine])} | {_spread([r['reeval'] for r in mine])} | "
              f"{_spread([r['standalone'] for r in mine if 'standalone' in r])} |")
    diffs = [e["reeval"] - r["reeval"] for e, r in zip(runs[0::2], runs[1::2])]
    print(f"\nevolution - random, re-evaluated, per seed: {', '.join(f'{d * 100:+.1f}' for d in diffs)}")
    if args.standalone:
        sd = [e["standalone"] - r["standalone"] for e, r in zip(runs[0::2], runs[1::2])]
        print(f"evolution - random, stand-alone, per seed: {', '.join(f'{d * 100:+.1f}' for d in sd)}")
    out = Path(args.out) / "search_quality.json"
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"runs: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
