"""The demo's report (``report.md``) and its search plots: what :mod:`asearch.demo` writes from the outputs of its
stages (kept apart so that the pipeline stays one readable file)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from asearch.errors import ASearchError

__all__ = ["TRACKERS", "search_records", "plot_search_comparison", "compared_search_scores", "render_demo_report"]

PathLike = Union[str, Path]

#: results folder name -> (display name, what it is)
TRACKERS: Dict[str, Tuple[str, str]] = {
    "vlt_scar": ("VLT_SCAR", "searched subnet, retrained from the weights it inherits from the supernet (subnet, "
                 "neck, head), with language"),
    "siamcar": ("SiamCAR", "vision-only baseline (ResNet-50), same training steps, batch and data"),
    "vlt_scar_untrained": ("VLT_SCAR untrained", "searched architecture with freshly initialised weights"),
    "vlt_scar_no_language": ("VLT_SCAR, no language", "the retrained VLT_SCAR tracked with zero language vectors "
                             "(`language.enabled=false`, the `zero` strategy of paper 000 Table 7): what the "
                             "language contributes"),
}


def search_records(csv_path: PathLike) -> List[Dict[str, Any]]:
    """Rows of a search's ``candidates.csv`` with ``generation``, ``suc``, ``flops`` and ``params`` parsed."""
    rows = []
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append({"generation": int(row["generation"]), "suc": float(row["suc"]),
                         "flops": float(row["flops"]) if row.get("flops") else None,
                         "params": float(row["params"]) if row.get("params") else None,
                         "genome": row.get("genome"), "origin": row.get("origin")})
    if not rows:
        raise ASearchError(f"{csv_path}: no scored candidates")
    return rows


def _best_so_far(rows: Sequence[Mapping[str, Any]]) -> Tuple[List[int], List[float]]:
    gens = sorted({r["generation"] for r in rows})
    best, out = -math.inf, []
    for g in gens:
        best = max(best, max(r["suc"] for r in rows if r["generation"] == g))
        out.append(best)
    return gens, out


