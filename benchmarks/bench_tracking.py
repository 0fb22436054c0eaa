"""Per-frame tracking latency of the VL trackers against their vision-only baselines (issues 4 and 6).

Every tracker runs through its real inference policy (``trackers.registry.build_tracker``: crop, model, post-processing)
at batch 1 on one fixed synthetic frame (seeded random RGB image, 480×640, fixed first box), under
``torch.inference_mode``. The trackers of one run are timed **interleaved**, frame by frame (A, B, C, A, B, C, ...), so
the ratios compare them under the same machine load. Reported per tracker:

* ``frame ms``: median per-frame latency over ``--frames`` frames after ``--warmup`` frames (p25-p75 beside it) and
  the FPS it gives;
* ``template ms``: the per-video cost of the template branch (``tracker.initialize``: template crop + template branch,
  language vector precomputed), median over several videos;
* ``language ms``: the per-video cost of encoding the video's sentence with the text encoder (VL trackers only);
* the paper's FPS (paper 000, RTX 2080Ti; PJVLT and COST: their papers' cards) for reference.

Token-language trackers (families ``pjvlt``, ``satracker``, ``cost``, ``ctrtnl``; ``bench_tracking_cases.py``): their
own language model runs inside ``tracker.initialize``, so their ``template ms`` includes tokenisation and every
language layer and ``language ms`` is that part timed alone (a share of it, not an addition). CTRTNL has two rows, a
frame that stays local (SiamRPN++ + AdaRS) and one that runs TSR over the whole frame (T^ars set below / above
every AdaRS score).

Comparisons (latency ratios, measured side by side in this run):

1. VLT_SCAR / SiamCAR at paper sizes (127/255; VLT_SCAR = the width-1.0 VLT subnet of one genome, 768-d language);
   the issue's goal is a ratio ``<= 1.2`` (paper: SiamCAR 52 FPS, VLT_SCAR 43 FPS, i.e. 1.21);
2. VLT_SCAR without / with the template cache: without it, every frame re-encodes the language and re-runs the
   template branch before tracking;
3. VLT_TT / TransT (128/256), VLT_OST / OSTrack (128/256, ViT-B/16 CE), VLT_RPN++ / SiamRPN++ (127/255);
4. PJVLT / OSTrack and COST / TransT (128/256) when both families run (PJVLT is built on OSTrack, COST on TransT).
5. CTRTNL's global frame / its local frame, and its local frame / SiamRPN++ (127/255) when ``rpn`` runs too (its
   local tracker is SiamRPN++; neither ratio has a paper value).

A family whose models are not registered (or fail to build) gets a "not available" row, so the script always runs.

Language vectors: a real encoding when the text encoder has the model's ``language_dim`` (768 at paper sizes,
BERT-base); otherwise (the packaged MiniLM is 384-d) a fixed seeded random vector of that width, the encoder's time
still counted wherever the language is (re)computed.

Usage::

    python benchmarks/bench_tracking.py                       # paper sizes, all families, CUDA when present
    python benchmarks/bench_tracking.py --small --frames 5    # tiny widths and crops: a quick smoke run
    python benchmarks/bench_tracking.py --device cpu --threads 2 --families scar --out latency.md
    python benchmarks/bench_tracking.py --device cpu --threads 1 --families pjvlt,satracker,cost,ctrtnl --frames 5
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

if str(Path(__file__).resolve().parent) not in sys.path:  # the sibling module, also when loaded by file path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tracking_cases import (CTRTNL_NOTE, TOKEN_DISPLAY, TOKEN_PAPER_FPS, build_ctrtnl_cases,  # noqa: E402
                                  build_token_case, paper_configs, resolve_genome, small_configs, token_notes)

#: paper 000's tracking speeds on one RTX 2080Ti (FPS)
PAPER_FPS: Dict[str, float] = {"siamcar": 52.0, "vlt_scar": 43.0, "transt": 32.0, "vlt_tt": 35.0,
                               "ostrack": 33.0, "vlt_ost": 31.0}
PAPER_FPS.update({k: fps for k, (fps, _) in TOKEN_PAPER_FPS.items()})
#: family key -> (VL tracker, vision-only baseline); the token-language trackers (PJVLT, SATracker, COST) alone
FAMILIES: Dict[str, Tuple[str, ...]] = {"scar": ("vlt_scar", "siamcar"), "tt": ("vlt_tt", "transt"),
                                        "ost": ("vlt_ost", "ostrack"), "rpn": ("vlt_rpnpp", "siamrpnpp"),
                                        **{k: (k,) for k in TOKEN_DISPLAY}}
DISPLAY: Dict[str, str] = {"vlt_scar": "VLT_SCAR", "siamcar": "SiamCAR", "vlt_tt": "VLT_TT", "transt": "TransT",
                           "vlt_ost": "VLT_OST", "ostrack": "OSTrack", "vlt_rpnpp": "VLT_RPN++",
                           "siamrpnpp": "SiamRPN++", **TOKEN_DISPLAY}
#: issue 4: VLT_SCAR / SiamCAR per-frame latency ratio to reach
SCAR_RATIO_GOAL = 1.2
SENTENCE = "a red car driving along the road between other cars"
FRAME_SHAPE = (480, 640)
INIT_BOX = (280.0, 200.0, 80.0, 60.0)  # x, y, w, h in the synthetic frame


# ----------------------------------------------------------------------------------------------------------------------
# language
class BenchLanguage:
    """Featurizer for the benchmark (``featurizer(sentences, attributes, has_language) -> (vectors, use_template)``).

    ``recompute=False``: returns the precomputed vector (a cached language branch). ``recompute=True``: runs the text
    encoder on every call (no cache) and returns its output when it has the model's width, the fixed vector otherwise.
    """

    def __init__(self, dim: int, vector: torch.Tensor, encoder: Any = None, recompute: bool = False):
        self.dim = int(dim)
        self.vector = vector.reshape(1, self.dim).float().cpu()
        self.encoder = encoder
        self.recompute = bool(recompute)

    def __call__(self, sentences: Sequence[Optional[str]], attributes: Sequence[Any], has_language: Sequence[bool]
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        n = len(sentences)
        vectors = self.vector.expand(n, -1)
        if self.recompute and self.encoder is not None:
            encoded = self.encoder.encode_sentences([s or SENTENCE for s in sentences]).float().cpu()
            if encoded.shape[1] == self.dim:
                vectors = encoded
        return vectors.clone(), torch.zeros(n, dtype=torch.bool)


def load_text_encoder(spec: str, device: torch.device) -> Any:
    """``default`` (the packaged MiniLM), ``none`` (no language timing) or a local model directory / cached name."""
    if spec == "none":
        return None
    from asearch.language import TextEncoder

    encoder = TextEncoder(None if spec == "default" else spec, device=device)
    with torch.inference_mode():
        encoder.encode_sentences([SENTENCE])  # load the weights now, not inside a timed call
    return encoder


def language_vector(dim: int, encoder: Any, seed: int) -> Tuple[torch.Tensor, str]:
    """The language vector fed to a model of width ``dim`` and a note on where it comes from."""
    if encoder is not None and encoder.dim == dim:
        with torch.inference_mode():
            return encoder.encode_sentences([SENTENCE]).float().cpu(), f"{dim}-d from {encoder.model_id}"
    g = torch.Generator().manual_seed(seed)
    vec = torch.randn(1, dim, generator=g)
    why = f"{encoder.model_id} gives {encoder.dim}-d" if encoder is not None else "no text encoder"
    return vec / vec.norm(), f"fixed random {dim}-d ({why})"


# ----------------------------------------------------------------------------------------------------------------------
# timing
@dataclass
class Case:
    """One timed tracker: ``step()`` tracks one frame; ``video()`` is the per-video template branch;
    ``language()`` the tracker's own per-video language part (token-language trackers), timed apart."""

    key: str
    label: str
    crops: str
    step: Callable[[], Any]
    video: Optional[Callable[[], Any]] = None
    paper_fps: Optional[float] = None
    vl: bool = False
    times: List[float] = field(default_factory=list)
    template_times: List[float] = field(default_factory=list)
    language: Optional[Callable[[], Any]] = None
    language_times: List[float] = field(default_factory=list)

    @property
    def frame_ms(self) -> float:
        """Median per-frame latency (ms)."""
        return 1000.0 * statistics.median(self.times)

    def quartiles_ms(self) -> Tuple[float, float]:
        """25th and 75th percentiles of the per-frame latency (ms)."""
        q = np.percentile(np.asarray(self.times) * 1000.0, [25, 75])
        return float(q[0]), float(q[1])

    @property
    def template_ms(self) -> Optional[float]:
        """Median per-video template-branch cost (ms), when measured."""
        return 1000.0 * statistics.median(self.template_times) if self.template_times else None

    @property
    def language_ms(self) -> Optional[float]:
        """Median per-video cost (ms) of the tracker's own language part, when it has one and it was timed."""
        return 1000.0 * statistics.median(self.language_times) if self.language_times else None


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes (CUDA synchronised before and after)."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def time_interleaved(cases: Sequence[Case], frames: int, warmup: int, device: torch.device) -> None:
    """Run ``warmup + frames`` rounds, each round one frame of every case in turn; keep the last ``frames`` times."""
    for r in range(warmup + frames):
        for case in cases:
            t = timed(case.step, device)
            if r >= warmup:
                case.times.append(t)


