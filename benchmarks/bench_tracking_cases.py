"""The cases of ``benchmarks/bench_tracking.py``: the model sections of the pooled-language families and their
baselines (:func:`paper_configs`, :func:`small_configs`, :func:`resolve_genome`) and the token-language rows, PJVLT,
SATracker and COST (:func:`build_token_case`).

The token-language trackers carry their own token-level language model (:class:`asearch.language.TokenTextEncoder`):
a video's sentence is tokenised and run through the model's language layers inside ``tracker.initialize`` (the
template branch), not fed as one pooled vector. What each model caches per video (see their inference docstrings):

* PJVLT: the template patch tokens and the word features of all J language layers (the language stream takes no
  visual input); the joint ViT layers with SAIEL / CCPIL run every frame over template, search and words;
* SATracker: the template keys / values of every stage, SAM's channel selectors and the sentence vector; the BERT
  layers run between the template stages, once per video; per frame only the search side and the corner head;
* COST: the template tokens and the averaged BERT layers (and their VLT projection); the fusion network, the
  convolutions and the VL transformer run every frame.

So the per-video cost (``template ms``) *includes* tokenisation and every language layer, and the per-frame cost
includes no language layer. ``language ms`` times that language part alone (tokenise, embed, the layers; SATracker:
its BERT layers without SAM's text updates, which need the template) so that its share of the template figure shows.

Model sections: ``experiments/<name>/paper.yaml`` (paper size) or ``tiny.yaml`` (``--small``), random init (no
pretrained files are read). The language model at paper size is BERT-base-shaped (``transformers.BertConfig()``:
12 layers, 768-d) with random weights, at small size the packaged MiniLM's config with random weights; both use the
packaged tokenizer, so nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch


# ----------------------------------------------------------------------------------------------------------------------
# model sections of the pooled-language families and their baselines
def paper_configs(genome: Any) -> Dict[str, Dict[str, Any]]:
    """Model sections at the papers' sizes (width 1.0, 768-d language, SiamCAR's ResNet-50, TransT, ViT-B/16 CE;
    SiamRPN++: the model config's defaults are pysot's siamrpn_r50_l234_dwxcorr)."""
    official = genome.to_official()
    return {
        "vlt_scar": {"name": "vlt_scar", "template_size": 127, "search_size": 255,
                     "supernet": {"width_mult": 1.0, "language_dim": 768}, "genome": official},
        "siamcar": {"name": "siamcar", "template_size": 127, "search_size": 255},
        "vlt_tt": {"name": "vlt_tt", "template_size": 128, "search_size": 256,
                   "supernet": {"width_mult": 1.0, "language_dim": 768}, "genome": official},
        "transt": {"name": "transt", "template_size": 128, "search_size": 256},
        "vlt_ost": {"name": "vlt_ost", "template_size": 128, "search_size": 256, "mixer": {"language_dim": 768},
                    "genome": [[], [], list(genome.template_mixer), list(genome.search_mixer)]},
        "ostrack": {"name": "ostrack", "template_size": 128, "search_size": 256},
        "vlt_rpnpp": {"name": "vlt_rpnpp", "template_size": 127, "search_size": 255,
                      "supernet": {"width_mult": 1.0, "language_dim": 768}, "genome": official},
        "siamrpnpp": {"name": "siamrpnpp", "template_size": 127, "search_size": 255},
    }


def small_configs(genome: Any) -> Dict[str, Dict[str, Any]]:
    """Tiny widths and crops (the ``tiny`` experiment configs): a smoke run in seconds on CPU."""
    official = genome.to_official()
    neck_head = {"neck": {"channels": 32, "center_size": 7}, "head": {"num_convs": 2, "gn_groups": 8}}
    fusion = {"d_model": 32, "nhead": 4, "num_fusion_layers": 1, "dim_feedforward": 64, "dropout": 0.0}
    vit = {"patch_size": 16, "dim": 32, "depth": 6, "heads": 2, "mlp_ratio": 2.0, "drop_path": 0.0,
           "ce_layers": [3, 5], "ce_keep_ratio": 0.7}
    rpn = {"template_size": 63, "search_size": 127, "neck": {"channels": 32, "center_size": 7}, "head": {"scales": [4]}}
    return {
        "vlt_scar": {"name": "vlt_scar", "template_size": 63, "search_size": 127, **neck_head,
                     "supernet": {"width_mult": 0.25, "language_dim": 384}, "genome": official},
        "siamcar": {"name": "siamcar", "template_size": 63, "search_size": 127, **neck_head,
                    "resnet": {"width_mult": 0.125}},
        "vlt_tt": {"name": "vlt_tt", "template_size": 64, "search_size": 128, **fusion,
                   "supernet": {"width_mult": 0.25, "language_dim": 384}, "genome": official},
        "transt": {"name": "transt", "template_size": 64, "search_size": 128, **fusion,
                   "resnet": {"width_mult": 0.125}},
        "vlt_ost": {"name": "vlt_ost", "template_size": 64, "search_size": 128, "vit": vit, "head": {"channels": 16},
                    "mixer": {"every": 3, "language_dim": 384, "roi_output": 2},
                    "genome": [[], [], list(genome.template_mixer[:2]), list(genome.search_mixer[:2])]},
        "ostrack": {"name": "ostrack", "template_size": 64, "search_size": 128, "vit": vit, "head": {"channels": 16}},
        "vlt_rpnpp": {"name": "vlt_rpnpp", **rpn, "supernet": {"width_mult": 0.25, "language_dim": 384},
                      "genome": official},
        "siamrpnpp": {"name": "siamrpnpp", **rpn, "resnet": {"width_mult": 0.125}},
    }


def resolve_genome(spec: str, seed: int) -> Any:
    """``random`` (seeded uniform genome of the ``vlt`` space), ``zeros`` (every gene 0), or an architecture file /
    official list-of-lists JSON (see :func:`asearch.search.architecture.load_genome`)."""
    from search_spaces import Genome, build_space

    if spec == "random":
        return build_space("vlt").random(seed)
    if spec == "zeros":
        return Genome.from_official([[0] * 20, [0] * 20, [0] * 4, [0] * 4])
    from asearch.search.architecture import load_genome

    return load_genome(spec)


# ----------------------------------------------------------------------------------------------------------------------
# token-language trackers
#: registry name -> table label
TOKEN_DISPLAY: Dict[str, str] = {"pjvlt": "PJVLT", "satracker": "SATracker", "cost": "COST", "ctrtnl": "CTRTNL"}
#: CTRTNL's two rows: ``tracker.threshold`` T^ars below every AdaRS score (Eq. 19 lies in [-2, 2]: every frame stays
#: local, SiamRPN++ + AdaRS) and above every score (TSR over the whole frame every frame); key suffix, label, T^ars
CTRTNL_MODES: Tuple[Tuple[str, str, float], ...] = (("", "CTRTNL (local frame: SiamRPN++ + AdaRS)", -3.0),
                                                    (":tsr", "CTRTNL (global frame: + TSR)", 3.0))
#: the papers' FPS and the card they give (paper 002 gives no speed in the toolkit's notes)
TOKEN_PAPER_FPS: Dict[str, Tuple[float, str]] = {"pjvlt": (54.0, "one GPU, paper 001"),
                                                  "cost": (36.0, "RTX 3090, paper 003")}
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@dataclass
class TokenLanguage:
    """The part of a featurizer a token-language tracker reads: the width (checked against the model's) and the
    ``language.missing`` strategy (:class:`~trackers.inference.base.TokenLanguageMixin`)."""

    dim: int
    missing: str = "zero"


@dataclass
class TokenCase:
    """One built token-language tracker: ``step`` tracks a frame, ``video`` starts a video (template branch with
    tokenisation and language layers), ``language`` runs the language part alone."""

    key: str
    label: str
    crops: str
    step: Callable[[], Any]
    video: Callable[[], Any]
    language: Callable[[], Any]
    paper_fps: Optional[float]
    note: str


def _token_section(key: str, small: bool, section: str) -> Dict[str, Any]:
    """Section ``section`` of ``experiments/<key>/tiny.yaml`` (``small``) or ``paper.yaml`` as written there."""
    import yaml

    path = EXPERIMENTS / key / ("tiny.yaml" if small else "paper.yaml")
    with open(path, encoding="utf-8") as f:
        return dict(yaml.safe_load(f)[section])


def token_config(key: str, small: bool) -> Dict[str, Any]:
    """The ``model`` section of ``experiments/<key>/tiny.yaml`` (``small``) or ``paper.yaml``."""
    return _token_section(key, small, "model")


def build_token_model(cfg: Dict[str, Any], small: bool) -> torch.nn.Module:
    """The model of ``cfg`` with random weights: MiniLM-shaped language model (``small``) or BERT-base-shaped."""
    from trackers import registry

    entry = registry.get_entry(str(cfg["name"]))
    text_config = None
    if not small:
        from transformers import BertConfig

        text_config = BertConfig()  # bert-base-uncased's shape: 12 layers, 768-d, 12 heads, vocabulary 30,522
    return entry.build_model(registry.model_config(cfg), False, text_config=text_config)


def language_work(model: torch.nn.Module, sentence: str, device: torch.device, pad_to_max: bool
                  ) -> Callable[[], Any]:
    """The per-video language part of ``model`` alone: tokenise ``sentence``, embed, run the language layers the
    model runs (``model.words`` for PJVLT / COST; SATracker: its first ``bounds[-1]`` BERT layers)."""
    has = torch.ones(1, dtype=torch.bool)

    def run() -> Any:
        lang = model.tokenize([sentence], has, device, pad_to_max=pad_to_max)
        if hasattr(model, "words"):
            return model.words(lang)
        text, mask = model.text, lang["mask"].bool()
        h = text.embed(lang["ids"])
        bias = text.attention_bias(h, mask)
        for j in range(model.bounds[-1]):
            h = text.layer(j, h, mask, bias)
        return h

    return run


def token_tracker(key: str, small: bool, threshold: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """The ``tracker`` section a token row runs with: none (the family's defaults) except for CTRTNL, whose
    ``tracker`` section of ``tiny.yaml`` / ``paper.yaml`` is read (T^ars is required) with ``threshold`` as T^ars."""
    if key != "ctrtnl":
        return None
    section = _token_section(key, small, "tracker")
    if threshold is not None:
        section["threshold"] = float(threshold)
    return section


def build_token_case(key: str, small: bool, frame: np.ndarray, box: Tuple[float, float, float, float],
                     sentence: str, device: torch.device, model: Optional[torch.nn.Module] = None,
                     threshold: Optional[float] = None, suffix: str = "", label: Optional[str] = None) -> TokenCase:
    """Build tracker ``key`` (``pjvlt``, ``satracker``, ``cost``, ``ctrtnl``) through its registered inference
    policy, start one video and return its timed callables. ``model``: an already built model of ``key`` (CTRTNL's
    two rows share one); ``threshold``: CTRTNL's T^ars; ``suffix`` / ``label``: the row's key suffix and label."""
    from trackers import registry

    cfg = token_config(key, small)
    model = build_token_model(cfg, small) if model is None else model
    tracker = registry.build_tracker(model, cfg, token_tracker(key, small, threshold),
                                     featurizer=TokenLanguage(int(model.language_dim)), device=device)
    with torch.inference_mode():
        tracker.initialize(frame, box, sentence)

    def video() -> None:  # one new video: template crop, tokenisation, language layers, template branch
        tracker.initialize(frame, box, sentence)

    text = model.text
    layers = getattr(model, "bounds", [text.layers])[-1]  # PJVLT drops the layers beyond its joint depth
    note = (f"{TOKEN_DISPLAY[key]} ({'tiny' if small else 'paper'}.yaml): language model {text.model_id} "
            f"(random init), {layers} of its layers run once per video, max {text.max_length} tokens")
    paper = TOKEN_PAPER_FPS.get(key)
    return TokenCase(key + suffix, label or TOKEN_DISPLAY[key], f"{cfg['template_size']}/{cfg['search_size']}",
                     lambda: tracker.track(frame), video,
                     language_work(model, sentence, tracker.device, tracker.pad_texts),
                     None if paper is None else paper[0], note)


def token_notes() -> List[str]:
    """The table notes on what the token rows' columns hold."""
    labels = " / ".join(TOKEN_DISPLAY.values())
    cards = "; ".join(f"{TOKEN_DISPLAY[k]} {fps:.0f} ({card})" for k, (fps, card) in TOKEN_PAPER_FPS.items())
    return [f"{labels}: token-level language inside the model; template ms/video is "
            "tracker.initialize INCLUDING tokenisation and every language layer (they run once per video and are "
            "cached), language ms/video is that language part timed alone (SATracker: its BERT layers without "
            "SAM's text updates), a share of the template figure, not added to it; frame ms runs no language layer",
            f"paper FPS of the token rows: {cards}; SATracker, CTRTNL: none given"]


#: the table note of CTRTNL's two rows
CTRTNL_NOTE = ("CTRTNL: its SiamRPN++ and AdaRS are random (no local_checkpoint), so T^ars is set below / above every "
               "AdaRS score to time a local frame (SiamRPN++ + AdaRS on its top-k proposals) and a global one (the "
               "same + TSR: backbone and neck on the whole frame, the selector over the sliding windows at the "
               "first box's size); a real video mixes the two as AdaRS decides")


def build_ctrtnl_cases(small: bool, frame: np.ndarray, box: Tuple[float, float, float, float], sentence: str,
                       device: torch.device) -> List[TokenCase]:
    """CTRTNL's two rows (:data:`CTRTNL_MODES`), one model: every frame local, every frame global."""
    model = build_token_model(token_config("ctrtnl", small), small)
    return [build_token_case("ctrtnl", small, frame, box, sentence, device, model, t, suffix, label)
            for suffix, label, t in CTRTNL_MODES]
