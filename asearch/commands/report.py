"""`asearch report`: a markdown comparison report (table, plots, per-attribute scores)."""
from __future__ import annotations

import argparse

from asearch.commands.evaluate import add_dataset_args, run_evaluation


def run(args: argparse.Namespace) -> int:
    """Evaluate like ``asearch evaluate`` and write the markdown report with its plots beside it."""
    from asearch.evaluation.report import write_report

    table, results, sequences, protocol = run_evaluation(args)
    path = write_report(args.out, table, results, sequences, title=args.title,
                        meta={"dataset": args.dataset, "split": args.split, "protocol": protocol})
    print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    """Register `asearch report`."""
    p = sub.add_parser("report", help="markdown comparison report of results folders",
                       description="Evaluate results folders as `asearch evaluate` does and write a markdown "
                       "report (summary table, success/precision plots, per-attribute table).")
    add_dataset_args(p)
    p.add_argument("--out", default="report.md", help="report file (plots are written beside it)")
    p.add_argument("--title", default="Tracking evaluation", help="report title")
    p.set_defaults(func=run)
