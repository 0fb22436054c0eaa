"""Tune CTRTNL's switch threshold T_ars (``tracker.threshold``) on validation videos: one tracking run per value.

The paper gives T_ars no value (``experiments/ctrtnl/track.yaml`` carries a placeholder). The switch is closed loop
(a frame tracked globally re-centres the local search of the next frames), so each threshold is a fresh
``asearch track`` run of the trained checkpoint (same model, tracker building and runner as the command) into its
own folder ``OUT/T<value>/``. Each folder is then scored with the evaluation's :func:`~asearch.evaluation.metrics.ope`
(the dataset's default protocol; with ``--frames`` the ground truth is cut to the frames tracked) and the share of
frames that went global is read from the runner's ``<video>_info.json`` (frame 0, the initialisation, excluded).

Printed: a markdown table (threshold, SUC, P, P_norm in %, share of frames global, seconds of tracking summed from
the runner's ``<video>_time.json``), the best threshold by SUC (ties: the lower share of global frames, then the
lower threshold) and the line to put in ``track.yaml``; the table goes to ``OUT/ctrtnl_threshold.json`` too.

Resumable: a threshold whose folder already holds finished results for every video is not tracked again (not even
the checkpoint is loaded for it), and a partly tracked one resumes where it stopped (the runner skips finished
videos). Re-running with more thresholds tracks only the new ones. ``OUT/settings.json`` records the checkpoint,
config, dataset, split, ``--frames`` and ``--set`` overrides; a second run with other ones is refused (another
``--out``), so results of another model are never reused. ``--videos`` may grow: new videos are tracked.

Default grid: AdaRS's score (Eq. 19) lies in ``[-2, 2]`` and a frame stays local when its best score is strictly
above T_ars, so ``-2 ... 2`` in steps of 0.5 spans every behaviour from (almost) always local (-2) to always global
(2); values outside ``[-2, 2]`` only repeat those two ends.

Usage::

    python benchmarks/ctrtnl_threshold.py --checkpoint CKPT --config experiments/ctrtnl/track.yaml \
        --dataset synthetic --root DIR --split val --out tars_sweep [--videos 16] [--frames 50] \
        [--thresholds -1 -0.5 0 0.5 1] [--batch 8] [--set device=cpu]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

#: the default grid: Eq. 19's range [-2, 2] in steps of 0.5
DEFAULT_THRESHOLDS = tuple(float(x) for x in np.arange(-2.0, 2.0001, 0.5))
JSON_NAME = "ctrtnl_threshold.json"
SETTINGS_NAME = "settings.json"


def folder_name(threshold: float) -> str:
    """The results folder of one threshold, e.g. ``T-0.5``, ``T+0``, ``T+1.25``."""
    return f"T{threshold:+g}"


def video_names(sequences: Sequence[Any]) -> List[str]:
    """The sequences' names."""
    return [s.name for s in sequences]


def finished(folder: Path, sequences: Sequence[Any], frames: Optional[int]) -> bool:
    """True when every sequence has complete results (and its switch record) in ``folder``."""
    from asearch.evaluation.results import results_done
    from trackers.runner import tracked_frames

    return all(results_done(folder, s.name, tracked_frames(s, frames)) and (folder / f"{s.name}_info.json").is_file()
               for s in sequences)


def track(args: argparse.Namespace, threshold: float, folder: Path) -> None:
    """One ``asearch track`` run of the checkpoint at ``tracker.threshold = threshold`` into ``folder``."""
    from asearch.cli import main

    argv = ["track", "--checkpoint", str(args.checkpoint), "--dataset", args.dataset, "--split", args.split,
            "--out", str(folder), "--batch", str(args.batch), "--no-progress"]
    if args.config:
        argv += ["--config", str(args.config)]
    if args.root:
        argv += ["--root", str(args.root)]
    if args.videos:
        argv += ["--limit-videos", str(args.videos)]
    if args.frames:
        argv += ["--max-frames", str(args.frames)]
    for kv in list(args.overrides) + [f"tracker.threshold={threshold!r}"]:
        argv += ["--set", kv]
    rc = main(argv)
    if rc != 0:
        raise SystemExit(f"ctrtnl_threshold: asearch track failed (exit {rc}) at threshold {threshold:g}")


def score(folder: Path, sequences: Sequence[Any], frames: Optional[int], protocol: str) -> Dict[str, float]:
    """SUC / P / P_norm (fractions) of one folder by :func:`ope`, the share of tracked frames (frame 0 excluded)
    that went global, and the tracking seconds summed over the videos."""
    from asearch.evaluation.metrics import ope
    from asearch.evaluation.results import read_frame_info, read_results, read_speed
    from trackers.runner import tracked_frames

    names = video_names(sequences)
    preds = [read_results(folder, n) for n in names]
    cut = [tracked_frames(s, frames) for s in sequences]
    res = ope(preds, [np.asarray(s.boxes)[:k] for s, k in zip(sequences, cut)],
              visible=[None if s.visible is None else np.asarray(s.visible)[:k] for s, k in zip(sequences, cut)],
              protocol=protocol, names=names)
    total = n_global = 0
    seconds = 0.0
    for name in names:
        info = read_frame_info(folder, name)
        if info is None or "mode" not in info["keys"]:
            raise SystemExit(f"ctrtnl_threshold: {folder / (name + '_info.json')} has no switch record: is the "
                             "checkpoint a CTRTNL one?")
        modes = [row.get("mode") for row in info["frames"][1:]]
        total += len(modes)
        n_global += sum(m == "global" for m in modes)
        speed = read_speed(folder, name) or {}
        seconds += float(sum(speed.get("times") or []))
    return {"suc": res["suc"], "prec": res["prec"], "norm_prec": res["norm_prec"],
            "global_share": n_global / total if total else float("nan"), "global_frames": n_global,
            "frames": total, "seconds": seconds}


