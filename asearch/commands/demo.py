"""`asearch demo`: the whole pipeline (synthetic data, supernet pretraining, evolutionary and random search, export,
retraining, the vision-only baseline, tracking, evaluation) small, with ``report.md`` and ``summary.json``."""
from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    """Register `asearch demo`."""
    p = sub.add_parser(
        "demo", help="run the whole ASearch pipeline small, on the synthetic benchmark, with a report",
        description="Generate the synthetic VL benchmark, pretrain a tiny VLT_SCAR supernet, search it (evolution on "
                    "Ray, plus the random baseline with the same budget), export the best architecture, retrain it, "
                    "train the vision-only SiamCAR baseline, track the test split with both and with the untrained "
                    "architecture, and write DIR/report.md and DIR/summary.json. Re-running with the same --out skips "
                    "finished stages and resumes an interrupted one.")
    p.add_argument("--out", required=True, help="demo folder (created; an earlier demo there is resumed)")
    p.add_argument("--fast", action="store_true",
                   help="the small variant (experiments/demo/fast.yaml: a few minutes on 2 CPU cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of the benchmark and every stage (default 0)")
    p.add_argument("--config", help="demo YAML instead of experiments/demo/demo.yaml (or fast.yaml with --fast)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the demo YAML, e.g. --set synthetic.videos=30 or "
                        "--set 'overrides.pretrain=[train.steps=100]' (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `asearch demo`."""
    from asearch.demo import run_demo

    summary = run_demo(args.out, fast=args.fast, seed=args.seed, config=args.config, overrides=args.overrides,
                       progress=not args.no_progress)
    keys = ("suc_vl", "suc_vision_only", "suc_untrained", "suc_search_best", "suc_random_best")
    printed = {k: round(summary[k], 4) for k in keys}
    printed["skipped_now"] = summary["skipped_now"]  # the stages a resumed run did not run again
    print(json.dumps(printed))
    print(f"asearch demo: report in {args.out}/report.md, numbers in {args.out}/summary.json "
          f"({summary['seconds']['total']:.0f} s of stages)")
    return 0
