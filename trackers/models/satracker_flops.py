"""Multiply-accumulates of SATracker, component by component (paper 002, Table 3: 28.8 GFLOPs).

:func:`mac_breakdown` runs :meth:`SATracker.template` (once per video: template side, text, SAM's selectors) and
:meth:`SATracker.track` (one search frame) under :class:`~trackers.flops.ComponentFlopCounter` and returns the
multiply-accumulates (FLOPs / 2 of :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products and
convolutions; no norms, activations, softmax or additions) of each component on each side, split into linear /
convolution operators and the batched products of attention (``Q K^T`` and ``A V``, which counters built on module
hooks do not see). ``python -m trackers.models.satracker_flops`` prints the table for the paper-size model on the
``meta`` device, with a few other ways of counting (README, SATracker section).
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Optional, Tuple

import torch

from trackers.flops import ComponentFlopCounter
from trackers.models.satracker import SATracker, SATrackerModelConfig, SATrackerTextConfig, build_satracker_model

__all__ = ["components", "mac_breakdown", "paper_size_model", "ATTENTION_PRODUCTS"]

#: operators of the attention products (``q @ k^T``, ``attn @ v``; also the einsum of Eq. 4's map)
ATTENTION_PRODUCTS = ("aten.bmm", "aten.baddbmm")

Row = Tuple[str, str, str, float]  # side, component, operator, multiply-accumulates


def components(model: SATracker) -> List[Tuple[str, torch.nn.Module]]:
    """Named parts of ``model`` for :class:`ComponentFlopCounter`; the model itself comes first, so what no other
    part claims (Eq. 4's projection and the einsum of its map, the ablation neck) is charged to
    ``"matching map (Eq. 4) and rest"``."""
    parts = [("matching map (Eq. 4) and rest", model)]
    for i, stage in enumerate(model.cvt.stages):
        parts.append((f"CvT stage {i + 1}: TEM x{len(stage.blocks)}", stage))
        parts.append((f"CvT stage {i + 1}: CTE", stage.embed))
    if model.text is not None:
        parts.append(("BERT embeddings", model.text.model.embeddings))
        start = 0
        for i, end in enumerate(model.bounds):
            for j in range(start, end):
                parts.append((f"BERT stage {i + 1}: layers {start}-{end - 1}", model.text.model.encoder.layer[j]))
            start = end
        for i, sam in enumerate(model.sam):
            parts.append((f"SAM {i + 1}", sam))
    parts.append(("corner head", model.head))
    return parts


def mac_breakdown(model: SATracker, text_length: int = 30, templates: int = 1) -> List[Row]:
    """``(side, component, operator, MACs)`` rows of one template pass (``side`` ``"template"``, with the text of
    ``text_length`` tokens) and one search frame (``"search"``), on the device of ``model``'s parameters.

    ``templates > 1`` (a what-if, not SATracker: STARK-ST / MixFormer-style extra templates) runs the template side
    that many times (the text once) and lets the search attend to all templates' keys and values."""
    device = next(model.parameters()).device
    lang = None
    if model.text is not None:
        lang = {"ids": torch.zeros(1, text_length, dtype=torch.long, device=device),
                "mask": torch.ones(1, text_length, dtype=torch.bool, device=device),
                "has_text": torch.ones(1, dtype=torch.bool, device=device)}
    parts = components(model)
    rows: List[Row] = []
    with torch.no_grad():
        with ComponentFlopCounter(parts) as counter:
            state = model.template(torch.zeros(1, 3, model.template_size, model.template_size, device=device), lang)
        rows += [("template", c, op, n / 2) for (c, op), n in counter.counts.items()]
        for _ in range(templates - 1):
            with ComponentFlopCounter(parts) as counter:
                extra = model.template(torch.zeros(1, 3, model.template_size, model.template_size, device=device),
                                       lang)
            rows += [("template", c, op, n / 2) for (c, op), n in counter.counts.items()
                     if not c.startswith("BERT")]
            state["kv"] = [[(torch.cat([a[0], b[0]], 2), torch.cat([a[1], b[1]], 2)) for a, b in zip(s, e)]
                           for s, e in zip(state["kv"], extra["kv"])]
        with ComponentFlopCounter(parts) as counter:
            model.track(torch.zeros(1, 3, model.search_size, model.search_size, device=device), state)
        rows += [("search", c, op, n / 2) for (c, op), n in counter.counts.items()]
    return rows


def paper_size_model(search_size: int = 320, template_size: int = 128) -> SATracker:
    """The paper-size SATracker (CvT-21, BERT-base with random weights from ``BertConfig()``) on ``meta``."""
    from transformers import BertConfig

    cfg = SATrackerModelConfig(template_size=template_size, search_size=search_size,
                               text=SATrackerTextConfig(encoder="bert-base-uncased", width=768))
    with torch.device("meta"):
        return build_satracker_model(cfg, pretrained=False, text_config=BertConfig()).eval()


def _total(rows: List[Row], skip_products: bool = False) -> float:
    return sum(n for _, _, op, n in rows if not (skip_products and op in ATTENTION_PRODUCTS))


def main(argv: Optional[List[str]] = None) -> None:
    """Print the component table and the alternative totals (G multiply-accumulates)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text-length", type=int, default=30)
    args = ap.parse_args(argv)
    model = paper_size_model()
    rows = mac_breakdown(model, args.text_length)
    table: Dict[Tuple[str, str], List[float]] = {}
    for side, comp, op, n in rows:
        cell = table.setdefault((comp, side), [0.0, 0.0])
        cell[op in ATTENTION_PRODUCTS] += n
    print(f"{'component':38s} {'side':8s} {'linear+conv':>11s} {'attn prod':>9s} {'total':>7s}  (G MACs)")
    for (comp, side), (lin, att) in table.items():
        print(f"{comp:38s} {side:8s} {lin / 1e9:11.3f} {att / 1e9:9.3f} {(lin + att) / 1e9:7.3f}")
    total = _total(rows)
    print(f"{'total':38s} {'':8s} {_total(rows, True) / 1e9:11.3f} {(total - _total(rows, True)) / 1e9:9.3f} "
          f"{total / 1e9:7.3f}")
    print("\nother ways of counting (G):")
    print(f"  FLOPs = 2 x MACs                        {2 * total / 1e9:7.2f}")
    print(f"  without the attention products          {_total(rows, True) / 1e9:7.2f}")
    print(f"  search frame only                       {_total([r for r in rows if r[0] == 'search']) / 1e9:7.2f}")
    print(f"  without the language branch (BERT)      "
          f"{_total([r for r in rows if not r[1].startswith('BERT')]) / 1e9:7.2f}")
    for n in (40, 64, 88, 128):
        print(f"  text of {n:3d} tokens                      {_total(mac_breakdown(model, n)) / 1e9:7.2f}")
    print(f"  two templates (STARK-ST / MixFormer)    {_total(mac_breakdown(model, args.text_length, 2)) / 1e9:7.2f}")
    for s in (352, 384):
        print(f"  search {s}                              "
              f"{_total(mac_breakdown(paper_size_model(s), args.text_length)) / 1e9:7.2f}")


if __name__ == "__main__":
    main()
