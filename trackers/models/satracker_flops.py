"""Multiply-accumulates of SATracker, component by component (paper 002, Table 3: 28.8 GFLOPs).

:func:`mac_breakdown` runs :meth:`SATracker.template` (once per video: template side, text, SAM's selectors) and
:meth:`SATracker.track` (one search frame) under :class:`~trackers.flops.ComponentFlopCounter` and returns the
multiply-accumulates (FLOPs / 2 of :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products and
convolutions; no norms, activations, softmax or additions) of each component on each side, split into linear /
convolution operators and the batched products of attention (``Q K^T`` and ``A V``, which counters built on module
hooks do not see). :func:`detailed_components` splits each CvT stage into CTE, convolutional projections,
q / k / v / output linears, attention products, LayerNorms and MLP; :func:`count_breakdown` also returns the
elements of norms, softmax, GELU and resampling and the conv-bias outputs, from which :func:`thop_style` rebuilds
what a module-hook counter (thop, with or without CvT's / MixFormer's attention rule) would report.
``python -m trackers.models.satracker_flops`` prints the detailed table for the paper-size model on the ``meta``
device and :func:`conventions`: the other ways of counting and the what-ifs of the README (SATracker section).
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from trackers.flops import ComponentFlopCounter
from trackers.models.satracker import SATracker, SATrackerModelConfig, SATrackerTextConfig, build_satracker_model

__all__ = ["components", "component_table", "conventions", "count_breakdown", "detailed_components", "mac_breakdown",
           "paper_size_model", "thop_style",
           "cvt21_imagenet_macs", "ATTENTION_PRODUCTS", "NORMS"]

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


def detailed_components(model: SATracker) -> List[Tuple[str, torch.nn.Module]]:
    """:func:`components` with every CvT stage split into its CTE, the depth-wise convolutional projections (with
    their BatchNorms), the q / k / v / output linear maps, the attention products (``Q K^T`` and ``A V``, the only
    products run in a TEM's own methods), the two LayerNorms and the MLP; each BERT stage into its linear maps
    (with FFN and norms) and its attention products."""
    parts: List[Tuple[str, torch.nn.Module]] = [("matching map (Eq. 4) and rest", model)]
    for i, stage in enumerate(model.cvt.stages):
        s = f"CvT stage {i + 1}"
        parts.append((f"{s}: CTE", stage.embed))
        for b in stage.blocks:
            parts.append((f"{s}: attention products", b))
            parts += [(f"{s}: conv projections", m) for m in (b.conv_q, b.conv_k, b.conv_v)]
            parts += [(f"{s}: q/k/v/out linears", m) for m in (b.q, b.k, b.v, b.proj)]
            parts += [(f"{s}: LayerNorms", m) for m in (b.norm1, b.norm2)]
            parts += [(f"{s}: MLP", m) for m in (b.fc1, b.fc2)]
    if model.text is not None:
        parts.append(("BERT embeddings", model.text.model.embeddings))
        start = 0
        for i, end in enumerate(model.bounds):
            s = f"BERT stage {i + 1} (layers {start}-{end - 1})"
            for j in range(start, end):
                layer = model.text.model.encoder.layer[j]
                parts.append((f"{s}: linears, FFN", layer))
                att = layer.attention.self
                parts.append((f"{s}: attention products", att))
                parts += [(f"{s}: linears, FFN", m) for m in (att.query, att.key, att.value)]
            start = end
        for i, sam in enumerate(model.sam):
            parts.append((f"SAM {i + 1}", sam))
    parts.append(("corner head", model.head))
    return parts


def count_breakdown(model: SATracker, text_length: int = 30, templates: int = 1,
                    parts: Optional[List[Tuple[str, torch.nn.Module]]] = None,
                    text_per_template: bool = False) -> Tuple[List[Row], List[Row]]:
    """``(MAC rows, element rows)``: :func:`mac_breakdown`'s rows and, in the same form, the output elements of
    norms, softmax, GELU and resampling and the conv-bias outputs (:attr:`ComponentFlopCounter.elements`), on the
    components ``parts`` (default :func:`components`). ``text_per_template`` (what-if) keeps the BERT layers of
    every extra template pass, as if the text were encoded again beside each template."""
    device = next(model.parameters()).device
    lang = None
    if model.text is not None:
        lang = {"ids": torch.zeros(1, text_length, dtype=torch.long, device=device),
                "mask": torch.ones(1, text_length, dtype=torch.bool, device=device),
                "has_text": torch.ones(1, dtype=torch.bool, device=device)}
    parts = components(model) if parts is None else parts
    rows: List[Row] = []
    elems: List[Row] = []

    def keep(side: str, counter: ComponentFlopCounter, text: bool = True) -> None:
        rows.extend((side, c, op, n / 2) for (c, op), n in counter.counts.items() if text or not c.startswith("BERT"))
        elems.extend((side, c, op, float(n)) for (c, op), n in counter.elements.items()
                     if text or not c.startswith("BERT"))

    z = torch.zeros(1, 3, model.template_size, model.template_size, device=device)
    with torch.no_grad():
        with ComponentFlopCounter(parts) as counter:
            state = model.template(z, lang)
        keep("template", counter)
        for _ in range(templates - 1):
            with ComponentFlopCounter(parts) as counter:
                extra = model.template(z, lang)
            keep("template", counter, text=text_per_template)
            state["kv"] = [[(torch.cat([a[0], b[0]], 2), torch.cat([a[1], b[1]], 2)) for a, b in zip(s, e)]
                           for s, e in zip(state["kv"], extra["kv"])]
        with ComponentFlopCounter(parts) as counter:
            model.track(torch.zeros(1, 3, model.search_size, model.search_size, device=device), state)
        keep("search", counter)
    return rows, elems


def mac_breakdown(model: SATracker, text_length: int = 30, templates: int = 1, detailed: bool = False) -> List[Row]:
    """``(side, component, operator, MACs)`` rows of one template pass (``side`` ``"template"``, with the text of
    ``text_length`` tokens) and one search frame (``"search"``), on the device of ``model``'s parameters; with
    ``detailed`` on :func:`detailed_components`, else on :func:`components`.

    ``templates > 1`` (a what-if, not SATracker: STARK-ST / MixFormer-style extra templates) runs the template side
    that many times (the text once) and lets the search attend to all templates' keys and values."""
    parts = detailed_components(model) if detailed else None
    return count_breakdown(model, text_length, templates, parts)[0]


#: norms weighed by thop's ``count_normalization`` (2 operations per element)
NORMS = ("aten.native_layer_norm", "aten.native_batch_norm", "aten._native_batch_norm_legit_no_training")


def _thop_elements(op: str, n: float) -> float:
    """What thop charges for ``n`` output elements of ``op``: one addition per conv-bias output, 2 per norm
    element (:data:`NORMS`), nothing for the rest (softmax, GELU, resampling)."""
    return n if op == "conv bias" else 2 * n if op in NORMS else 0.0


def thop_style(rows: List[Row], elems: List[Row], cvt_products: bool = False) -> float:
    """What a module-hook counter in the manner of thop reports for these rows: ``nn.Linear`` and ``nn.Conv2d``
    multiply-accumulates, one addition per conv-bias output, 2 per BatchNorm / LayerNorm element, nothing for the
    products written as ``@`` / ``einsum`` (:data:`ATTENTION_PRODUCTS`; GELU and functional softmax have no hook).
    ``cvt_products`` adds the attention products of the CvT stages, as the attention rules of CvT (for a
    ptflops-style counter) and MixFormer (for thop) do (``T_Q * T_KV * dim`` twice per block); BERT's and SAM's
    products stay out."""
    total = sum(n for _, _, op, n in rows if op not in ATTENTION_PRODUCTS)
    total += sum(_thop_elements(op, n) for _, _, op, n in elems)
    if cvt_products:
        total += sum(n for _, c, op, n in rows if op in ATTENTION_PRODUCTS and c.startswith("CvT"))
    return total


def component_table(rows: List[Row], elems: List[Row], order: Sequence[str] = ()
                    ) -> List[Tuple[str, float, float, float]]:
    """``(component, template MACs, search MACs, thop-style count)`` in the order of ``order`` (then as first
    seen), and a last ``"total"`` row; the thop-style column follows :func:`thop_style` without the CvT products."""
    table: Dict[str, List[float]] = {name: [0.0, 0.0, 0.0] for name in order}
    for side, comp, op, n in rows:
        cell = table.setdefault(comp, [0.0, 0.0, 0.0])
        cell[side == "search"] += n
        if op not in ATTENTION_PRODUCTS:
            cell[2] += n
    for _, comp, op, n in elems:
        cell = table.setdefault(comp, [0.0, 0.0, 0.0])
        cell[2] += _thop_elements(op, n)
    out = [(c, t, s, h) for c, (t, s, h) in table.items() if t or s or h]
    out.append(("total", sum(r[1] for r in out), sum(r[2] for r in out), sum(r[3] for r in out)))
    return out


def paper_size_model(search_size: int = 320, template_size: int = 128, head_channels: int = 256) -> SATracker:
    """The paper-size SATracker (CvT-21, BERT-base with random weights from ``BertConfig()``) on ``meta``; another
    search size or corner-head width are the what-ifs of the README table."""
    from transformers import BertConfig

    from trackers.models.satracker import CornerHeadConfig

    cfg = SATrackerModelConfig(template_size=template_size, search_size=search_size,
                               head=CornerHeadConfig(channels=head_channels),
                               text=SATrackerTextConfig(encoder="bert-base-uncased", width=768))
    with torch.device("meta"):
        return build_satracker_model(cfg, pretrained=False, text_config=BertConfig()).eval()


def cvt21_imagenet_macs(size: int = 224) -> float:
    """Multiply-accumulates of our CvT-21 stages on one ``size`` image (no class token, final norm or classifier),
    counted as :func:`mac_breakdown` counts (attention products included), on ``meta``: the check of our counting
    against CvT's own (CvT-21: 7.1 GFLOPs at 224, 24.9 at 384; its attention rule counts a multiply-add once)."""
    from torch.utils.flop_counter import FlopCounterMode

    from trackers.backbones.cvt import CvT, to_map

    with torch.device("meta"):
        cvt = CvT().eval()
        x = torch.zeros(1, 3, size, size)
        with torch.no_grad(), FlopCounterMode(display=False) as flops:
            for i in range(len(cvt.stages)):
                (tokens, h, w), _ = cvt.template_stage(i, x)
                x = to_map(tokens, h, w)
    return flops.get_total_flops() / 2


def _total(rows: List[Row], skip_products: bool = False) -> float:
    return sum(n for _, _, op, n in rows if not (skip_products and op in ATTENTION_PRODUCTS))


def conventions(text_length: int = 30) -> List[Tuple[str, float]]:
    """``(description, G)`` of the paper-size model counted in the ways the README lists, and of a few what-ifs
    on the inputs or the head; all on ``meta``."""
    model = paper_size_model()
    rows, elems = count_breakdown(model, text_length)
    search = [r for r in rows if r[0] == "search"]
    no_bert = [r for r in rows if not r[1].startswith("BERT")]
    vision = [r for r in no_bert if not r[1].startswith("SAM") and not r[1].startswith("matching")]
    norm_elems = sum(n for _, _, op, n in elems if op in NORMS)
    other_elems = sum(n for _, _, op, n in elems if op not in NORMS and op != "conv bias")
    two = count_breakdown(model, text_length, 2)
    wide_model = paper_size_model(head_channels=384)
    wide = count_breakdown(wide_model, text_length, 2)
    two_text = count_breakdown(model, text_length, 2, text_per_template=True)
    wide_text = count_breakdown(wide_model, text_length, 2, text_per_template=True)
    g = 1e9
    out = [
        ("check: our CvT-21 stages at 224, one image (CvT paper: 7.1)", cvt21_imagenet_macs() / g),
        ("check: our CvT-21 stages at 384, one image (CvT paper: 24.9)", cvt21_imagenet_macs(384) / g),
        ("MACs, products and convolutions (FlopCounterMode / 2; CvT's convention)", _total(rows) / g),
        ("FLOPs = 2 x MACs", 2 * _total(rows) / g),
        ("MACs without any attention product", _total(rows, True) / g),
        ("thop-style: module hooks, no functional products", thop_style(rows, elems) / g),
        ("thop + CvT/MixFormer attention rule (CvT products counted)", thop_style(rows, elems, True) / g),
        ("  same, template passed twice (MixFormer's profile_model)", thop_style(*two, True) / g),
        ("  same, and corner head 384 wide (MixFormer-CvT's HEAD_DIM)", thop_style(*wide, True) / g),
        ("MACs, search frame only", _total(search) / g),
        ("MACs without BERT", _total(no_bert) / g),
        ("MACs of the vision part only (CvT + head)", _total(vision) / g),
        ("MACs + 1 per norm element (fvcore-like norms)", (_total(rows) + norm_elems) / g),
        ("softmax, GELU, resampling elements (not in any count above)", other_elems / g),
        ("MACs, two templates (STARK-ST / MixFormer online template)", _total(two[0]) / g),
        ("MACs, two templates, text encoded with each", _total(two_text[0]) / g),
        ("thop + CvT rule, two templates, head 384, text with each", thop_style(*wide_text, True) / g),
    ]
    for n in (40, 64, 88):
        out.append((f"MACs, text of {n} tokens", _total(mac_breakdown(model, n)) / g))
    for size in (352, 384):
        out.append((f"MACs, search region {size}", _total(mac_breakdown(paper_size_model(size), text_length)) / g))
    return out


def main(argv: Optional[List[str]] = None) -> None:
    """Print the detailed component table (G) and the other ways of counting (G)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text-length", type=int, default=30)
    args = ap.parse_args(argv)
    model = paper_size_model()
    parts = detailed_components(model)
    rows, elems = count_breakdown(model, args.text_length, parts=parts)
    print(f"{'component':48s} {'template':>9s} {'search':>8s} {'total':>8s} {'thop-style':>10s}  (G)")
    for comp, t, s, h in component_table(rows, elems, [name for name, _ in parts]):
        print(f"{comp:48s} {t / 1e9:9.3f} {s / 1e9:8.3f} {(t + s) / 1e9:8.3f} {h / 1e9:10.3f}")
    print("\nother ways of counting (G; the paper: 28.8 GFLOPs):")
    for what, value in conventions(args.text_length):
        print(f"  {what:72s} {value:7.2f}")


if __name__ == "__main__":
    main()
