"""`asearch evaluate`: OPE evaluation of results folders on a benchmark (tables, plots, results.json)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Tuple

from asearch.errors import ConfigError
from asearch.evaluation.attributes import DERIVED_ATTRIBUTES
from asearch.evaluation.extra_metrics import EXTRA_METRICS
from asearch.evaluation.metrics import FIRST_FRAME, PROTOCOLS


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by ``evaluate`` and ``report``: results folders, dataset, protocol, names."""
    p.add_argument("--results", nargs="+", required=True, metavar="DIR",
                   help="results folders, one per tracker, holding <sequence>.txt files")
    p.add_argument("--dataset", required=True, help="dataset name (lasot, lasot_ext, tnl2k, otb99_lang, got10k, "
                   "trackingnet, webuav3m, vl_sot500, synthetic)")
    p.add_argument("--root", default=None, help="dataset root (default: from the dataset's environment variable)")
    p.add_argument("--split", default=None, help="dataset split (default: the dataset's test split)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=None,
                   help="evaluation protocol (default per dataset: lasot for LaSOT/LaSOT_ext/TNL2K/synthetic, "
                   "otb for OTB99-Lang, got10k, trackingnet)")
    p.add_argument("--names", nargs="+", default=None, metavar="NAME",
                   help="tracker names, one per results folder (default: folder names)")
    p.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset reader option, e.g. --option flags_dir=LaSOT/annos/att (attribute flags of LaSOT, "
                   "or of TNL2K: its toolkit's annos/att); repeatable")
    p.add_argument("--metrics", nargs="+", choices=list(EXTRA_METRICS), default=[], metavar="METRIC",
                   help="extra metrics beside SUC / P / P_norm: cauc (complete success rate, WebUAV-3M), "
                   "macc (mean accuracy, Anti-UAV)")
    p.add_argument("--derived-attributes", nargs="+", choices=list(DERIVED_ATTRIBUTES), default=[],
                   metavar="ATTR", help="per-video attributes computed from the ground truth (COST §3) for the "
                   "per-attribute table: small_object (average relative size < 1 %% and absolute size < 22 px), "
                   "relative_speed (flag high_relative_speed: average relative speed, Eq. 1, above "
                   "--speed-threshold)")
    p.add_argument("--first-frame", choices=FIRST_FRAME, default="gt", dest="first_frame",
                   help="how frame 0 is scored: gt (default: set to the ground truth, or excluded by got10k) or "
                   "predicted (the NL setting, asearch track --init language: the tracker's first box counts as "
                   "any frame)")
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate giving the timestamps of the relative speed (default 30)")
    p.add_argument("--speed-threshold", type=float, default=None,
                   help="relative speed (per second) above which a video is high_relative_speed (default: the "
                   "median over the evaluated videos)")


def _options(items: List[str]) -> Dict[str, str]:
    """``KEY=VALUE`` strings to a dict; a malformed item is a ConfigError."""
    out: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option expects KEY=VALUE, got '{item}'")
        out[key.strip()] = value
    return out


def _canonical_name(dataset: str) -> str:
    """The registry's name for ``dataset`` (aliases such as ``LaSOT-ext`` or ``otb99`` resolved)."""
    try:
        from asearch.data.registry import dataset_class
        return dataset_class(dataset).dataset_name
    except (ImportError, ConfigError):
        return dataset


def run_evaluation(args: argparse.Namespace) -> Tuple[object, dict, List[object], str]:
    """Load the dataset and evaluate every results folder: (table, results, sequences, protocol)."""
    from asearch.evaluation.metrics import default_protocol
    from asearch.evaluation.report import add_derived_attributes, evaluate_trackers, load_sequences

    protocol = args.protocol or default_protocol(_canonical_name(args.dataset))
    sequences = load_sequences(args.dataset, root=args.root, split=args.split, **_options(args.options))
    add_derived_attributes(sequences, args.derived_attributes, fps=args.fps, speed_threshold=args.speed_threshold)
    table, results = evaluate_trackers(args.results, sequences, protocol=protocol, names=args.names,
                                       metrics=args.metrics, first_frame=getattr(args, "first_frame", "gt"))
    return table, results, sequences, protocol


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the summary (and per-attribute) tables, write plots, CSVs and results.json."""
    from asearch.evaluation.report import attribute_table_for, format_table, write_evaluation, write_switch_plots

    table, results, sequences, protocol = run_evaluation(args)
    print(f"{args.dataset} ({len(sequences)} sequences, protocol {protocol}); scores in %")
    print(format_table(table))
    attrs = attribute_table_for(results, sequences)
    if attrs is not None and len(attrs):
        print("\nper attribute (" + ("AO" if protocol == "got10k" else "SUC") + " %):")
        print(format_table(attrs))
    out = args.out or f"evaluation_{args.dataset}"
    paths = write_evaluation(out, table, results, sequences,
                             meta={"dataset": args.dataset, "split": args.split, "protocol": protocol,
                                   "first_frame": getattr(args, "first_frame", "gt")})
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    switch = write_switch_plots(out, args.results, sequences, args.names)
    if switch:
        print(f"wrote {len(switch)} switch plots (local / global decisions per frame) in {Path(out) / 'switch'}")
    return 0


def add_parser(sub) -> None:
    """Register `asearch evaluate`."""
    p = sub.add_parser("evaluate", help="OPE evaluation of results folders (SUC, P, P_norm, cAUC, mACC, plots)",
                       description="Evaluate tracking results (<sequence>.txt files) against a dataset's ground "
                       "truth: prints SUC / P / P_norm per tracker, writes success/precision plots, summary.csv, "
                       "attributes.csv (when the dataset has attribute flags), results.json and, for a local / global "
                       "tracker (CTRTNL) whose results folder holds <sequence>_info.json, switch/<tracker>/"
                       "<sequence>.png.")
    add_dataset_args(p)
    p.add_argument("--out", default=None, help="output folder (default: evaluation_<dataset>)")
    p.set_defaults(func=run)
