"""OPE plots: one curve per tracker, score in the legend, trackers sorted by score (best first).

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot global state, no display needed).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

__all__ = ["plot_curves", "plot_success", "plot_precision", "plot_norm_precision", "plot_switch"]

PathLike = Union[str, os.PathLike]

_KINDS = {
    # kind: (curve key, thresholds key, score key, x label, default title)
    "success": ("success_curve", "success", "suc", "Overlap threshold", "Success plots of OPE"),
    "precision": ("precision_curve", "precision", "prec", "Location error threshold (px)",
                  "Precision plots of OPE"),
    "norm_precision": ("norm_precision_curve", "norm_precision", "norm_prec", "Normalized location error threshold",
                       "Normalized precision plots of OPE"),
}


def plot_curves(results: Mapping[str, Mapping[str, object]], kind: str, path: PathLike,
                title: Optional[str] = None) -> Path:
    """Plot one OPE curve per tracker and save it to ``path`` (PNG).

    Args:
        results: tracker name -> the dict returned by :func:`asearch.evaluation.ope`.
        kind: ``success``, ``precision`` or ``norm_precision``.
        path: output image file.
        title: figure title (default: "<Kind> plots of OPE").
    Legend entries read ``name [score]`` (score in %, 1 decimal; AO for the ``got10k`` success plot).
    """
    from matplotlib.figure import Figure

    if kind not in _KINDS:
        raise ValueError(f"unknown plot kind '{kind}'; choose success, precision or norm_precision")
    curve_key, thr_key, score_key, xlabel, default_title = _KINDS[kind]
    entries = []
    for name, res in results.items():
        key = "ao" if (kind == "success" and res.get("protocol") == "got10k") else score_key
        score = float(res[key])
        entries.append((name, score, np.asarray(res["thresholds"][thr_key]), np.asarray(res[curve_key]), key))
    entries.sort(key=lambda e: (-np.nan_to_num(e[1], nan=-1.0), e[0]))

    fig = Figure(figsize=(6.0, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for name, score, x, y, key in entries:
        label = f"{name} [{'AO ' if key == 'ao' else ''}{100.0 * score:.1f}]"
        ax.plot(x, y, linewidth=2.0, label=label)
    if entries:
        x = entries[0][2]
        ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Success rate" if kind == "success" else "Precision")
    ax.set_title(title or default_title)
    ax.grid(True, linestyle=":", linewidth=0.8)
    ax.legend(loc="lower left" if kind == "success" else "lower right", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(str(path))
    return path


def plot_success(results: Mapping[str, Mapping[str, object]], path: PathLike, title: Optional[str] = None) -> Path:
    """Success plot (success rate vs IoU threshold); see :func:`plot_curves`."""
    return plot_curves(results, "success", path, title)


def plot_precision(results: Mapping[str, Mapping[str, object]], path: PathLike,
                   title: Optional[str] = None) -> Path:
    """Precision plot (precision vs centre-error threshold in px); see :func:`plot_curves`."""
    return plot_curves(results, "precision", path, title)


def plot_norm_precision(results: Mapping[str, Mapping[str, object]], path: PathLike,
                        title: Optional[str] = None) -> Path:
    """Normalized precision plot; see :func:`plot_curves`."""
    return plot_curves(results, "norm_precision", path, title)



def plot_switch(info: Mapping[str, object], path: PathLike, title: Optional[str] = None) -> Path:
    """Draw a local / global tracker's decisions over one video (CTRTNL, paper 004 Algorithm 1) and save a PNG.

    ``info``: a video's ``<name>_info.json`` (:func:`asearch.evaluation.results.read_frame_info`): per frame
    ``mode`` (``init`` / ``local`` / ``global``), ``adars_score`` and ``threshold``. The score is drawn against the
    frame index with the threshold as a dashed line; frames tracked globally (the retrieval ran) are shaded.
    Raises ``ValueError`` when the frames carry no ``mode``.
    """
    from matplotlib.figure import Figure

    frames = list(info.get("frames") or [])  # type: ignore[arg-type]
    if not frames or "mode" not in frames[0]:
        raise ValueError("plot_switch: the per-frame info has no 'mode' (not a switching tracker's info file)")
    modes = [row.get("mode") for row in frames]
    score = np.array([np.nan if row.get("adars_score") is None else float(row["adars_score"]) for row in frames])
    thresholds = [row.get("threshold") for row in frames if row.get("threshold") is not None]
    x = np.arange(len(frames))
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot(1, 1, 1)
    for i, mode in enumerate(modes):
        if mode == "global":
            ax.axvspan(i - 0.5, i + 0.5, color="tab:orange", alpha=0.3, lw=0)
    ax.plot(x, score, marker=".", color="tab:blue", label="best AdaRS score")
    if thresholds:
        ax.axhline(float(thresholds[0]), color="k", ls="--", lw=1, label=f"T_ars = {float(thresholds[0]):g}")
    n_global = sum(m == "global" for m in modes)
    ax.plot([], [], color="tab:orange", alpha=0.3, lw=8, label=f"global retrieval ({n_global} frames)")
    ax.set_xlabel("Frame")
    ax.set_ylabel("AdaRS score")
    ax.set_xlim(-0.5, len(frames) - 0.5)
    ax.set_title(title or "Local / global switch")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
