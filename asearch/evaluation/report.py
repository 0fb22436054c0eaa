"""Evaluate result folders against a dataset and write tables, plots, ``results.json`` and a markdown report.

The functions here are what ``asearch evaluate`` and ``asearch report`` run (and what the demo reuses):
:func:`evaluate_trackers` -> (summary table, per-tracker :func:`ope` dicts), :func:`write_evaluation` for the
files, :func:`render_report` / :func:`write_report` for markdown.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence as Seq, Tuple, Union

import numpy as np
import pandas as pd

from asearch.errors import ConfigError, DataError
from asearch.evaluation.attributes import attribute_table, derived_attribute_flags
from asearch.evaluation.extra_metrics import EXTRA_METRICS, extra_scores
from asearch.evaluation.metrics import ope
from asearch.evaluation.plots import plot_precision, plot_success
from asearch.evaluation.results import read_results, read_speed
from asearch.io import atomic_write_json, atomic_write_text

__all__ = [
    "load_sequences", "image_size", "tracker_names", "evaluate_trackers", "format_table", "markdown_table",
    "write_evaluation", "attribute_table_for", "render_report", "write_report", "add_derived_attributes",
    "write_switch_plots",
]

PathLike = Union[str, os.PathLike]


def load_sequences(dataset: str, root: Optional[str] = None, split: Optional[str] = None,
                   **options: object) -> List[object]:
    """The :class:`asearch.data.sequence.Sequence` records of ``dataset`` (via ``asearch.data.registry``);
    ``options`` go to the reader (e.g. ``flags_dir`` for LaSOT's attribute flags)."""
    try:
        from asearch.data.registry import build_dataset
    except ImportError as exc:  # the registry is part of the package; say so if it is broken
        raise ConfigError(f"cannot load dataset '{dataset}': asearch.data.registry is unavailable ({exc})") from exc
    kwargs = {k: v for k, v in (("root", root), ("split", split)) if v is not None}
    kwargs.update(options)
    ds = build_dataset(dataset, **kwargs)
    if hasattr(ds, "__len__") and hasattr(ds, "__getitem__"):
        return [ds[i] for i in range(len(ds))]
    return list(ds)


def image_size(sequence: object) -> Tuple[int, int]:
    """``(W, H)`` of a sequence: ``meta["image_size"]`` or GOT-10k's ``meta_info.ini`` ``resolution`` when the
    reader stored them, else read from frame 0."""
    meta = getattr(sequence, "meta", None) or {}
    if meta.get("image_size") is not None:
        w, h = meta["image_size"]
        return int(w), int(h)
    resolution = (meta.get("meta_info") or {}).get("resolution")
    if resolution:
        numbers = re.findall(r"\d+(?:\.\d+)?", str(resolution))
        if len(numbers) == 2:
            return int(float(numbers[0])), int(float(numbers[1]))
    frame = sequence.frame(0)
    return int(frame.shape[1]), int(frame.shape[0])


def tracker_names(results_dirs: Seq[PathLike], names: Optional[Seq[str]] = None) -> List[str]:
    """Display names: ``names`` when given (one per folder), else each folder's base name; duplicates are an error."""
    if names:
        if len(names) != len(results_dirs):
            raise ConfigError(f"--names gives {len(names)} names for {len(results_dirs)} results folders")
        out = [str(n) for n in names]
    else:
        out = [Path(os.path.abspath(os.fspath(d))).name for d in results_dirs]
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise ConfigError(f"several results folders are named {', '.join(dup)}; tell them apart with --names")
    return out


def _mean_fps(results_dir: PathLike, sequence_names: Seq[str]) -> float:
    """Mean over sequences of the per-sequence FPS records (NaN when there is none)."""
    values = []
    for name in sequence_names:
        speed = read_speed(results_dir, name)
        if speed and speed.get("fps") is not None:
            values.append(float(speed["fps"]))
    return float(np.mean(values)) if values else float("nan")


def evaluate_trackers(results_dirs: Seq[PathLike], sequences: Seq[object], protocol: str = "lasot",
                      names: Optional[Seq[str]] = None,
                      image_sizes: Optional[Seq[Tuple[int, int]]] = None, metrics: Seq[str] = (),
                      first_frame: str = "gt") -> Tuple[pd.DataFrame, Dict[str, Dict[str, object]]]:
    """Evaluate each results folder on ``sequences`` under ``protocol``.

    Args:
        results_dirs: folders holding ``<sequence>.txt`` files (one tracker each).
        sequences: :class:`~asearch.data.sequence.Sequence` records (``name``, ``boxes``, ``visible``).
        protocol: see :mod:`asearch.evaluation.metrics`.
        names: tracker display names (default: the folder base names).
        image_sizes: ``(W, H)`` per sequence for ``got10k``; read from the frames when omitted.
        metrics: extra metrics (:data:`~asearch.evaluation.extra_metrics.EXTRA_METRICS`: ``cauc``, ``macc``),
            added as columns ``cAUC`` / ``mACC`` and as ``cauc`` / ``macc`` in each :func:`ope` dict and its
            ``per_sequence`` (``complete_success_curve`` too for ``cauc``).
        first_frame: ``gt`` (default) or ``predicted``: frame 0 scored as the tracker's own box (the NL setting,
            :data:`~asearch.evaluation.metrics.FIRST_FRAME`).

    Returns:
        ``(table, results)``: a DataFrame indexed by tracker with ``SUC``, ``P``, ``P_norm`` in % (plus ``AO``,
        ``SR0.5``, ``SR0.75`` for got10k, the requested extra metrics, and ``FPS`` when speed files exist),
        best first; and tracker name ->
        :func:`ope` dict, in the same (best first) order.

    Raises:
        DataError: a sequence has no results file in a folder (the message names the sequence and the file).
    """
    if not sequences:
        raise DataError("no sequences to evaluate", field="sequences")
    labels = tracker_names(results_dirs, names)
    for seq in sequences:
        if (getattr(seq, "meta", None) or {}).get("first_frame_only"):
            raise DataError(f"sequence '{seq.name}' has ground truth for its first frame only (a test split scored "
                            "by the benchmark's server); evaluate a split with full annotations",
                            path=seq.meta.get("annotation_path"), field="groundtruth")
    if protocol == "got10k" and image_sizes is None:
        image_sizes = [image_size(s) for s in sequences]
    seq_names = [s.name for s in sequences]
    results: Dict[str, Dict[str, object]] = {}
    rows = []
    for label, rdir in zip(labels, results_dirs):
        preds = [read_results(rdir, n) for n in seq_names]
        for pred, seq in zip(preds, sequences):
            if len(pred) != len(seq.boxes):
                raise DataError(f"sequence '{seq.name}': {len(pred)} result rows for {len(seq.boxes)} frames",
                                path=Path(rdir) / f"{seq.name}.txt", field="results")
        res = ope(preds, [s.boxes for s in sequences], visible=[s.visible for s in sequences], protocol=protocol,
                  image_sizes=image_sizes, names=seq_names, first_frame=first_frame)
        results[label] = res
        row = {"tracker": label, "SUC": 100 * res["suc"], "P": 100 * res["prec"], "P_norm": 100 * res["norm_prec"]}
        if protocol == "got10k":
            row.update({"AO": 100 * res["ao"], "SR0.5": 100 * res["sr50"], "SR0.75": 100 * res["sr75"]})
        extra = extra_scores(list(metrics), preds, [s.boxes for s in sequences], [s.visible for s in sequences],
                             protocol=protocol, image_sizes=image_sizes, first_frame=first_frame)
        for key, value in extra.items():
            res[key] = value[key]
            res["per_sequence"][key] = value["per_sequence"]
            if key == "cauc":
                res["complete_success_curve"] = value["curve"]
            row[EXTRA_METRICS[key]] = 100 * value[key]
        row["FPS"] = _mean_fps(rdir, seq_names)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("tracker")
    if table["FPS"].isna().all():
        table = table.drop(columns="FPS")
    table = table.sort_values("AO" if protocol == "got10k" else "SUC", ascending=False, kind="stable")
    return table, {name: results[name] for name in table.index}


def format_table(table: pd.DataFrame) -> str:
    """Plain-text table with one decimal (as printed by ``asearch evaluate``)."""
    return table.to_string(float_format=lambda v: f"{v:.1f}")


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (index as the first column, floats with one decimal)."""
    def cell(v: object) -> str:
        if isinstance(v, (float, np.floating)):
            return "-" if math.isnan(float(v)) else f"{float(v):.1f}"
        return str(v)

    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * len(table.columns)) + " |"]
    for idx, *values in table.itertuples(index=True, name=None):  # keeps each column's dtype (ints stay ints)
        lines.append("| " + " | ".join([str(idx)] + [cell(v) for v in values]) + " |")
    return "\n".join(lines) + "\n"


def _jsonable(x: object) -> object:
    """Numpy arrays/scalars to lists/floats, NaN/inf to None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    return x


def _results_record(res: Mapping[str, object]) -> Dict[str, object]:
    """The JSON-friendly part of an :func:`ope` dict (curves and per-sequence scores, no per-frame IoUs)."""
    per = {k: v for k, v in dict(res["per_sequence"]).items() if k != "iou"}
    keep = {k: v for k, v in res.items() if k != "per_sequence"}
    keep["per_sequence"] = per
    return _jsonable(keep)


def write_switch_plots(out_dir: PathLike, results_dirs: Seq[PathLike], sequences: Seq[object],
                       names: Optional[Seq[str]] = None) -> List[Path]:
    """For every results folder and sequence whose ``<sequence>_info.json`` records switch decisions (``mode``:
    CTRTNL's local / global search), ``out_dir/switch/<tracker>/<sequence>.png``
    (:func:`asearch.evaluation.plots.plot_switch`); returns the files written (none for other trackers)."""
    from asearch.evaluation.plots import plot_switch
    from asearch.evaluation.results import read_frame_info

    written: List[Path] = []
    for label, rdir in zip(tracker_names(results_dirs, names), results_dirs):
        for seq in sequences:
            info = read_frame_info(rdir, seq.name)
            frames = (info or {}).get("frames") or []
            if frames and "mode" in frames[0]:
                written.append(plot_switch(info, Path(out_dir) / "switch" / label / f"{seq.name}.png",
                                           title=f"{label}: {seq.name}"))
    return written


def write_evaluation(out_dir: PathLike, table: pd.DataFrame, results: Mapping[str, Mapping[str, object]],
                     sequences: Seq[object], meta: Optional[Mapping[str, object]] = None
                     ) -> Dict[str, Path]:
    """Write ``summary.csv``, ``success_plot.png``, ``precision_plot.png``, ``results.json`` and, when sequences
    carry ``attribute_flags``, ``attributes.csv`` into ``out_dir``; returns name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: Dict[str, Path] = {}
    paths["summary"] = atomic_write_text(out / "summary.csv", table.to_csv(float_format="%.4f"))
    paths["success_plot"] = plot_success(results, out / "success_plot.png")
    paths["precision_plot"] = plot_precision(results, out / "precision_plot.png")
    attrs = attribute_table_for(results, sequences)
    if attrs is not None:
        paths["attributes"] = atomic_write_text(out / "attributes.csv", attrs.to_csv(float_format="%.4f"))
    payload = {"meta": dict(meta or {}), "sequences": [s.name for s in sequences],
               "summary": _jsonable(table.reset_index().to_dict(orient="records")),
               "trackers": {name: _results_record(res) for name, res in results.items()}}
    paths["results"] = atomic_write_json(out / "results.json", payload)
    return paths


def attribute_table_for(results: Mapping[str, Mapping[str, object]],
                        sequences: Seq[object]) -> Optional[pd.DataFrame]:
    """Per-attribute SUC table (AO for got10k) when any sequence has ``attribute_flags``, else None."""
    flags = [getattr(s, "attribute_flags", None) for s in sequences]
    if not any(flags):
        return None
    first = next(iter(results.values()), {})
    metric = "ao" if first.get("protocol") == "got10k" else "suc"
    return attribute_table(results, flags, metric=metric)


def render_report(table: pd.DataFrame, results: Mapping[str, Mapping[str, object]], sequences: Seq[object],
                  plots: Mapping[str, str], title: str = "Tracking evaluation",
                  meta: Optional[Mapping[str, object]] = None) -> str:
    """Markdown text: the summary table, the plots (links relative to the report) and the attribute table."""
    meta = dict(meta or {})
    protocol = next(iter(results.values()))["protocol"] if results else meta.get("protocol", "")
    lines = [f"# {title}", ""]
    facts = [f"{k}: `{v}`" for k, v in meta.items() if v is not None]
    facts.append(f"sequences: {len(sequences)}")
    lines += [", ".join(facts), "",
              f"Scores in % under the `{protocol}` protocol (SUC: area under the success curve; P: precision; "
              "P_norm: normalized precision).", "", markdown_table(table)]
    for key, caption in (("success_plot", "Success plot"), ("precision_plot", "Precision plot")):
        if key in plots:
            lines += [f"![{caption}]({plots[key]})", ""]
    attrs = attribute_table_for(results, sequences)
    if attrs is not None and len(attrs):
        lines += ["## Per-attribute scores", "",
                  f"{'AO' if protocol == 'got10k' else 'SUC'} (%) over the sequences with each attribute; "
                  "`n` = number of sequences.", "", markdown_table(attrs)]
    return "\n".join(lines).rstrip() + "\n"


def write_report(path: PathLike, table: pd.DataFrame, results: Mapping[str, Mapping[str, object]],
                 sequences: Seq[object], title: str = "Tracking evaluation",
                 meta: Optional[Mapping[str, object]] = None) -> Path:
    """Write the markdown report to ``path`` with its plots beside it (``success_plot.png``,
    ``precision_plot.png``); returns the report path."""
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    plot_success(results, folder / "success_plot.png")
    plot_precision(results, folder / "precision_plot.png")
    text = render_report(table, results, sequences,
                         {"success_plot": "success_plot.png", "precision_plot": "precision_plot.png"},
                         title=title, meta=meta)
    return atomic_write_text(path, text)


def add_derived_attributes(sequences: Seq[object], names: Seq[str], fps: float = 30.0,
                           speed_threshold: Optional[float] = None) -> Dict[str, List[float]]:
    """Add the ground-truth-derived flags ``names`` (``small_object``, ``relative_speed``; see
    :func:`~asearch.evaluation.attributes.derived_attribute_flags`) to each sequence's ``attribute_flags``, so
    that the per-attribute tables break results down by them; returns the per-video values behind the flags."""
    if not names:
        return {}
    sizes = [image_size(s) for s in sequences] if "small_object" in names else None
    flags, values = derived_attribute_flags(sequences, names, image_sizes=sizes, fps=fps,
                                            speed_threshold=speed_threshold)
    for seq, extra in zip(sequences, flags):
        seq.attribute_flags = {**(getattr(seq, "attribute_flags", None) or {}), **extra}
    return values