def time_repeated(fn: Callable[[], Any], repeats: int, warmup: int, device: torch.device) -> List[float]:
    """``repeats`` timings of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [timed(fn, device) for _ in range(repeats)]


# ----------------------------------------------------------------------------------------------------------------------
# building the cases
@dataclass
class Options:
    """Parsed command-line options (see :func:`parse_args`)."""

    device: str = "auto"
    frames: int = 20
    warmup: int = 3
    families: List[str] = field(default_factory=lambda: list(FAMILIES))
    threads: Optional[int] = None
    small: bool = False
    genome: str = "random"
    seed: int = 0
    text_encoder: str = "default"
    videos: int = 5
    out: Optional[str] = None


@dataclass
class Unavailable:
    """A tracker that could not be built (not registered yet, or failing)."""

    key: str
    reason: str


def _crops(cfg: Dict[str, Any]) -> str:
    return f"{cfg['template_size']}/{cfg['search_size']}"


def build_case(key: str, cfg: Dict[str, Any], frame: np.ndarray, device: torch.device, encoder: Any, seed: int,
               notes: List[str], no_cache: bool = False) -> List[Case]:
    """The timed case(s) of one tracker: the cached tracker and, with ``no_cache``, the same model re-running its
    language and template branch every frame."""
    from trackers import registry

    model = registry.build_model(cfg, pretrained=False)
    uses_language = bool(getattr(model, "uses_language", False))
    featurizer = recompute = None
    if uses_language:
        dim = int(model.language_dim)
        vector, where = language_vector(dim, encoder, seed)
        note = f"{DISPLAY[key]} language vector: {where}"
        if note not in notes:
            notes.append(note)
        featurizer = BenchLanguage(dim, vector)
        recompute = BenchLanguage(dim, vector, encoder, recompute=True)
    tracker = registry.build_tracker(model, cfg, featurizer=featurizer, device=device)
    language = SENTENCE if uses_language else None
    with torch.inference_mode():
        tracker.initialize(frame, INIT_BOX, language)

    def video() -> None:  # one new video: template crop + template branch (language vector precomputed)
        tracker.initialize(frame, INIT_BOX, language)

    cases = [Case(key, DISPLAY[key], _crops(cfg), lambda: tracker.track(frame), video, PAPER_FPS.get(key),
                  uses_language)]
    if no_cache:
        plain = registry.build_tracker(model, cfg, featurizer=recompute, device=device)

        def uncached() -> None:  # language + template branch recomputed, then the frame
            plain.initialize(frame, INIT_BOX, language)
            plain.track(frame)

        cases.append(Case(key + ":no_cache", f"{DISPLAY[key]} without template cache", _crops(cfg), uncached,
                          None, None, uses_language))
    return cases


def build_token_row(key: str, small: bool, frame: np.ndarray, device: torch.device, notes: List[str]) -> List[Case]:
    """The cases of a token-language tracker (PJVLT, SATracker, COST: :func:`bench_tracking_cases.build_token_case`;
    CTRTNL: two, :func:`bench_tracking_cases.build_ctrtnl_cases`), its own language part timed per video; its notes
    are added to ``notes``."""
    built = (build_ctrtnl_cases(small, frame, INIT_BOX, SENTENCE, device) if key == "ctrtnl"
             else [build_token_case(key, small, frame, INIT_BOX, SENTENCE, device)])
    extra = [CTRTNL_NOTE] if key == "ctrtnl" else []
    for n in [*(t.note for t in built), *token_notes(), *extra]:
        if n not in notes:
            notes.append(n)
    return [Case(t.key, t.label, t.crops, t.step, t.video, t.paper_fps, True, language=t.language) for t in built]


# ----------------------------------------------------------------------------------------------------------------------
# report
@dataclass
class Report:
    """Everything measured in one run."""

    options: Options
    device: torch.device
    threads: int
    genome: Any
    cases: List[Case]
    unavailable: List[Unavailable]
    language_times: List[float]
    encoder_id: Optional[str]
    notes: List[str]

    def case(self, key: str) -> Optional[Case]:
        """The case of ``key`` (e.g. ``vlt_scar``, ``vlt_scar:no_cache``), or ``None``."""
        return next((c for c in self.cases if c.key == key), None)

    @property
    def language_ms(self) -> Optional[float]:
        """Median per-video sentence-encoding time (ms), when a text encoder was timed."""
        return 1000.0 * statistics.median(self.language_times) if self.language_times else None

    def ratios(self) -> List[Dict[str, Any]]:
        """The comparisons: ``{'name', 'ratio' (None = not available), 'paper', 'goal', 'met', 'reason'}``."""
        rows: List[Dict[str, Any]] = []
        missing = {u.key: u.reason for u in self.unavailable}

        def add(name: str, num: str, den: str, paper: Optional[float] = None, goal: Optional[float] = None) -> None:
            a, b = self.case(num), self.case(den)
            ratio = a.frame_ms / b.frame_ms if a is not None and b is not None else None
            reason = missing.get(num.split(":")[0]) or missing.get(den)
            rows.append({"name": name, "ratio": ratio, "paper": paper, "goal": goal,
                         "met": None if ratio is None or goal is None else ratio <= goal, "reason": reason})

        fams = self.options.families
        if "scar" in fams:
            add("VLT_SCAR / SiamCAR", "vlt_scar", "siamcar", PAPER_FPS["siamcar"] / PAPER_FPS["vlt_scar"],
                SCAR_RATIO_GOAL)
            add("VLT_SCAR without / with template cache", "vlt_scar:no_cache", "vlt_scar")
        if "tt" in fams:
            add("VLT_TT / TransT", "vlt_tt", "transt", PAPER_FPS["transt"] / PAPER_FPS["vlt_tt"])
        if "ost" in fams:
            add("VLT_OST / OSTrack", "vlt_ost", "ostrack", PAPER_FPS["ostrack"] / PAPER_FPS["vlt_ost"])
        if "rpn" in fams:
            add("VLT_RPN++ / SiamRPN++", "vlt_rpnpp", "siamrpnpp")
        if "pjvlt" in fams and "ost" in fams:  # the papers' FPS are of different cards: no paper ratio
            add("PJVLT / OSTrack", "pjvlt", "ostrack")
        if "cost" in fams and "tt" in fams:
            add("COST / TransT", "cost", "transt")
        if "ctrtnl" in fams:  # what a frame that goes global (TSR) costs over one that stays local
            add("CTRTNL global / local frame", "ctrtnl:tsr", "ctrtnl")
            if "rpn" in fams:
                add("CTRTNL local frame / SiamRPN++", "ctrtnl", "siamrpnpp")
        return rows

    def format(self) -> str:
        """The plain-text / markdown report: set-up, latency table, ratio table, issue-4 goal."""
        o = self.options
        dev = str(self.device)
        if self.device.type == "cuda":
            dev += f" ({torch.cuda.get_device_name(self.device)})"
        lines = [
            "# Tracking latency (batch 1, per frame)",
            "",
            f"- device: {dev}; torch {torch.__version__}; CPU threads: {self.threads}; "
            f"{platform.processor() or platform.machine()}",
            f"- sizes: {'small (tiny widths and crops, smoke run)' if o.small else 'paper'}; frames timed: {o.frames} "
            f"after {o.warmup} warm-up, trackers interleaved frame by frame; synthetic {FRAME_SHAPE[0]}x"
            f"{FRAME_SHAPE[1]} frame",
            f"- VLT genome ({o.genome}, seed {o.seed}): {self.genome.to_official()}",
            f"- text encoder of the pooled-language rows: {self.encoder_id or 'none (language cost not timed)'}",
            "- paper FPS: paper 000's on an RTX 2080Ti, unless a note below names another card",
        ]
        lines += [f"- {n}" for n in self.notes]
        lines += ["", "| tracker | crops | frame ms (median) | p25-p75 ms | FPS | template ms/video | "
                      "language ms/video | paper FPS |",
                  "|---|---|---|---|---|---|---|---|"]
        lang = self.language_ms
        for fam in o.families:
            for key in FAMILIES[fam]:
                for case in [c for c in self.cases if c.key.split(":")[0] == key]:
                    lo, hi = case.quartiles_ms()
                    tmpl = "-" if case.template_ms is None else f"{case.template_ms:.1f}"
                    own = case.language_ms
                    if own is None and case.vl and case.language is None and case.video is not None:
                        own = lang
                    lms = "-" if own is None else f"{own:.1f}"
                    paper = "-" if case.paper_fps is None else f"{case.paper_fps:.0f}"
                    lines.append(f"| {case.label} | {case.crops} | {case.frame_ms:.1f} | {lo:.1f}-{hi:.1f} | "
                                 f"{1000.0 / case.frame_ms:.1f} | {tmpl} | {lms} | {paper} |")
                missing = [u for u in self.unavailable if u.key == key]
                if not missing and self.case(key) is None:
                    missing = [Unavailable(key, "not measured")]
                for u in missing:
                    paper = f"{PAPER_FPS[key]:.0f}" if key in PAPER_FPS else "-"
                    lines.append(f"| {DISPLAY[key]} | - | not available ({u.reason}) | - | - | - | - | {paper} |")
        ratios = self.ratios()
        if ratios:  # none when only the token-language families run without their baselines
            lines += ["", "| comparison (latency ratio) | measured | paper (2080Ti) | goal | met |",
                      "|---|---|---|---|---|"]
        for r in ratios:
            measured = f"{r['ratio']:.3f}" if r["ratio"] is not None else f"not available ({r['reason']})"
            paper = "-" if r["paper"] is None else f"{r['paper']:.3f}"
            goal = "-" if r["goal"] is None else f"<= {r['goal']}"
            met = "-" if r["met"] is None else ("yes" if r["met"] else "no")
            lines.append(f"| {r['name']} | {measured} | {paper} | {goal} | {met} |")
        scar = next((r for r in ratios if r["name"] == "VLT_SCAR / SiamCAR"), None)
        if scar is not None:
            lines.append("")
            if scar["ratio"] is None:
                lines.append(f"Issue 4 goal: VLT_SCAR / SiamCAR latency <= {SCAR_RATIO_GOAL}: not measured")
            else:
                where = f"measured {scar['ratio']:.3f} on {dev}"
                if o.small:
                    where += "; small sizes: a smoke run, the goal is for paper sizes"
                lines.append(f"Issue 4 goal: VLT_SCAR / SiamCAR latency <= {SCAR_RATIO_GOAL}: "
                             f"{'MET' if scar['met'] else 'NOT MET'} ({where})")
        return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------------------
# driver
def parse_args(argv: Optional[Sequence[str]] = None) -> Options:
    """Command-line options -> :class:`Options` (``SystemExit`` with a message on bad values)."""
    p = argparse.ArgumentParser(description="Per-frame tracking latency: VL trackers vs their vision-only baselines.")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--frames", type=int, default=20, help="timed frames per tracker (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed frames first (default 3)")
    p.add_argument("--families", default=",".join(FAMILIES),
                   help=f"comma list of {', '.join(FAMILIES)} (default all)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--small", action="store_true", help="tiny widths and crops (a quick smoke run)")
    p.add_argument("--genome", default="random",
                   help="VLT genome: random (seeded), zeros, or an architecture file / official JSON list")
    p.add_argument("--seed", type=int, default=0, help="seed of the random genome, weights and frame (default 0)")
    p.add_argument("--text-encoder", default="default",
                   help="default (packaged MiniLM), none, or a local model directory / cached Hugging Face name")
    p.add_argument("--videos", type=int, default=5, help="template-branch timings per tracker (default 5)")
    p.add_argument("--out", default=None, help="also write the report to this file")
    a = p.parse_args(argv)
    fams = [f.strip() for f in a.families.split(",") if f.strip()]
    bad = [f for f in fams if f not in FAMILIES]
    if bad or not fams:
        p.error(f"--families: unknown family {bad[0] if bad else '(empty)'!r}; choose from {', '.join(FAMILIES)}")
    for name in ("frames", "videos"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(a, name)}")
    if a.warmup < 0:
        p.error(f"--warmup must be >= 0, got {a.warmup}")
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available on this machine")
    return Options(a.device, a.frames, a.warmup, fams, a.threads, a.small, a.genome, a.seed, a.text_encoder,
                   a.videos, a.out)


def run(options: Options) -> Report:
    """Build the trackers of the chosen families, time them and return the :class:`Report`."""
    from asearch.runtime import resolve_device, seed_everything

    if options.threads is not None:
        torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    seed_everything(options.seed)
    genome = resolve_genome(options.genome, options.seed)
    configs = (small_configs if options.small else paper_configs)(genome)
    frame = np.random.default_rng(options.seed).integers(0, 256, (*FRAME_SHAPE, 3), dtype=np.uint8)
    cases: List[Case] = []
    unavailable: List[Unavailable] = []
    notes: List[str] = []
    encoder = load_text_encoder(options.text_encoder, device)
    for fam in options.families:
        for key in FAMILIES[fam]:
            try:
                if key in TOKEN_DISPLAY:
                    cases += build_token_row(key, options.small, frame, device, notes)
                    continue
                cases += build_case(key, configs[key], frame, device, encoder, options.seed, notes,
                                    no_cache=(key == "vlt_scar"))
            except Exception as exc:  # noqa: BLE001 -- a family being written elsewhere: report, don't crash
                if fam == "scar":
                    raise
                unavailable.append(Unavailable(key, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"))
    with torch.inference_mode():
        for case in cases:
            if case.video is not None:
                case.template_times = time_repeated(case.video, options.videos, 1, device)
            if case.language is not None:
                case.language_times = time_repeated(case.language, options.videos, 1, device)
        language_times: List[float] = []
        if encoder is not None and any(c.vl and c.language is None for c in cases):
            language_times = time_repeated(lambda: encoder.encode_sentences([SENTENCE]), options.videos, 1, device)
        time_interleaved(cases, options.frames, options.warmup, device)
    return Report(options, device, torch.get_num_threads(), genome, cases, unavailable, language_times,
                  None if encoder is None else f"{encoder.model_id} ({encoder.dim}-d)", notes)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark and print (and optionally write) the report; returns the exit status."""
    options = parse_args(argv)
    report = run(options)
    text = report.format()
    print(text, end="")
    if options.out:
        from asearch.io import atomic_write_text

        atomic_write_text(options.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
