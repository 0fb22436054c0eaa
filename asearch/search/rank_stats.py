"""The statistics of the supernet ranking check (``asearch rank``, :mod:`asearch.search.rank`): Kendall τ-b and
Spearman ρ with paired bootstrap intervals (:mod:`scipy.stats`), the quantile pick of the subnets, and the printed
summary of ``rank.json``."""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from asearch.errors import ConfigError

__all__ = ["rank_statistics", "pick_quantiles", "summary_lines"]


def _interval(x: np.ndarray, y: np.ndarray, fn: Any, resamples: int, seed: int) -> Dict[str, Any]:
    from scipy import stats

    with warnings.catch_warnings():  # degenerate resamples (one side constant) are counted below, not warned about
        warnings.simplefilter("ignore")
        res = stats.bootstrap((x, y), lambda a, b: fn(a, b).statistic, paired=True, vectorized=False,
                              n_resamples=resamples, method="percentile", confidence_level=0.95,
                              random_state=np.random.default_rng(seed))
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    ok = dist[np.isfinite(dist)]
    low, high = (float(np.percentile(ok, 2.5)), float(np.percentile(ok, 97.5))) if len(ok) else (None, None)
    return {"low": low, "high": high, "nan_resamples": int(len(dist) - len(ok)),
            "includes_zero": None if low is None else bool(low <= 0.0 <= high)}


def rank_statistics(supernet: Sequence[float], standalone: Sequence[float], resamples: int = 2000, seed: int = 0,
                    top: int = 3) -> Dict[str, Any]:
    """Kendall τ-b and Spearman ρ (:func:`scipy.stats.kendalltau`, :func:`scipy.stats.spearmanr`; ties get average
    ranks) of two score lists, each with a paired bootstrap 95 % interval, and the overlap of their top ``top``
    (ties broken by list order) as a fraction."""
    from scipy import stats

    x, y = np.asarray(supernet, dtype=np.float64), np.asarray(standalone, dtype=np.float64)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"rank_statistics: two lists of the same length >= 2 needed, got {len(x)} and {len(y)}")
    out: Dict[str, Any] = {"n": int(len(x))}
    for name, fn in (("kendall_tau_b", stats.kendalltau), ("spearman_rho", stats.spearmanr)):
        value = float(fn(x, y).statistic)
        out[name] = {"value": value if np.isfinite(value) else None,
                     "ci95": _interval(x, y, fn, resamples, seed)}
    k = min(top, len(x))
    top_x = set(np.argsort(-x, kind="stable")[:k].tolist())
    top_y = set(np.argsort(-y, kind="stable")[:k].tolist())
    out[f"top{top}_overlap"] = len(top_x & top_y) / k
    return out


def pick_quantiles(scored: Sequence[Tuple[Any, float]], k: int) -> List[int]:
    """Indices into ``scored`` (``(genome, suc)`` pairs) of ``k`` entries at evenly spaced quantiles of the SUC
    (sorted ascending, ties by position): positions ``round(linspace(0, M - 1, k))``."""
    if len(scored) < k:
        raise ConfigError(f"subnets: {k} wanted but only {len(scored)} scored candidates to pick from")
    order = sorted(range(len(scored)), key=lambda i: (scored[i][1], i))
    positions = sorted({int(round(p)) for p in np.linspace(0, len(scored) - 1, k)})
    return [order[p] for p in positions]


def summary_lines(summary: Mapping[str, Any], inits: Sequence[str]) -> List[str]:
    """The printed summary of ``rank.json``."""
    lines = [f"asearch rank: {summary['subnets']} subnets, fitness {summary['fitness']['mode']} x "
             f"{summary['fitness']['repeats']} ({summary['fitness']['seconds_per_candidate']:.2f} s per candidate)"]
    for init in inits:
        s = summary[init]
        parts = []
        for key, name in (("kendall_tau_b", "Kendall tau-b"), ("spearman_rho", "Spearman rho")):
            v, ci = s[key]["value"], s[key]["ci95"]
            text = "n/a" if v is None else f"{v:+.3f}"
            if ci["low"] is not None:
                text += f" [{ci['low']:+.2f}, {ci['high']:+.2f}]" + (" (includes 0)" if ci["includes_zero"] else "")
            parts.append(f"{name} {text}")
        lines.append(f"  vs stand-alone ({init}): " + "; ".join(parts) + f"; top-3 overlap {s['top3_overlap']:.2f}")
    return lines