def plot_search_comparison(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: PathLike) -> Path:
    """Two panels: best validation SUC so far per generation, and SUC vs FLOPs of every scored candidate, one
    colour per search (``runs``: label -> :func:`search_records` rows)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.2), dpi=100)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, (label, rows) in enumerate(runs.items()):
        color = f"C{i}"
        gens, best = _best_so_far(rows)
        ax1.plot(gens, best, "-o", color=color, label=f"{label} (best {best[-1]:.3f})")
        means = [sum(r["suc"] for r in rows if r["generation"] == g) / sum(1 for r in rows if r["generation"] == g)
                 for g in gens]
        ax1.plot(gens, means, ":", color=color, label=f"{label}: generation mean")
        pts = [r for r in rows if r["flops"] is not None]
        ax2.scatter([r["flops"] / 1e6 for r in pts], [r["suc"] for r in pts], s=16, color=color, alpha=0.7,
                    label=label)
    ax1.set_xlabel("generation")
    ax1.set_ylabel("validation SUC")
    ax1.set_title("Search progress")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="lower right")
    ax2.set_xlabel("MFLOPs (multiply-accumulates)")
    ax2.set_ylabel("validation SUC")
    ax2.set_title("SUC vs FLOPs")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path))
    return path


# ----------------------------------------------------------------------------------------------------------------
# the pipeline


def _search_table(summary: Mapping[str, Any], outputs: Mapping[str, Any]) -> List[str]:
    """The report's table of the two searches: candidates, best search score and, with ``final.reeval``, the
    re-evaluated score of the pick (mean ± std over the BN repeats: the fitness's noise)."""
    re = summary.get("reeval")
    head = "| search | candidates | generations | best validation SUC (%) |"
    rule = "| --- | ---: | ---: | ---: |"
    if re:
        r = re["search"]
        head += f" re-evaluated pick of the top {r['topk']} (%, mean ± std over {r['repeats']} BN repeats) |"
        rule += " ---: |"
    lines = [head + " scored |", rule + " --- |"]
    for label, key, best in (("evolution", "search", "suc_search_best"), ("random", "search_random",
                                                                          "suc_random_best")):
        o = outputs[key]
        row = f"| {label} | {o['candidates']} | {o['generations']} | {_pct(summary[best])} |"
        if re:
            r = re[key]
            row += (f" {_pct(r['suc'])} ± {100 * r['suc_std']:.1f} (search rank {r['search_rank']}, "
                    f"{_pct(r['search_suc'])}) |")
        lines.append(row + f" {o.get('backend', '')} |")
    return lines


def compared_search_scores(reeval: Optional[Mapping[str, Any]], search_best: float, random_best: float
                           ) -> Tuple[float, float]:
    """The SUC of evolution's and random search's picks that the demo's verdict compares: their re-evaluated scores
    when both searches have them (``reeval``: per search ``{"suc", ...}``; a noisy fitness's winner's curse is then
    paid by both, issue 17), else the best search scores."""
    if reeval:
        return float(reeval["search"]["suc"]), float(reeval["search_random"]["suc"])
    return float(search_best), float(random_best)


def _search_goal(summary: Mapping[str, Any]) -> str:
    """The report's line on evolution vs random, on the re-evaluated scores where the searches have them."""
    g = summary["goals"]
    re = summary.get("reeval")
    evo, rand = compared_search_scores(re, summary["suc_search_best"], summary["suc_random_best"])
    line = (f"- Searched subnet at least as good as the best random one (validation SUC, "
            f"{'re-evaluated' if re else 'search score'}): **{'yes' if g['search_at_least_random'] else 'no'}** "
            f"({_pct(evo)} vs {_pct(rand)}, margin {100 * g['search_minus_random']:+.1f} points")
    if re:
        line += (f"; std over the BN repeats {100 * re['search']['suc_std']:.1f} / "
                 f"{100 * re['search_random']['suc_std']:.1f}; on the search score alone "
                 f"{100 * g['search_score_minus_random']:+.1f}")
    return line + ")."


def _pct(v: float) -> str:
    return f"{100.0 * v:.1f}"


def _vl_start(outputs: Mapping[str, Any]) -> str:
    """Where the retrained VLT_SCAR started, from the retrain stage's marker (``inherited``)."""
    got = outputs.get("retrain", {}).get("inherited")
    if not got:
        return "VLT_SCAR starts from fresh weights"
    if got.get("neck_head_tensors"):
        return ("VLT_SCAR starts from the supernet tracker pretrained in stage 2 (the searched path of its backbone "
                "and mixers, its neck and head: the network the search scored)")
    return "VLT_SCAR's backbone starts from the supernet pretrained in stage 2 (neck and head fresh)"


def render_demo_report(summary: Mapping[str, Any], table: Any, outputs: Mapping[str, Mapping[str, Any]],
                       cfg: Any = None) -> str:
    """The markdown of ``report.md`` (tables of the trackers and of the searches, plots, timings)."""
    from asearch.evaluation.report import markdown_table

    g = summary["goals"]
    data = outputs["data"]
    lines = [
        "# ASearch demo report", "",
        f"The whole pipeline on the synthetic vision-language benchmark ({data['videos']} videos of "
        f"{data['frames']} frames: " + " / ".join(f"{n} {k}" for k, n in data["splits"].items())
        + f"), seed {summary['seed']}"
        f"{', fast variant' if summary['fast'] else ''}. Every stage ran the toolkit's own commands with the configs "
        "in `configs/` (reusable with `asearch pretrain/search/export/retrain/track --config configs/<stage>.yaml`).",
        "",
        "## Tracking on the test split", "",
        f"One-pass evaluation under the `{summary['protocol']}` protocol on {summary['test_videos']} test videos "
        "(SUC: area under the success curve; P: precision at 20 px; P_norm: normalized precision; in %).", "",
        markdown_table(table),
        "| tracker | what it is |", "| --- | --- |",
    ]
    for name, (label, what) in TRACKERS.items():
        lines.append(f"| {label} | {what} |")
    lines += [
        "",
        "*Untrained* means the searched architecture (the same genome as VLT_SCAR) with freshly initialised weights "
        "and no training at all: neither the supernet's weights nor retraining. It is the floor that the training "
        "stages are measured against.",
        "",
        "![Success plot](success_plot.png)", "",
        "![Precision plot](precision_plot.png)", "",
        "## Search", "",
        "Validation SUC of the candidates scored with the supernet's shared weights (after BN recalibration); the "
        "random baseline scores the same number of candidates.", "",
        *_search_table(summary, outputs), "",
        "![Search progress and SUC vs FLOPs](search_comparison.png)", "",
        f"Per-search plots: `{outputs['search']['dir']}/search_progress.png`, "
        f"`{outputs['search_random']['dir']}/search_progress.png`.", "",
        "## Searched architecture", "",
        f"`{summary['arch_json']}` (inherited weights: `{outputs['export']['weights']}`): "
        f"{summary['flops'] / 1e6 if summary['flops'] is not None else float('nan'):.1f} MFLOPs, "
        f"{summary['params'] / 1e6 if summary['params'] is not None else float('nan'):.3f} M backbone parameters.", "",
        "Genome (official form: template backbone, search backbone, template mixers, search mixers; 0-2 = ShuffleNetV2 "
        "k3/k5/k7, 3 = Xception):", "",
        "```", json.dumps(summary["genome"]), "```", "",
        "## Goals", "",
        f"- VL tracker ahead of the vision-only one: **{'yes' if g['vl_ahead_of_vision_only'] else 'no'}** "
        f"(SUC {_pct(summary['suc_vl'])} vs {_pct(summary['suc_vision_only'])}, margin "
        f"{100 * g['vl_minus_vision_only']:+.1f} points).",
        _search_goal(summary),
        f"- What the language contributes to VLT_SCAR: {100 * g['language_contribution']:+.1f} points of SUC "
        f"({_pct(summary['suc_vl'])} with the sentence, {_pct(summary['suc_vl_no_language'])} with zero language "
        "vectors).", "",
        f"Caveats: the benchmark is small ({summary['test_videos']} test videos), so differences of a few points are "
        f"within the noise of the seed. {_vl_start(outputs)}, SiamCAR's "
        "ResNet-50 from scratch (the paper starts both from ImageNet-pretrained weights, which the demo does not "
        "have); both then get the same steps, batch, data and optimiser. The two trackers differ in size: "
        f"{summary['weights_vl'] / 1e6:.2f} M weights for VLT_SCAR, {summary['weights_vision_only'] / 1e6:.2f} M for "
        "SiamCAR.", "",
        "## Time per stage", "",
        "| stage | seconds |", "| --- | ---: |",
    ]
    for stage, sec in summary["seconds"].items():
        lines.append(f"| {stage} | {sec:.1f} |")
    return "\n".join(lines) + "\n"
