"""The supernet ranking check (``asearch rank``): does the supernet's fitness order subnets as stand-alone training
does? (Sciuto et al. 2019; Yu et al. 2020: weight-sharing rankings are often weak; this measures ours.)

1. **Pick** ``subnets`` (K) genomes that span the supernet's fitness range: ``pool`` (M) distinct random genomes
   (seeded by ``seed``) are scored with the search fitness (``fitness``, any ``mode`` / ``repeats``), or the
   candidates of a finished search are read (``--from-search DIR``: its ``candidates.csv``); sorted by SUC, the K at
   evenly spaced quantiles (positions ``round(linspace(0, M - 1, K))``) are kept. ``pool.jsonl`` journals the pool
   scores (a killed pick resumes with the genomes not scored yet); ``subnets.json`` holds the pick.
2. **Train stand-alone**: each subnet with the retraining recipe ``retrain.config`` (the same steps, data and seed for
   all; ``retrain.overrides`` on top), once from scratch and, with ``retrain.inherited``, once from its inherited
   supernet weights (subnet, neck and head: :func:`~asearch.training.recipes.save_inherited_weights`). The model
   section is the supernet checkpoint's own (``retrain.model_from_supernet``), so the subnet has the supernet's
   widths and sizes. Each trained model is scored on the fitness's validation videos and protocol, tracked closed
   loop (``ope``, what tracking quality means, whatever ``fitness.mode`` the supernet side uses;
   :func:`~asearch.search.fitness.score_checkpoint`; its own BN statistics).
   One **Ray Tune trial per subnet** (resources from ``ray``; ``ray.backend: local`` trains in this process). Each
   run writes ``standalone/subnet<i>/<init>.json`` when scored; training checkpoints every ``train.checkpoint_every``
   steps. A killed rank run resumes (``--resume``) with the subnets and inits not finished yet, continuing a killed
   training from its last checkpoint: nothing is trained or scored twice.
3. **Report**: ``rank.csv`` (one row per subnet: genome, supernet SUC mean and std over the repeats, stand-alone SUC
   from scratch and inherited, FLOPs, params, seconds), ``rank.json`` (Kendall τ-b and Spearman ρ of supernet vs
   stand-alone from :mod:`scipy.stats`, each with a paired bootstrap 95 % percentile interval from
   :func:`scipy.stats.bootstrap`, and the top-3 overlap), ``rank.png`` (the scatter) and a printed summary.

Bootstrap resamples in which one side is constant have no rank correlation (NaN); they are left out of the interval
(``nan_resamples`` in ``rank.json`` counts them). With few subnets the intervals are wide: ``rank.json`` says whether
each includes 0.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from asearch.config import from_dict, to_dict
from asearch.errors import ConfigError
from asearch.io import atomic_write_json, atomic_write_text
from asearch.search.evolution import RayConfig, SearchError
from asearch.search.fitness import FitnessConfig
from asearch.search.rank_stats import pick_quantiles, rank_statistics, summary_lines  # noqa: F401 (re-exported)

__all__ = ["RetrainRecipe", "RankConfig", "RankRun", "rank_statistics", "pick_quantiles", "train_subnet",
           "RANK_COLUMNS", "INITS"]

#: the stand-alone columns: from scratch, from the inherited supernet weights
INITS = ("scratch", "inherited")
RANK_COLUMNS = ("id", "supernet_suc", "supernet_suc_std", "standalone_scratch", "standalone_inherited", "flops",
                "params", "seconds", "genome")


@dataclass
class RetrainRecipe:
    """``retrain``: the stand-alone training of every subnet. ``config``: a retraining experiment YAML (relative to
    the rank YAML's folder, else to the working directory); ``overrides``: ``{dotted.key: value}`` applied on top
    (e.g. ``train.steps``, ``data.datasets.0.root``; nested mappings count as dotted keys); ``inherited``: also train from the inherited supernet
    weights; ``model_from_supernet``: the model section is the supernet checkpoint's (its widths and sizes)."""

    config: str = "retrain.yaml"
    overrides: Dict[str, Any] = field(default_factory=dict)
    inherited: bool = True
    model_from_supernet: bool = True


@dataclass
class RankConfig:
    """The whole ``asearch rank`` config (``experiments/vlt_scar/rank.yaml``)."""

    seed: int = 0
    device: str = "auto"
    subnets: int = 10
    pool: int = 50
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    retrain: RetrainRecipe = field(default_factory=RetrainRecipe)
    ray: RayConfig = field(default_factory=lambda: RayConfig(workers=1, cpus_per_trial=2.0, threads_per_trial=2))
    bootstrap: int = 2000

    def __post_init__(self) -> None:
        if self.subnets < 2:
            raise ConfigError(f"subnets: at least 2 subnets are needed for a rank correlation, got {self.subnets}")
        if self.pool < self.subnets:
            raise ConfigError(f"pool: must be >= subnets ({self.subnets}), got {self.pool}")
        if self.bootstrap < 10:
            raise ConfigError(f"bootstrap: at least 10 resamples, got {self.bootstrap}")


# ----------------------------------------------------------------------------------------------------------------------
# one stand-alone trial
@contextlib.contextmanager
def _threads(threads: Optional[int]):
    """``torch.set_num_threads(threads)`` inside the block, the previous count restored after it."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _dotted(overrides: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``retrain.overrides`` as flat ``{dotted.key: value}``: nested mappings (as ``--set
    retrain.overrides.data.datasets.0.root=DIR`` makes them) are flattened into dotted keys."""
    out: Dict[str, Any] = {}
    for k, v in overrides.items():
        if isinstance(v, Mapping) and v:
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _recipe(task: Mapping[str, Any]) -> Dict[str, Any]:
    """The retraining experiment of a trial as a dict: the recipe file, the overrides, the supernet's model."""
    from asearch.config import apply_overrides, load_yaml
    from asearch.io import load_torch

    data = load_yaml(task["recipe"])
    overrides = [f"{k}={json.dumps(v)}" for k, v in _dotted(task["overrides"]).items()]
    data = apply_overrides(data, overrides)
    if task["model_from_supernet"]:
        stored = load_torch(task["supernet"], map_location="cpu").get("config") or {}
        model = dict(stored.get("model") or {})
        if not model:
            raise ConfigError(f"{task['supernet']}: the checkpoint stores no model config; set "
                              "retrain.model_from_supernet: false and give the model in the recipe")
        model.pop("genome", None)
        data["model"] = model
    data.pop("_base_", None)
    return data


def train_subnet(task: Mapping[str, Any]) -> Dict[str, Any]:
    """Train and score one subnet stand-alone (the body of a rank trial), every init not done yet; returns
    ``{init: {"suc", "prec", "steps", "final_loss", "seconds"}}``. ``task``: ``id``, ``genome`` (official form),
    ``dir``, ``supernet``, ``recipe`` (file), ``overrides``, ``model_from_supernet``, ``inits``, ``validation``
    (the fitness's) and ``mode`` (of the stand-alone tracking: ``ope``), ``device``, ``threads``, ``cwd`` (the
    driver's working directory: relative paths resolve against it in a Ray trial)."""
    with _threads(task.get("threads")):
        return _train_subnet(task)


def _train_subnet(task: Mapping[str, Any]) -> Dict[str, Any]:
    from asearch.search import fitness
    from asearch.training import recipes
    from search_spaces.genome import Genome

    folder = Path(task["dir"])
    folder.mkdir(parents=True, exist_ok=True)
    genome = Genome.from_official(task["genome"])
    validation = from_dict(fitness.ValidationConfig, task["validation"], source="fitness.validation",
                           prefix="fitness.validation.")
    recipe = None
    videos = None
    out: Dict[str, Any] = {}
    for init in task["inits"]:
        result_file = folder / f"{init}.json"
        if result_file.is_file():
            out[init] = json.loads(result_file.read_text())
            continue
        t0 = time.perf_counter()
        recipe = recipe or _recipe(task)
        weights = None
        if init == "inherited":
            weights = folder / "inherited.pt"
            if not weights.is_file():
                recipes.save_inherited_weights(task["supernet"], genome, weights)
        run_dir = folder / init
        resume = (run_dir / "checkpoints" / "latest.pt").is_file()
        overrides = [f"train.device={task['device']}"] if task.get("device") else []
        trained = recipes.run_retrain(recipe, arch=genome, weights=weights, out_dir=run_dir,
                                      overrides=overrides, resume=resume, progress=False)
        videos = videos if videos is not None else fitness.load_validation_videos(validation)
        score = fitness.score_checkpoint(trained["checkpoint"], validation, mode=task["mode"],
                                         device=task.get("device") or "auto", videos=videos)
        record = {"suc": score["suc"], "prec": score["prec"], "steps": int(trained["steps"]),
                  "final_loss": trained.get("final_loss"), "seconds": time.perf_counter() - t0}
        atomic_write_json(result_file, record)
        out[init] = record
    return out


def _trainable(config: Dict[str, Any]) -> Dict[str, Any]:
    from asearch.search.ray_search import enter_driver_dir

    enter_driver_dir(config["task"].get("cwd"))  # relative paths (fitness.validation.root, overrides) resolve
    res = train_subnet(config["task"])
    return {f"suc_{k}": v["suc"] for k, v in res.items()}


# ----------------------------------------------------------------------------------------------------------------------
# the run
class RankRun:
    """One ``asearch rank`` run in ``out_dir`` (see the module docstring); :meth:`run` does every stage."""

    def __init__(self, cfg: RankConfig, supernet: Union[str, Path], out_dir: Union[str, Path],
                 config_path: Optional[Union[str, Path]] = None, from_search: Optional[Union[str, Path]] = None,
                 progress: bool = True):
        from asearch.training.recipes import space_from_checkpoint

        self.cfg = cfg
        self.supernet = Path(supernet).resolve()
        if not self.supernet.is_file():
            from asearch.errors import CheckpointError

            raise CheckpointError(f"supernet checkpoint not found: {supernet}")
        self.out = Path(out_dir)
        self.config_path = Path(config_path) if config_path else None
        self.from_search = Path(from_search) if from_search else None
        self.progress = progress
        self.space = space_from_checkpoint(self.supernet)
        self.recipe = self._recipe_path()

    def _recipe_path(self) -> Path:
        given = Path(self.cfg.retrain.config)
        for cand in ([self.config_path.parent / given] if self.config_path and not given.is_absolute() else []) + [given]:
            if cand.is_file():
                return cand.resolve()
        raise ConfigError(f"retrain.config: {given} not found (relative to "
                          f"{self.config_path.parent if self.config_path else 'the working directory'})")

    # -- state ---------------------------------------------------------------------------------------------------
    def _settings(self) -> Dict[str, Any]:
        from asearch.search.architecture import sha256_file

        return {"config": to_dict(self.cfg), "supernet_sha256": sha256_file(self.supernet),
                "from_search": None if self.from_search is None else str(self.from_search.resolve())}

    def start(self, resume: bool) -> None:
        """Create ``out_dir`` (or, with ``resume``, check that it holds a rank run of the same settings); warn, as
        ``asearch search`` does, when the validation videos are in the supernet's recorded training data."""
        from asearch.search.overlap import check_validation_overlap

        check_validation_overlap(self.supernet, self.cfg.fitness.validation)
        path = self.out / "rank_settings.json"
        settings = self._settings()
        if path.is_file():
            if not resume:
                raise SearchError(f"{self.out} already holds a rank run (rank_settings.json); pass --resume to "
                                  "continue it or choose another --out")
            old = json.loads(path.read_text())
            if old != json.loads(json.dumps(settings)):
                keys = sorted(k for k in set(old) | set(settings) if old.get(k) != json.loads(json.dumps(settings.get(k))))
                raise ConfigError(f"--resume: the rank run in {self.out} used other settings ({', '.join(keys)} "
                                  "differ); a resumed run must keep its config")
        elif resume:
            raise SearchError(f"--resume: no rank run in {self.out} (expected rank_settings.json)")
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, settings)

    # -- 1. pick ---------------------------------------------------------------------------------------------------
    def _pool_genomes(self) -> List[Any]:
        rng = np.random.default_rng(self.cfg.seed)
        seen, out, tries = set(), [], 0
        while len(out) < self.cfg.pool and tries < self.cfg.pool * 100:
            tries += 1
            g = self.space.random(rng)
            if g not in seen:
                seen.add(g)
                out.append(g)
        return out

    def _score_pool(self) -> List[Dict[str, Any]]:
        from tqdm.auto import tqdm

        from asearch.search.fitness import TrackingFitness

        journal = self.out / "pool.jsonl"
        done: Dict[str, Dict[str, Any]] = {}
        if journal.is_file():
            for line in journal.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a torn last line (killed while writing)
                    continue
                done[json.dumps(row["genome"])] = row
        genomes = self._pool_genomes()
        fitness = TrackingFitness(self.supernet, self.cfg.fitness, device=self.cfg.device)
        rows = []
        with tqdm(total=len(genomes), initial=sum(json.dumps(g.to_official()) in done for g in genomes),
                  desc="rank: supernet fitness", unit="cand", disable=not self.progress, dynamic_ncols=True) as bar, \
                open(journal, "a") as fh, _threads(self.cfg.ray.threads_per_trial):
            for g in genomes:
                key = json.dumps(g.to_official())
                if key not in done:
                    res = fitness(g)
                    done[key] = {"genome": g.to_official(), "suc": float(res["suc"]),
                                 "suc_std": float(res.get("suc_std", 0.0)), "seconds": float(res["seconds"])}
                    fh.write(json.dumps(done[key]) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                    bar.update(1)
                rows.append(done[key])
        return rows

    def _search_pool(self) -> List[Dict[str, Any]]:
        path = self.from_search / "candidates.csv"
        if not path.is_file():
            raise ConfigError(f"--from-search {self.from_search}: no candidates.csv (has the search finished a "
                              "generation?)")
        rows, seen = [], set()
        with open(path) as fh:
            for r in csv.DictReader(fh):
                if r["genome"] in seen:
                    continue
                seen.add(r["genome"])
                rows.append({"genome": json.loads(r["genome"]), "suc": float(r["suc"]),
                             "suc_std": float(r["suc_std"]) if r.get("suc_std") not in (None, "") else 0.0,
                             "seconds": float(r.get("seconds") or 0.0)})
        return rows

    def pick(self) -> List[Dict[str, Any]]:
        """The K subnets (``subnets.json``; computed once, then read back)."""
        path = self.out / "subnets.json"
        if path.is_file():
            return json.loads(path.read_text())["subnets"]
        pool = self._search_pool() if self.from_search else self._score_pool()
        chosen = pick_quantiles([(r["genome"], r["suc"]) for r in pool], self.cfg.subnets)
        subnets = []
        for i, j in enumerate(sorted(chosen, key=lambda j: (pool[j]["suc"], j))):
            genome = self.space.validate(pool[j]["genome"])
            cost = self.space.cost(genome)
            subnets.append({"id": i, "genome": genome.to_official(), "supernet_suc": pool[j]["suc"],
                            "supernet_suc_std": pool[j]["suc_std"], "fitness_seconds": pool[j]["seconds"],
                            "flops": int(cost["flops"]), "params": int(cost["params"])})
        atomic_write_json(path, {"pool": len(pool), "subnets": subnets})
        return subnets

    # -- 2. stand-alone training --------------------------------------------------------------------------------
    def inits(self) -> Tuple[str, ...]:
        """The stand-alone columns trained."""
        return INITS if self.cfg.retrain.inherited else INITS[:1]

    def task(self, subnet: Mapping[str, Any]) -> Dict[str, Any]:
        """The picklable description of one subnet's trial."""
        return {"id": subnet["id"], "genome": subnet["genome"], "dir": str((self.out / "standalone" /
                                                                            f"subnet{subnet['id']}").resolve()),
                "supernet": str(self.supernet), "recipe": str(self.recipe), "overrides": dict(self.cfg.retrain.overrides),
                "model_from_supernet": self.cfg.retrain.model_from_supernet, "inits": list(self.inits()),
                "validation": to_dict(self.cfg.fitness.validation), "mode": "ope",
                "device": self.cfg.device if self.cfg.device != "auto" else None,
                "threads": self.cfg.ray.threads_per_trial, "cwd": os.getcwd()}

    def finished(self, subnet: Mapping[str, Any]) -> bool:
        """Whether every init of ``subnet`` has been trained and scored."""
        folder = self.out / "standalone" / f"subnet{subnet['id']}"
        return all((folder / f"{init}.json").is_file() for init in self.inits())

    def train(self, subnets: Sequence[Mapping[str, Any]]) -> None:
        """Train and score every subnet not finished yet (Ray Tune trials, or in this process)."""
        from tqdm.auto import tqdm

        todo = [s for s in subnets if not self.finished(s)]
        if not todo:
            return
        if self.cfg.ray.backend == "local":
            with tqdm(total=len(subnets), initial=len(subnets) - len(todo), desc="rank: stand-alone training",
                      unit="subnet", disable=not self.progress, dynamic_ncols=True) as bar:
                for s in todo:
                    train_subnet(self.task(s))
                    bar.update(1)
            return
        self._train_tune(todo)
        missing = [s["id"] for s in todo if not self.finished(s)]
        if missing:
            raise SearchError(f"the stand-alone trials of subnets {missing} failed; see the trial errors under "
                              f"{self.out / 'ray_tune'}; continue with --resume")

    def _train_tune(self, todo: Sequence[Mapping[str, Any]]) -> None:
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        import ray
        from ray import tune

        from asearch.search.ray_search import check_resources, init_ray, resolve_resources

        ray_cfg = resolve_resources(self.cfg.ray)
        started = init_ray(ray_cfg)
        try:
            resources: Dict[str, float] = {"cpu": float(ray_cfg.cpus_per_trial)}
            if ray_cfg.gpus_per_trial > 0:
                resources["gpu"] = float(ray_cfg.gpus_per_trial)
            check_resources(resources, ray.cluster_resources())
            tuner = tune.Tuner(
                tune.with_resources(_trainable, resources),
                param_space={"task": tune.grid_search([self.task(s) for s in todo])},
                tune_config=tune.TuneConfig(max_concurrent_trials=self.cfg.ray.workers, reuse_actors=False),
                run_config=tune.RunConfig(storage_path=str((self.out / "ray_tune").resolve()),
                                          name=f"rank_{int(time.time())}", verbose=1 if self.progress else 0,
                                          log_to_file=False),
            )
            tuner.fit()
        finally:
            if started:
                ray.shutdown()

    # -- 3. report --------------------------------------------------------------------------------------------------
    def rows(self, subnets: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """One ``rank.csv`` row per subnet."""
        rows = []
        for s in subnets:
            folder = self.out / "standalone" / f"subnet{s['id']}"
            res = {init: json.loads((folder / f"{init}.json").read_text()) for init in self.inits()}
            rows.append({"id": s["id"], "supernet_suc": s["supernet_suc"], "supernet_suc_std": s["supernet_suc_std"],
                         "standalone_scratch": res["scratch"]["suc"],
                         "standalone_inherited": res["inherited"]["suc"] if "inherited" in res else None,
                         "flops": s["flops"], "params": s["params"],
                         "seconds": s["fitness_seconds"] + sum(r["seconds"] for r in res.values()),
                         "genome": s["genome"]})
        return rows

    def report(self, subnets: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
        """Write ``rank.csv``, ``rank.json`` and ``rank.png``; returns the ``rank.json`` content."""
        rows = self.rows(subnets)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(RANK_COLUMNS)
        for r in rows:
            w.writerow([r["id"], repr(r["supernet_suc"]), repr(r["supernet_suc_std"]), repr(r["standalone_scratch"]),
                        "" if r["standalone_inherited"] is None else repr(r["standalone_inherited"]), r["flops"],
                        r["params"], f"{r['seconds']:.2f}", json.dumps(r["genome"], separators=(",", ":"))])
        atomic_write_text(self.out / "rank.csv", buf.getvalue())
        x = [r["supernet_suc"] for r in rows]
        summary: Dict[str, Any] = {
            "subnets": len(rows), "fitness": {"mode": self.cfg.fitness.mode, "repeats": self.cfg.fitness.repeats,
                                              "seconds_per_candidate": float(np.mean([s["fitness_seconds"]
                                                                                      for s in subnets]))},
            "recipe": str(self.cfg.retrain.config), "overrides": _dotted(self.cfg.retrain.overrides),
            "bootstrap": {"resamples": self.cfg.bootstrap, "seed": self.cfg.seed, "method": "percentile, paired"}}
        for init in self.inits():
            y = [r[f"standalone_{init}"] for r in rows]
            summary[init] = rank_statistics(x, y, self.cfg.bootstrap, self.cfg.seed)
        atomic_write_json(self.out / "rank.json", summary)
        self.plot(rows, summary)
        return summary

    def plot(self, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> Path:
        """``rank.png``: stand-alone SUC against supernet SUC, one series per init."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        x = np.array([r["supernet_suc"] for r in rows]) * 100
        xerr = np.array([r["supernet_suc_std"] for r in rows]) * 100
        for init, marker in zip(self.inits(), ("o", "s")):
            y = np.array([r[f"standalone_{init}"] for r in rows]) * 100
            tau = summary[init]["kendall_tau_b"]["value"]
            label = f"{init} (τ-b {tau:+.2f})" if tau is not None else init
            ax.errorbar(x, y, xerr=xerr if xerr.any() else None, fmt=marker, capsize=2, label=label)
        ax.set_xlabel(f"supernet SUC (%) [fitness {self.cfg.fitness.mode}, {self.cfg.fitness.repeats} repeats]")
        ax.set_ylabel("stand-alone SUC (%)")
        ax.set_title(f"supernet ranking check: {len(rows)} subnets")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = self.out / "rank.png"
        tmp = path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        os.replace(tmp, path)
        return path

    def run(self, resume: bool = False) -> Dict[str, Any]:
        """Pick, train, report."""
        self.start(resume)
        subnets = self.pick()
        self.train(subnets)
        return self.report(subnets)