def check_settings(out: Path, settings: Dict[str, Any]) -> None:
    """Record what the sweep folder's results were tracked with (``OUT/settings.json``); a folder made with another
    checkpoint, config, dataset, split, frame count or overrides is an error (its results would be reused)."""
    from asearch.io import atomic_write_json

    path = out / SETTINGS_NAME
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in settings if old.get(k) != settings[k])
        if diff:
            raise SystemExit(f"ctrtnl_threshold: {out} holds a sweep with other {', '.join(diff)} "
                             f"({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); give another --out")
    else:
        atomic_write_json(path, settings)


def best_row(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The row of the highest SUC; ties (to 1e-9): the lower share of global frames, then the lower threshold."""
    return min(rows, key=lambda r: (-round(r["suc"], 9), r["global_share"], r["threshold"]))


def markdown(rows: Sequence[Dict[str, Any]]) -> str:
    """The sweep as a markdown table (scores in %)."""
    lines = ["| T_ars | SUC | P | P_norm | global frames | seconds | run |", "|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['threshold']:g} | {100 * r['suc']:.1f} | {100 * r['prec']:.1f} | "
                     f"{100 * r['norm_prec']:.1f} | {100 * r['global_share']:.1f} % ({r['global_frames']}/"
                     f"{r['frames']}) | {r['seconds']:.1f} | {r['run']} |")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="trained CTRTNL checkpoint")
    p.add_argument("--config", default=None, help="tracking YAML (e.g. experiments/ctrtnl/track.yaml)")
    p.add_argument("--dataset", required=True, help="dataset name (e.g. synthetic, lasot, tnl2k)")
    p.add_argument("--root", default=None, help="dataset root (default: $ASEARCH_<NAME>_ROOT)")
    p.add_argument("--split", default="val", help="split tuned on (default: val)")
    p.add_argument("--videos", type=int, default=None, help="only the first N videos of the split")
    p.add_argument("--frames", type=int, default=None, help="only the first N frames of each video")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(DEFAULT_THRESHOLDS),
                   help="T_ars values (default: -2 to 2 in steps of 0.5, Eq. 19's range)")
    p.add_argument("--out", default="ctrtnl_threshold", help="sweep folder: T<value>/ results and the JSON table")
    p.add_argument("--batch", type=int, default=1, help="videos tracked in lockstep (asearch track --batch)")
    p.add_argument("--protocol", default=None, help="evaluation protocol (default: the dataset's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override of the tracking YAML (asearch track --set), e.g. device=cpu; repeatable")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run the sweep; returns the JSON written (``rows``, ``best``, ``yaml``, settings)."""
    args = parse_args(argv)
    from asearch.data.registry import dataset_class
    from asearch.evaluation.metrics import default_protocol
    from asearch.evaluation.report import load_sequences

    if any(kv.split("=", 1)[0].strip() == "tracker.threshold" for kv in args.overrides):
        raise SystemExit("ctrtnl_threshold: give T_ars values with --thresholds, not --set tracker.threshold")
    thresholds = sorted({float(t) for t in args.thresholds})
    protocol = args.protocol or default_protocol(dataset_class(args.dataset).dataset_name)
    sequences = load_sequences(args.dataset, root=args.root, split=args.split)
    if args.videos:
        sequences = sequences[:int(args.videos)]
    if not sequences:
        raise SystemExit(f"ctrtnl_threshold: no videos in split '{args.split}' of {args.dataset}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"checkpoint": str(Path(args.checkpoint).resolve()), "config": args.config,
                "dataset": args.dataset, "root": str(Path(args.root).resolve()) if args.root else None,
                "split": args.split, "frames": args.frames, "overrides": list(args.overrides)}
    check_settings(out, settings)
    rows = []
    for thr in thresholds:
        folder = out / folder_name(thr)
        if finished(folder, sequences, args.frames):
            run = "reused"
        else:
            t0 = time.perf_counter()
            track(args, thr, folder)
            run = f"tracked ({time.perf_counter() - t0:.1f} s wall)"
        row = {"threshold": thr, "folder": folder.name, "run": run}
        row.update(score(folder, sequences, args.frames, protocol))
        rows.append(row)
        print(f"T_ars {thr:g}: SUC {100 * row['suc']:.1f}, global {100 * row['global_share']:.1f} % [{run}]",
              flush=True)
    best = best_row(rows)
    yaml_line = f"tracker:\n  threshold: {best['threshold']:g}"
    print(f"\n{args.dataset} {args.split}: {len(sequences)} videos"
          + (f", first {args.frames} frames" if args.frames else "") + f", protocol {protocol}; scores in %; "
          "global frames exclude frame 0; seconds = tracking time summed over the videos\n")
    print(markdown(rows))
    print(f"\nbest T_ars by SUC: {best['threshold']:g} (SUC {100 * best['suc']:.1f}, "
          f"{100 * best['global_share']:.1f} % of frames global)")
    print(f"in track.yaml:\n{yaml_line}")
    record = dict(settings, videos=video_names(sequences), protocol=protocol, rows=rows, best=best,
                  yaml=yaml_line)
    from asearch.io import atomic_write_json

    atomic_write_json(out / JSON_NAME, record)
    print(f"wrote {out / JSON_NAME}")
    return record


if __name__ == "__main__":
    main()
