"""Per-attribute breakdown (e.g. LaSOT's 14 per-video flags): a score averaged over the videos having each flag."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence as Seq

import numpy as np
import pandas as pd

__all__ = ["attribute_names", "attribute_table"]


def attribute_names(flags: Seq[Optional[Mapping[str, bool]]]) -> List[str]:
    """Every attribute name present in ``flags`` (one dict or None per sequence), in first-seen order."""
    names: List[str] = []
    for f in flags:
        for k in (f or {}):
            if k not in names:
                names.append(k)
    return names


def attribute_table(results: Mapping[str, Mapping[str, object]], flags: Seq[Optional[Mapping[str, bool]]],
                    metric: str = "suc") -> pd.DataFrame:
    """Mean per-sequence ``metric`` (in %) of each tracker over the sequences flagged with each attribute.

    Args:
        results: tracker name -> :func:`asearch.evaluation.ope` dict (sequences in the same order as ``flags``).
        flags: per sequence, attribute name -> bool (None: the sequence has no attribute annotation).
        metric: a ``per_sequence`` key: ``suc``, ``prec`` or ``norm_prec`` (``ao`` for got10k).

    Returns:
        A DataFrame indexed by attribute, with column ``n`` (number of flagged sequences) and one column per
        tracker; empty when no sequence has attributes.
    """
    names = attribute_names(flags)
    rows: Dict[str, Dict[str, float]] = {}
    for attr in names:
        mask = np.array([bool((f or {}).get(attr, False)) for f in flags], dtype=bool)
        row: Dict[str, float] = {"n": int(mask.sum())}
        for tracker, res in results.items():
            values = np.asarray(res["per_sequence"][metric], dtype=np.float64)
            if len(values) != len(mask):
                raise ValueError(f"tracker '{tracker}' has {len(values)} sequences but {len(mask)} attribute rows")
            sel = values[mask]
            sel = sel[np.isfinite(sel)]
            row[tracker] = float(100.0 * sel.mean()) if len(sel) else float("nan")
        rows[attr] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["n", *results.keys()])
    table.index.name = "attribute"
    if len(table):
        table["n"] = table["n"].astype(int)
    return table
