"""How noisy is the stand-alone truth of ``asearch rank``? Two or more finished rank runs of the same subnets that
differ only in the retraining seed (``--set retrain.overrides.seed=S``), compared.

``asearch rank`` measures the supernet's order against one stand-alone training per subnet. If that training's own
seed reorders the subnets, no fitness can be shown to predict it. For each pair of runs this prints Kendall τ-b and
Spearman ρ between their stand-alone SUCs (:func:`asearch.search.rank_stats.rank_statistics`: bootstrap 95 % intervals),
the per-subnet spread over the seeds against the spread between subnets (the seed std, and the share of the
variance that is between subnets: ``1 - mean within-subnet variance / total variance``), the two-way consistency
intraclass correlations (:func:`icc_consistency`: how much of one run's, and of the mean's, order is the subnets'
own once each run's common shift is removed), and the supernet's τ-b and
ρ against the mean over seeds, for the run's own fitness and for every variant a ``rank_fitness.py`` run cached in
the first folder (``rank_fitness_scores*.json``). The subnets are matched by genome; the runs must hold the same
ones. The table goes to ``--out`` as JSON too.

Usage (README "Is the search's ranking right?")::

    asearch rank --config experiments/demo/rank.yaml --supernet CKPT --out rank_seed1 \
        --set fitness.validation.root=DEMO_DIR/data --set retrain.config=DEMO_DIR/configs/retrain.yaml \
        --set retrain.inherited=false --set retrain.overrides.seed=1
    python benchmarks/rank_truth_noise.py --rank rank_demo rank_seed1 --out truth_noise.json
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from itertools import combinations
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np


def read_rank(folder: Path, column: str = "standalone_scratch") -> Dict[str, Dict[str, float]]:
    """``{genome JSON: {"supernet": SUC, "standalone": SUC}}`` from a finished rank run's ``rank.csv``."""
    path = Path(folder) / "rank.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no rank.csv (is {folder} a finished asearch rank run?)")
    out: Dict[str, Dict[str, float]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if not row.get(column):
                raise ValueError(f"{path}: subnet {row.get('id')} has no {column} (the run did not train it)")
            genome = json.dumps(json.loads(row["genome"]), separators=(",", ":"))
            out[genome] = {"supernet": float(row["supernet_suc"]), "standalone": float(row[column])}
    return out


def icc_consistency(scores: np.ndarray) -> Dict[str, Any]:
    """Shrout & Fleiss's two-way consistency intraclass correlations of a ``(runs, subnets)`` table: ICC(3,1), the
    share of one run's variance that is the subnets' own (a run's common shift, e.g. a seed that is worse for every
    subnet, removed), and ICC(3,k), the same for the mean over the ``k`` runs. From the two-way ANOVA mean squares:
    ``MSR`` between subnets, ``MSE`` the residual; ICC(3,1) = (MSR - MSE) / (MSR + (k - 1) MSE), ICC(3,k) =
    (MSR - MSE) / MSR. ``None`` when undefined (a constant table)."""
    k, n = scores.shape
    grand = scores.mean()
    subnet_means, run_means = scores.mean(axis=0), scores.mean(axis=1)
    msr = k * float(((subnet_means - grand) ** 2).sum()) / (n - 1)
    mse = float(((scores - subnet_means[None, :] - run_means[:, None] + grand) ** 2).sum()) / ((n - 1) * (k - 1))
    one = msr + (k - 1) * mse
    tiny = 1e-12 * max(msr, mse)  # rounding: a table without differences between subnets leaves MSR at ~1e-33
    return {"ms_subnets": msr, "ms_residual": mse,
            "icc_3_1": (msr - mse) / one if one > tiny else None,
            "icc_3_k": (msr - mse) / msr if msr > tiny else None,
            "residual_std": float(np.sqrt(mse))}


def truth_noise(runs: Sequence[Dict[str, Dict[str, float]]], names: Sequence[str],
                fitness: Dict[str, Sequence[float]] | None = None, resamples: int = 2000) -> Dict[str, Any]:
    """The comparison of runs of :func:`read_rank` (matched by genome, in the first run's order); ``fitness``:
    extra supernet score lists (``{name: scores in the first run's order}``) to correlate with the seed mean."""
    from asearch.search.rank_stats import rank_statistics

    genomes = list(runs[0])
    for name, run in zip(names[1:], runs[1:]):
        if set(run) != set(genomes):
            raise ValueError(f"rank run {name} does not hold the same subnets as {names[0]} (matched by genome)")
    sa = np.array([[run[g]["standalone"] for g in genomes] for run in runs])      # (runs, subnets)
    mean = sa.mean(axis=0)
    within = float(sa.var(axis=0, ddof=1).mean()) if len(runs) > 1 else 0.0
    total = float(np.concatenate(sa).var(ddof=1))
    out: Dict[str, Any] = {
        "runs": list(names), "subnets": len(genomes),
        "standalone": sa.tolist(), "standalone_mean": mean.tolist(), "run_means": sa.mean(axis=1).tolist(),
        "seed_std_mean": float(np.sqrt(within)), "between_subnet_std": float(mean.std(ddof=1)),
        "between_share": (1.0 - within / total) if total > 0 else None,
        **icc_consistency(sa),
        "pairs": {f"{names[i]} vs {names[j]}": rank_statistics(sa[i], sa[j], resamples)
                  for i, j in combinations(range(len(runs)), 2)}}
    scores = {"own fitness": [runs[0][g]["supernet"] for g in genomes], **(fitness or {})}
    out["supernet_vs_mean"] = {k: rank_statistics(v, mean, resamples) for k, v in scores.items()}
    return out


def _fitness_variants(folder: Path, genomes: List[str]) -> Dict[str, List[float]]:
    """The supernet scores a ``rank_fitness.py`` run cached in ``folder`` (in ``subnets.json``'s order), re-ordered
    to ``genomes``."""
    subnets_path = folder / "subnets.json"
    if not subnets_path.is_file():
        return {}
    order = [json.dumps(s["genome"], separators=(",", ":")) for s in json.loads(subnets_path.read_text())["subnets"]]
    out: Dict[str, List[float]] = {}
    for path in sorted(folder.glob("rank_fitness_scores*.json")):
        tag = path.name[len("rank_fitness_scores"):-len(".json")].lstrip(".")
        for key, entry in json.loads(path.read_text()).items():
            by_genome = dict(zip(order, entry["supernet_suc"]))
            if set(by_genome) == set(genomes):
                out[f"{key}{' ' + tag if tag else ''}"] = [by_genome[g] for g in genomes]
    return out


def _fmt(stat: Dict[str, Any]) -> str:
    ci = stat["ci95"]
    value = "nan" if stat["value"] is None else f"{stat['value']:+.2f}"
    if ci["low"] is None:
        return value
    return f"{value} [{ci['low']:+.2f}, {ci['high']:+.2f}]"


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rank", nargs="+", required=True, help="two or more finished asearch rank folders")
    p.add_argument("--column", default="standalone_scratch", choices=["standalone_scratch", "standalone_inherited"])
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    if len(args.rank) < 2:
        p.error("--rank needs at least two rank runs")
    folders = [Path(f) for f in args.rank]
    runs = [read_rank(f, args.column) for f in folders]
    genomes = list(runs[0])
    res = truth_noise(runs, [f.name for f in folders], _fitness_variants(folders[0], genomes), args.bootstrap)

    print(f"{res['subnets']} subnets, stand-alone SUC % ({args.column}) per run:")
    for i in range(res["subnets"]):
        cells = " ".join(f"{100 * run[i]:6.1f}" for run in res["standalone"])
        print(f"  subnet {i}: {cells}   mean {100 * res['standalone_mean'][i]:5.1f}")
    share = res["between_share"]
    print(f"seed std (mean over subnets) {100 * res['seed_std_mean']:.2f} points; between-subnet std of the mean "
          f"{100 * res['between_subnet_std']:.2f}; share of variance between subnets "
          f"{'n/a' if share is None else f'{share:.2f}'}")
    icc1, icck = res["icc_3_1"], res["icc_3_k"]
    print(f"run means {' '.join(f'{100 * m:.1f}' for m in res['run_means'])}; with each run's shift removed: "
          f"residual std {100 * res['residual_std']:.2f} points, ICC(3,1) "
          f"{'n/a' if icc1 is None else f'{icc1:.2f}'} (one run), ICC(3,{len(folders)}) "
          f"{'n/a' if icck is None else f'{icck:.2f}'} (their mean)")
    print("| pair of runs | τ-b [95 %] | ρ [95 %] | top-3 overlap |\n|---|---:|---:|---:|")
    for name, stat in res["pairs"].items():
        print(f"| {name} | {_fmt(stat['kendall_tau_b'])} | {_fmt(stat['spearman_rho'])} | "
              f"{stat['top3_overlap']:.2f} |")
    print("| supernet fitness vs the seed mean | τ-b [95 %] | ρ [95 %] | top-3 overlap |\n|---|---:|---:|---:|")
    for name, stat in res["supernet_vs_mean"].items():
        print(f"| {name} | {_fmt(stat['kendall_tau_b'])} | {_fmt(stat['spearman_rho'])} | "
              f"{stat['top3_overlap']:.2f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
