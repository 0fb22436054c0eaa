"""``asearch demo``: the whole ASearch pipeline, small, on the embedded synthetic benchmark, with a report.

Stages (each is the code a researcher runs at scale, fed a small config from ``experiments/demo/``):

1. ``data``: generate the synthetic vision-language benchmark (train/val/test splits) with
   :func:`asearch.data.synthetic.generate_benchmark`;
2. ``pretrain``: train the VLT_SCAR supernet with uniform single-path sampling (:func:`asearch.training.recipes.
   run_pretrain`, i.e. ``asearch pretrain``);
3. ``search`` / ``search_random``: evolutionary search on Ray by validation SUC (``asearch search``), and the random
   baseline with the same budget (``asearch search --mode random``);
4. ``export``: the best architecture JSON and the subnet's inherited weights (``asearch export --weights``);
5. ``retrain`` / ``baseline``: retrain the searched subnet as VLT_SCAR from its inherited weights (subnet, neck, head)
   (:func:`~asearch.training.recipes.run_retrain`, ``asearch retrain``) and train the vision-only SiamCAR baseline
   with the same steps, batch and data;
6. ``untrained``: the searched architecture with freshly initialised weights (a self-describing checkpoint built by
   the model registry, no training) - the floor the training stages are measured against;
7. ``track``: the test split with the three trackers (``asearch track``), plus the retrained VLT_SCAR tracked
   without language (zero vectors) to show what the language contributes;
8. ``report``: OPE under the ``lasot`` protocol (:func:`asearch.evaluation.evaluate_trackers`), ``report.md``
   with tables and plots, and ``summary.json``.

Layout of the demo folder ``DIR``::

    demo.json                  the settings of this demo folder (config file, seed); a re-run must match them
    stages/NN_<stage>.json     one marker per finished stage (its outputs and seconds), written atomically
    configs/<stage>.yaml       the exact experiment configs each stage ran (reusable with the asearch commands)
    data/                      the synthetic benchmark (LaSOT layout)
    pretrain/ search/ search_random/ export/ retrain/ baseline/ untrained/    stage outputs
    results/<tracker>/         per-sequence results of the test split
    report.md, summary.json, success_plot.png, precision_plot.png, search_comparison.png

Re-running with the same ``DIR`` skips every stage that has a marker; a stage that was interrupted resumes through
its own mechanism (``--resume`` of pretrain / retrain / search, the tracking runner's skipping of finished videos).
Paths inside markers and ``summary.json`` are relative to ``DIR``.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from asearch.config import apply_overrides, experiments_dir, from_dict, load_yaml, to_dict
from asearch.data.synthetic import SyntheticConfig
from asearch.errors import ASearchError, ConfigError
from asearch.demo_report import (TRACKERS, compared_search_scores, plot_search_comparison, render_demo_report,
                                 search_records)
from asearch.io import atomic_torch_save, atomic_write_json, atomic_write_text

__all__ = [
    "DemoConfig", "StageFiles", "EvaluationSettings", "STAGES", "STAGE_OUTPUTS", "TRACKERS", "default_config_path",
    "load_demo_config", "run_demo", "run_command", "StageLog", "search_records", "plot_search_comparison",
    "render_demo_report",
]

#: stage names in pipeline order (marker files are ``stages/NN_<name>.json``)
STAGES = ("data", "pretrain", "search", "search_random", "export", "retrain", "baseline", "untrained", "track",
          "report")

#: what each stage writes inside the demo folder (removed when an earlier stage runs again: stale inputs)
STAGE_OUTPUTS: Dict[str, Tuple[str, ...]] = {
    "data": ("data",), "pretrain": ("pretrain",), "search": ("search",), "search_random": ("search_random",),
    "export": ("export",), "retrain": ("retrain",), "baseline": ("baseline",), "untrained": ("untrained",),
    "track": ("results",),
    "report": ("report.md", "summary.json", "success_plot.png", "precision_plot.png", "search_comparison.png"),
}


PathLike = Union[str, Path]


# ----------------------------------------------------------------------------------------------------------------
# configuration


@dataclass
class StageFiles:
    """Experiment configs of the stages, relative to the demo YAML (each one a config of an ``asearch`` command)."""

    pretrain: str = "pretrain.yaml"
    search: str = "search.yaml"
    retrain: str = "retrain.yaml"
    baseline: str = "siamcar.yaml"
    track: str = "track.yaml"


@dataclass
class EvaluationSettings:
    """How the trackers are run and scored on the synthetic benchmark."""

    split: str = "test"
    protocol: str = "lasot"
    batch: int = 8


@dataclass
class DemoConfig:
    """The demo: the synthetic benchmark, the stage configs and per-stage ``--set`` overrides.

    ``overrides`` maps a stage (``pretrain``, ``search``, ``retrain``, ``baseline``, ``track``) to ``key=value``
    strings applied on top of that stage's YAML (the ``fast`` variant shrinks the budget this way); the ``retrain``
    overrides apply to the ``baseline`` too (before its own), so both trainings keep the same budget.
    ``retrain_from_supernet``: start the VLT_SCAR retraining from the weights the subnet inherits from the supernet
    (paper 000: the retrained network reuses pretrained weights; here the supernet pretrained on the synthetic data
    stands in for the SPOS ImageNet supernet). What is inherited is the retrain config's ``retrain.inherit``: by
    default the whole pretrained tracker on the searched path (subnet, neck and head), i.e. the network the search
    scored.
    """

    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    configs: StageFiles = field(default_factory=StageFiles)
    overrides: Dict[str, List[str]] = field(default_factory=dict)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    retrain_from_supernet: bool = True

    def __post_init__(self) -> None:
        known = ("pretrain", "search", "retrain", "baseline", "track")
        for stage in self.overrides:
            if stage not in known:
                raise ConfigError(f"demo config: key 'overrides.{stage}' is not a stage with a config "
                                  f"(known: {', '.join(known)})")
        if self.evaluation.batch < 1:
            raise ConfigError(f"demo config: key 'evaluation.batch' must be >= 1, got {self.evaluation.batch}")


def default_config_path(fast: bool = False) -> Path:
    """``experiments/demo/demo.yaml`` (or ``fast.yaml``) of this checkout."""
    return experiments_dir() / "demo" / ("fast.yaml" if fast else "demo.yaml")


def load_demo_config(path: Optional[PathLike] = None, fast: bool = False, overrides: Sequence[str] = ()
                     ) -> Tuple[DemoConfig, Path]:
    """Read a demo YAML (default: :func:`default_config_path`); returns the config and the folder that the
    stage config paths are relative to."""
    path = Path(path) if path is not None else default_config_path(fast)
    data = apply_overrides(load_yaml(path), overrides)
    cfg = from_dict(DemoConfig, data, source=str(path))
    cfg.synthetic.validate()
    return cfg, path.resolve().parent


# ----------------------------------------------------------------------------------------------------------------
# stage markers


class StageLog:
    """Stage markers of a demo folder: ``stages/NN_<name>.json`` = ``{stage, outputs, seconds, finished}``.

    A stage with a marker is skipped. A stage without one runs (resuming from what it left, through its own
    mechanism); before it runs, the markers of the later stages and their outputs (``outputs``: stage -> paths
    relative to the folder, default :data:`STAGE_OUTPUTS`) are removed, since their inputs may change.
    """

    def __init__(self, out_dir: PathLike, progress: bool = True,
                 outputs: Optional[Mapping[str, Sequence[str]]] = None):
        self.out = Path(out_dir)
        self.outputs = dict(STAGE_OUTPUTS if outputs is None else outputs)
        self.folder = self.out / "stages"
        self.progress = progress
        self.seconds: Dict[str, float] = {}
        self.skipped: List[str] = []

    def path(self, name: str) -> Path:
        """Marker file of stage ``name``."""
        return self.folder / f"{STAGES.index(name) + 1:02d}_{name}.json"

    def marker(self, name: str) -> Optional[Dict[str, Any]]:
        """The marker of ``name`` or ``None`` when the stage has not finished."""
        p = self.path(name)
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text())
        except json.JSONDecodeError:
            return None  # written atomically, so only a hand edit gets here: run the stage again
        return data if isinstance(data, dict) and "outputs" in data else None

    def run(self, name: str, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        """Run stage ``name`` unless its marker exists; returns its outputs (from the marker when skipped)."""
        number = STAGES.index(name) + 1
        done = self.marker(name)
        if done is not None:
            self.seconds[name] = float(done.get("seconds", 0.0))
            self.skipped.append(name)
            self._say(f"[{number}/{len(STAGES)}] {name}: done before ({self.seconds[name]:.1f} s), skipped")
            return dict(done["outputs"])
        for later in STAGES[STAGES.index(name) + 1:]:  # their inputs are about to change: run them again, anew
            if self.path(later).is_file():
                self.path(later).unlink()
                for rel in self.outputs.get(later, ()):
                    target = self.out / rel
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
        self._say(f"[{number}/{len(STAGES)}] {name} ...")
        t0 = time.perf_counter()
        outputs = fn()
        seconds = time.perf_counter() - t0
        self.seconds[name] = seconds
        atomic_write_json(self.path(name), {"stage": name, "outputs": outputs, "seconds": seconds,
                                            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self._say(f"[{number}/{len(STAGES)}] {name}: {seconds:.1f} s")
        return outputs

    def _say(self, text: str) -> None:
        if self.progress:
            print(f"asearch demo {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# helpers


def run_command(argv: Sequence[str]) -> None:
    """Run an ``asearch`` subcommand in this process exactly as the CLI would (errors propagate as exceptions)."""
    from asearch.cli import build_parser

    args = build_parser().parse_args([str(a) for a in argv])
    rc = args.func(args)
    if rc:
        raise ASearchError(f"`asearch {' '.join(str(a) for a in argv)}` exited with status {rc}")


def _rel(path: PathLike, base: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _fill_roots(node: Any, root: str) -> Any:
    """Set ``root`` of every dataset entry naming the ``synthetic`` benchmark with no root of its own."""
    if isinstance(node, dict):
        out = {k: _fill_roots(v, root) for k, v in node.items()}
        if (out.get("name") == "synthetic" or out.get("dataset") == "synthetic") and out.get("root") is None \
                and ("root" in out or "split" in out):
            out["root"] = root
        return out
    if isinstance(node, list):
        return [_fill_roots(v, root) for v in node]
    return node


def stage_config(src: Path, overrides: Sequence[str], data_root: Path, seed: int, cache_dir: Path) -> Dict[str, Any]:
    """A stage's experiment config as plain data: its YAML, the demo overrides, the benchmark root, the seed and the
    shared language-feature cache."""
    data = apply_overrides(load_yaml(src), list(overrides))
    data = _fill_roots(data, str(data_root))
    data["seed"] = int(seed)
    lang = data.get("language")
    if isinstance(lang, dict) and lang.get("cache_dir") is None:
        lang["cache_dir"] = str(cache_dir)
    return data


def _latest_checkpoint(run_dir: Path) -> Optional[Path]:
    for name in ("checkpoints/latest.pt", "latest.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def _check_settings(out: Path, settings: Dict[str, Any]) -> None:
    """Refuse to resume a demo folder made with other settings (they would mix incompatible stages)."""
    path = out / "demo.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        if isinstance(old, dict):
            for key in ("config", "seed", "config_data"):
                if old.get(key) != settings.get(key):
                    raise ConfigError(f"{path}: this demo folder was made with {key} = {old.get(key)!r}, not "
                                      f"{settings.get(key)!r}; use another --out (or delete {out}) to start over")
            return
    atomic_write_json(path, settings)


def run_demo(out_dir: PathLike, fast: bool = False, seed: int = 0, config: Optional[PathLike] = None,
             overrides: Sequence[str] = (), progress: bool = True) -> Dict[str, Any]:
    """Run (or resume) the whole demo in ``out_dir``; returns the content of ``summary.json``.

    Args:
        out_dir: the demo folder (created; a folder of an earlier run with the same settings is resumed).
        fast: the small variant (``experiments/demo/fast.yaml``) when ``config`` is not given.
        seed: seed of the benchmark and of every stage.
        config: a demo YAML instead of the default one.
        overrides: ``key=value`` overrides of the demo YAML (e.g. ``synthetic.videos=30``).
        progress: progress bars and one line per stage on stderr.
    """
    cfg, cfg_dir = load_demo_config(config, fast, overrides)
    cfg.synthetic.seed = int(seed)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config_path = Path(config).resolve() if config is not None else default_config_path(fast)
    settings = {"config": config_path.name if config is None else str(config_path), "seed": int(seed),
                "config_data": to_dict(cfg)}
    _check_settings(out, settings)
    log = StageLog(out, progress)
    data_root = out / "data"
    cache_dir = out / "language_cache"

    # the exact configs every stage runs with, written where a researcher can reuse them
    sources = {"pretrain": cfg.configs.pretrain, "search": cfg.configs.search, "retrain": cfg.configs.retrain,
               "baseline": cfg.configs.baseline, "track": cfg.configs.track}
    cfg_files: Dict[str, Path] = {}
    for stage, rel in sources.items():
        src = (cfg_dir / rel)
        if not src.is_file():
            raise ConfigError(f"demo config: key 'configs.{stage}': {src} does not exist")
        extra = cfg.overrides.get(stage, [])
        if stage == "baseline":  # the baseline gets the retraining budget, whatever overrides change it
            extra = list(cfg.overrides.get("retrain", [])) + list(extra)
        data = stage_config(src, extra, data_root, seed, cache_dir)
        if stage == "track":
            data.pop("seed", None)  # tracking is deterministic; its config has no seed
        cfg_files[stage] = out / "configs" / f"{stage}.yaml"
        import yaml

        atomic_write_text(cfg_files[stage], f"# written by asearch demo from {rel} (+ demo overrides)\n"
                          + yaml.safe_dump(data, sort_keys=False))

    ray_started = False
    try:
        outputs: Dict[str, Dict[str, Any]] = {}
        outputs["data"] = log.run("data", lambda: _stage_data(cfg.synthetic, data_root, out, progress))
        outputs["pretrain"] = log.run("pretrain", lambda: _stage_train(
            "pretrain", cfg_files["pretrain"], out / "pretrain", out, progress))
        supernet = out / outputs["pretrain"]["checkpoint"]
        if log.marker("search") is None or log.marker("search_random") is None:
            ray_started = _start_ray(cfg_files["search"])
        outputs["search"] = log.run("search", lambda: _stage_search(
            cfg_files["search"], supernet, out / "search", "evolution", out, progress))
        outputs["search_random"] = log.run("search_random", lambda: _stage_search(
            cfg_files["search"], supernet, out / "search_random", "random", out, progress))
        if ray_started:
            import ray

            ray.shutdown()
            ray_started = False
        outputs["export"] = log.run("export", lambda: _stage_export(out / "search", supernet, out / "export", out))
        arch = out / outputs["export"]["arch_json"]
        weights = out / outputs["export"]["weights"] if cfg.retrain_from_supernet else None
        outputs["retrain"] = log.run("retrain", lambda: _stage_train(
            "retrain", cfg_files["retrain"], out / "retrain", out, progress, arch=arch, weights=weights))
        outputs["baseline"] = log.run("baseline", lambda: _stage_train(
            "retrain", cfg_files["baseline"], out / "baseline", out, progress))
        outputs["untrained"] = log.run("untrained", lambda: _stage_untrained(
            cfg_files["retrain"], arch, seed, out / "untrained", out))
        checkpoints = {"vlt_scar": out / outputs["retrain"]["checkpoint"],
                       "siamcar": out / outputs["baseline"]["checkpoint"],
                       "vlt_scar_untrained": out / outputs["untrained"]["checkpoint"],
                       "vlt_scar_no_language": out / outputs["retrain"]["checkpoint"]}
        outputs["track"] = log.run("track", lambda: _stage_track(
            checkpoints, cfg_files["track"], data_root, cfg.evaluation, out, progress))
        outputs["report"] = log.run("report", lambda: _stage_report(out, cfg, outputs, log.seconds, seed, fast))
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    summary = json.loads((out / "summary.json").read_text())
    # a resumed run reports the seconds each stage took when it ran, and which stages were skipped now
    summary["skipped_now"] = list(log.skipped)
    return summary


def _stage_data(syn: SyntheticConfig, data_root: Path, out: Path, progress: bool) -> Dict[str, Any]:
    from asearch.data.synthetic import generate_benchmark

    if data_root.exists() and not (data_root / "meta.json").is_file():
        shutil.rmtree(data_root)  # an interrupted generation (meta.json is written last): start it again
    bar = None
    callback = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=syn.videos, desc="synthetic videos", unit="video")

        def callback(done: int, total: int, name: str) -> None:
            bar.update(1)
    try:
        generate_benchmark(data_root, config=syn, overwrite=True, progress=callback)
    finally:
        if bar is not None:
            bar.close()
    meta = json.loads((data_root / "meta.json").read_text())
    return {"root": _rel(data_root, out), "splits": meta["splits"], "videos": syn.videos, "frames": syn.frames}


def _stage_train(kind: str, cfg_file: Path, run_dir: Path, out: Path, progress: bool, arch: Optional[Path] = None,
                 weights: Optional[Path] = None) -> Dict[str, Any]:
    from asearch.training import recipes

    resume = _latest_checkpoint(run_dir) is not None
    if kind == "pretrain":
        result = recipes.run_pretrain(str(cfg_file), out_dir=str(run_dir), resume=resume, progress=progress)
    else:
        result = recipes.run_retrain(str(cfg_file), arch=None if arch is None else str(arch),
                                     weights=None if weights is None else str(weights), out_dir=str(run_dir),
                                     resume=resume, progress=progress)
    ckpt = Path(result["checkpoint"])
    info = {"checkpoint": _rel(ckpt, out), "resumed": resume}
    for key in ("steps", "final_loss"):
        if key in result and isinstance(result[key], (int, float)):
            info[key] = float(result[key]) if key == "final_loss" else int(result[key])
    if result.get("inherited"):
        info["inherited"] = {"subnet_tensors": int(result["inherited"]["tensors"]),
                             "neck_head_tensors": int(result["inherited"]["tracker_tensors"])}
    return info


def _start_ray(search_cfg: Path) -> bool:
    """One local Ray for both searches (they would each start and stop one otherwise); ``True`` if started here."""
    from asearch.search.evolution import SearchConfig

    scfg = from_dict(SearchConfig, load_yaml(search_cfg), source=str(search_cfg))
    if scfg.ray.backend != "tune":
        return False
    from asearch.search.ray_search import init_ray, resolve_resources

    return init_ray(resolve_resources(scfg.ray))


def _stage_search(cfg_file: Path, supernet: Path, run_dir: Path, mode: str, out: Path, progress: bool
                  ) -> Dict[str, Any]:
    argv = ["search", "--config", cfg_file, "--supernet", supernet, "--out", run_dir, "--mode", mode]
    if not progress:
        argv.append("--no-progress")
    if (run_dir / "search_state.json").is_file():
        argv.append("--resume")
    run_command(argv)
    from asearch.search.evolution import SearchConfig

    scfg = from_dict(SearchConfig, load_yaml(cfg_file), source=str(cfg_file))
    rows = search_records(run_dir / "candidates.csv")
    best = max(rows, key=lambda r: r["suc"])
    backend = (f"Ray Tune, {scfg.ray.workers} workers" if scfg.ray.backend == "tune"
               else "in-process (ray.backend=local)")
    result = {"dir": _rel(run_dir, out), "backend": backend, "candidates": len(rows),
              "generations": len({r["generation"] for r in rows}),
              "best_suc": best["suc"], "best_genome": json.loads(best["genome"]), "best_flops": best["flops"],
              "best_json": _rel(run_dir / "best.json", out)}
    from asearch.search.reeval import REEVAL_FILE, reevaluation_pick

    reeval = run_dir / REEVAL_FILE
    if scfg.final.reeval.topk > 0 and reeval.is_file():
        # the top-k re-scored with independent BN repeats (final.reeval): the pick the export takes, and its noise
        picked = reevaluation_pick(json.loads(reeval.read_text())["results"])
        result["reeval"] = {"topk": scfg.final.reeval.topk, "repeats": scfg.final.reeval.repeats,
                            "suc": picked["suc"], "suc_std": picked["suc_std"], "search_rank": picked["search_rank"],
                            "search_suc": picked["search_suc"], "genome": picked["genome"]}
    return result


def _stage_export(search_dir: Path, supernet: Path, export_dir: Path, out: Path) -> Dict[str, Any]:
    arch, weights = export_dir / "arch.json", export_dir / "subnet.pt"
    run_command(["export", "--search", search_dir, "--supernet", supernet, "--out", arch, "--weights", weights])
    from asearch import load_architecture

    a = load_architecture(arch)
    return {"arch_json": _rel(arch, out), "weights": _rel(weights, out), "genome": a.genome.to_official(),
            "flops": a.flops, "params": a.params}


def _stage_untrained(retrain_cfg: Path, arch: Path, seed: int, run_dir: Path, out: Path) -> Dict[str, Any]:
    """The searched architecture with fresh weights, as a self-describing tracker checkpoint."""
    from asearch import load_architecture
    from asearch.runtime import seed_everything
    from trackers.registry import build_info, build_model, language_record, model_config, resolve_language

    retrain_data = load_yaml(retrain_cfg)
    model_data = dict(retrain_data.get("model") or {})
    model_data["genome"] = load_architecture(arch).genome.to_official()
    model_data["spos_checkpoint"] = None
    mcfg = model_config(model_data, f"{retrain_cfg} (model)")
    seed_everything(seed)
    model = build_model(mcfg, pretrained=False)
    ckpt = run_dir / "model.pt"
    info = build_info(mcfg)
    info["language"] = language_record(resolve_language(retrain_data.get("language"), None, f"{retrain_cfg}"))
    atomic_torch_save({"model": model.state_dict(), "build_info": info}, ckpt)
    return {"checkpoint": _rel(ckpt, out), "params": int(sum(p.numel() for p in model.parameters()))}


def _stage_track(checkpoints: Mapping[str, Path], track_cfg: Path, data_root: Path, ev: EvaluationSettings,
                 out: Path, progress: bool) -> Dict[str, Any]:
    done = {}
    for name, ckpt in checkpoints.items():
        res = out / "results" / name
        argv = ["track", "--config", track_cfg, "--checkpoint", ckpt, "--dataset", "synthetic", "--root", data_root,
                "--split", ev.split, "--out", res, "--batch", str(ev.batch)]
        if not progress:
            argv.append("--no-progress")
        if name == "vlt_scar_no_language":
            argv += ["--set", "language.enabled=false"]
        run_command(argv)
        done[name] = _rel(res, out)
    return {"results": done}


def _stage_report(out: Path, cfg: DemoConfig, outputs: Mapping[str, Mapping[str, Any]],
                  seconds: Mapping[str, float], seed: int, fast: bool) -> Dict[str, Any]:
    from asearch.evaluation import evaluate_trackers, load_sequences, plot_precision, plot_success

    seqs = load_sequences("synthetic", root=str(out / "data"), split=cfg.evaluation.split)
    names = list(TRACKERS)
    table, results = evaluate_trackers([out / "results" / n for n in names], seqs, protocol=cfg.evaluation.protocol,
                                       names=[TRACKERS[n][0] for n in names])
    plot_success(results, out / "success_plot.png", title="Success plots of OPE, synthetic test split")
    plot_precision(results, out / "precision_plot.png", title="Precision plots of OPE, synthetic test split")
    runs = {"evolution": search_records(out / outputs["search"]["dir"] / "candidates.csv"),
            "random": search_records(out / outputs["search_random"]["dir"] / "candidates.csv")}
    plot_search_comparison(runs, out / "search_comparison.png")

    weights = {"vlt_scar": _count_weights(out / outputs["retrain"]["checkpoint"]),
               "siamcar": _count_weights(out / outputs["baseline"]["checkpoint"])}
    suc = {n: float(results[TRACKERS[n][0]]["suc"]) for n in names}
    best_evo, best_rand = float(outputs["search"]["best_suc"]), float(outputs["search_random"]["best_suc"])
    reeval = {k: outputs[k].get("reeval") for k in ("search", "search_random")}
    reevaluated = all(reeval.values())
    cmp_evo, cmp_rand = compared_search_scores(reeval if reevaluated else None, best_evo, best_rand)
    prec = {n: float(results[TRACKERS[n][0]]["prec"]) for n in names}
    stage_seconds = {s: round(float(seconds.get(s, 0.0)), 2) for s in STAGES if s != "report"}
    summary: Dict[str, Any] = {
        "suc_vl": suc["vlt_scar"],
        "suc_vision_only": suc["siamcar"],
        "suc_untrained": suc["vlt_scar_untrained"],
        "suc_vl_no_language": suc["vlt_scar_no_language"],
        "suc_search_best": best_evo,
        "suc_random_best": best_rand,
        "reeval": reeval if reevaluated else None,
        "prec_vl": prec["vlt_scar"], "prec_vision_only": prec["siamcar"], "prec_untrained": prec["vlt_scar_untrained"],
        "prec_vl_no_language": prec["vlt_scar_no_language"],
        "weights_vl": weights["vlt_scar"], "weights_vision_only": weights["siamcar"],
        "arch_json": outputs["export"]["arch_json"],
        "genome": outputs["export"]["genome"],
        "flops": outputs["export"]["flops"], "params": outputs["export"]["params"],
        "protocol": cfg.evaluation.protocol, "split": cfg.evaluation.split,
        "test_videos": len(seqs),
        "seed": int(seed), "fast": bool(fast),
        "goals": {
            "vl_minus_vision_only": suc["vlt_scar"] - suc["siamcar"],
            "vl_ahead_of_vision_only": suc["vlt_scar"] > suc["siamcar"],
            "language_contribution": suc["vlt_scar"] - suc["vlt_scar_no_language"],
            "search_minus_random": cmp_evo - cmp_rand,
            "search_at_least_random": cmp_evo >= cmp_rand,
            "search_compared_on": "re-evaluation" if reevaluated else "search score",
            "search_score_minus_random": best_evo - best_rand,
        },
        "seconds": stage_seconds,
        "paths_relative_to": "this folder",
    }
    summary["seconds"]["total"] = round(sum(stage_seconds.values()), 2)
    text = render_demo_report(summary, table, outputs, cfg)
    atomic_write_text(out / "report.md", text)
    atomic_write_json(out / "summary.json", summary)
    return {"report": "report.md", "summary": "summary.json"}


def _count_weights(checkpoint: Path) -> int:
    """Number of learnable values of a tracker checkpoint (tensors of its state dict but BN statistics)."""
    from asearch.io import load_torch

    ckpt = load_torch(checkpoint)
    state = ckpt.get("model", ckpt.get("state_dict", {}))
    skip = ("running_mean", "running_var", "num_batches_tracked")
    return int(sum(v.numel() for k, v in state.items() if not k.endswith(skip)))
