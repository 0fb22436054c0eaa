"""``search_progress.png``: SUC per generation (best so far, best and mean of the generation) and SUC vs FLOPs."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np

from asearch.io import atomic_write
from asearch.search.state import CandidateRecord

__all__ = ["generation_summary", "plot_progress"]


def generation_summary(records: Sequence[CandidateRecord]) -> List[Dict[str, float]]:
    """Per generation: ``generation``, ``count``, ``mean`` and ``best`` SUC of its candidates, ``best_so_far``."""
    out: List[Dict[str, float]] = []
    best_so_far = -np.inf
    for g in sorted({r.generation for r in records}):
        sucs = np.array([r.suc for r in records if r.generation == g], dtype=float)
        best_so_far = max(best_so_far, float(sucs.max()))
        out.append({"generation": g, "count": int(sucs.size), "mean": float(sucs.mean()), "best": float(sucs.max()),
                    "best_so_far": best_so_far})
    return out


def plot_progress(records: Sequence[CandidateRecord], path: Union[str, Path]) -> Path:
    """Write the two-panel progress figure to ``path`` (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    summary = generation_summary(records)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if summary:
        gens = [s["generation"] for s in summary]
        ax1.plot(gens, [s["best_so_far"] for s in summary], "-o", label="best so far")
        ax1.plot(gens, [s["best"] for s in summary], "--", label="best of generation")
        ax1.plot(gens, [s["mean"] for s in summary], "-s", label="mean of generation")
        ax1.legend(loc="lower right")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_xlabel("generation")
    ax1.set_ylabel("validation SUC")
    ax1.set_title("search progress")
    ax1.grid(alpha=0.3)

    with_flops = [r for r in records if r.flops is not None]
    if with_flops:
        sc = ax2.scatter([r.flops / 1e9 for r in with_flops], [r.suc for r in with_flops],
                         c=[r.generation for r in with_flops], cmap="viridis", s=14)
        fig.colorbar(sc, ax=ax2, label="generation")
    ax2.set_xlabel("GFLOPs (MACs)")
    ax2.set_ylabel("validation SUC")
    ax2.set_title("SUC vs FLOPs")
    ax2.grid(alpha=0.3)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.92, wspace=0.25)
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
