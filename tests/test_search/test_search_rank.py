"""`asearch rank`: the statistics on worked examples, the pick, and the run end to end on the tiny supernet (Ray
Tune trials) and killed-and-resumed (in-process): no subnet trained twice, the same rank.csv."""
import contextlib
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from asearch.cli import main
from asearch.config import experiments_dir
from asearch.errors import ConfigError
from asearch.search.rank import pick_quantiles, rank_statistics


def test_rank_statistics_worked_example_with_ties():
    # x = 1, 2, 2, 3; y = 1, 2, 3, 3. Of the 6 pairs, 4 are concordant, none discordant, one is tied in x only
    # ((1, 2)) and one in y only ((2, 3)): tau-b = (4 - 0) / sqrt((4 + 0 + 1)(4 + 0 + 1)) = 0.8.
    # Average ranks x: 1, 2.5, 2.5, 4; y: 1, 2, 3.5, 3.5; their Pearson correlation is 3.75 / 4.5 = 5/6.
    s = rank_statistics([1, 2, 2, 3], [1, 2, 3, 3], resamples=200, seed=0)
    assert s["kendall_tau_b"]["value"] == pytest.approx(0.8, abs=1e-12)
    assert s["spearman_rho"]["value"] == pytest.approx(5 / 6, abs=1e-12)
    ci = s["kendall_tau_b"]["ci95"]
    assert -1 <= ci["low"] <= ci["high"] <= 1 and ci["nan_resamples"] > 0  # some resamples draw one x value only
    # top-3 overlap: supernet top 3 = items 3, 1, 2 (ties by order); stand-alone top 3 = items 2, 3, 1
    assert s["top3_overlap"] == 1.0
    s = rank_statistics([0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1], resamples=200)
    assert s["kendall_tau_b"]["value"] == pytest.approx(-1.0) and s["top3_overlap"] == pytest.approx(1 / 3)
    assert s["spearman_rho"]["ci95"]["includes_zero"] is False and s["spearman_rho"]["ci95"]["high"] <= -0.99


def test_pick_quantiles_spans_the_fitness_range():
    scored = [(g, suc) for g, suc in zip("abcdefg", [0.5, 0.1, 0.7, 0.3, 0.3, 0.9, 0.2])]
    # ascending: b .1, g .2, d .3, e .3, a .5, c .7, f .9 -> positions round(linspace(0, 6, 3)) = 0, 3, 6
    assert [scored[i][0] for i in pick_quantiles(scored, 3)] == ["b", "e", "f"]
    with pytest.raises(ConfigError, match="only 7 scored"):
        pick_quantiles(scored, 8)


def _args(supernet, root, out, *extra):
    return ["rank", "--config", str(experiments_dir() / "vlt_scar" / "tiny_rank.yaml"), "--supernet",
            str(supernet), "--out", str(out), "--no-progress", "--set", f"fitness.validation.root={root}",
            "--set", f"retrain.overrides.data.datasets.0.root={root}",
            "--set", "retrain.overrides.language.enabled=false", *extra]


def _rows(out):
    with open(out / "rank.csv") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def tune_run(tmp_path_factory, tiny_supernet, synth_root):
    """The run on Ray Tune, with the data root given relative to the working directory as a user types it (Tune
    starts each trial in its own folder: the trial must still find the videos)."""
    out = tmp_path_factory.mktemp("rank") / "tune"
    printed = io.StringIO()
    cwd = os.getcwd()
    os.chdir(Path(synth_root).parent)
    try:
        with contextlib.redirect_stdout(printed):
            assert main(_args(tiny_supernet, Path(synth_root).name, out)) == 0
    finally:
        os.chdir(cwd)
    return out, printed.getvalue()


def test_rank_end_to_end_on_ray_tune(tune_run):
    out, printed = tune_run
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    sup = [float(r["supernet_suc"]) for r in rows]
    assert sup == sorted(sup)  # the pick, lowest to highest supernet SUC
    pool = [json.loads(line)["suc"] for line in (out / "pool.jsonl").read_text().splitlines()]
    assert len(pool) == 4 and min(pool) == sup[0] and max(pool) == sup[-1]
    for r in rows:
        assert 0 <= float(r["standalone_scratch"]) <= 1 and 0 <= float(r["standalone_inherited"]) <= 1
        assert int(r["flops"]) > 0 and int(r["params"]) > 0
        sub = out / "standalone" / f"subnet{r['id']}"
        assert json.loads((sub / "scratch.json").read_text())["steps"] == 4
        assert (sub / "inherited.pt").is_file()
    summary = json.loads((out / "rank.json").read_text())
    for init in ("scratch", "inherited"):
        stats = rank_statistics(sup, [float(r[f"standalone_{init}"]) for r in rows], 200, 0)
        assert summary[init]["kendall_tau_b"] == stats["kendall_tau_b"]
        assert summary[init]["spearman_rho"]["value"] == stats["spearman_rho"]["value"]
    assert (out / "rank.png").stat().st_size > 0
    assert "Kendall tau-b" in printed and "vs stand-alone (inherited)" in printed


def test_rank_killed_and_resumed_trains_nothing_twice(tmp_path, tune_run, tiny_supernet, synth_root, monkeypatch,
                                                     capsys):
    from asearch.search import fitness
    from asearch.training import recipes

    out = tmp_path / "local"
    args = _args(tiny_supernet, synth_root, out, "--local")
    calls = []
    real_train, real_score = recipes.run_retrain, fitness.score_checkpoint

    def train(cfg, **kw):
        calls.append((kw["out_dir"].parent.name, kw["out_dir"].name, kw["resume"]))
        return real_train(cfg, **kw)

    def killed(*a, **kw):
        if len(calls) == 4:  # subnet 1, inherited: trained, killed before its score is written
            raise KeyboardInterrupt
        return real_score(*a, **kw)

    monkeypatch.setattr(recipes, "run_retrain", train)
    monkeypatch.setattr(fitness, "score_checkpoint", killed)
    assert main(args) == 130
    assert calls == [("subnet0", "scratch", False), ("subnet0", "inherited", False), ("subnet1", "scratch", False),
                     ("subnet1", "inherited", False)]
    assert not (out / "rank.csv").exists()
    calls.clear()
    monkeypatch.setattr(fitness, "score_checkpoint", real_score)
    capsys.readouterr()
    assert main(args) == 2 and "already holds a rank run" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    # only what was not finished: subnet 1's inherited run continues from its last checkpoint (step 4 of 4)
    assert calls == [("subnet1", "inherited", True), ("subnet2", "scratch", False), ("subnet2", "inherited", False)]
    log = (out / "standalone" / "subnet1" / "inherited" / "train_log.csv").read_text().splitlines()
    steps = [line.split(",")[0] for line in log[1:]]
    assert len(steps) == len(set(steps))  # no step trained twice
    assert _rows(out) == _rows(tune_run[0])  # the same table as the unbroken run (Ray Tune trials)
    # a finished run resumes to the same report, training nothing
    calls.clear()
    assert main(args + ["--resume"]) == 0 and calls == []
    assert _rows(out) == _rows(tune_run[0])
    # changed settings are refused on --resume
    assert main(args + ["--resume", "--set", "subnets=2"]) == 2
    assert "used other settings (config differ)" in capsys.readouterr().err


def test_rank_yamls_load():
    from asearch.config import load_config
    from asearch.search.rank import RankConfig

    paper = load_config(RankConfig, experiments_dir() / "vlt_scar" / "rank.yaml")
    assert (paper.subnets, paper.pool, paper.fitness.bn.batches, paper.retrain.config) == (10, 50, 200, "retrain.yaml")
    demo = load_config(RankConfig, experiments_dir() / "demo" / "rank.yaml")
    assert (demo.subnets, demo.fitness.validation.videos, demo.fitness.validation.frames) == (8, 12, 60)
    with pytest.raises(ConfigError, match="subnets: at least 2"):
        load_config(RankConfig, experiments_dir() / "demo" / "rank.yaml", ["subnets=1"])


def test_rank_fitness_benchmark_rescores_the_subnets(tune_run, tiny_supernet, synth_root, capsys):
    """benchmarks/rank_fitness.py: the rank run's subnets re-scored with ope and open_loop (the rank run's threads: the
closed loop's SUC moves with the thread count)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rank_fitness", experiments_dir().parent / "benchmarks" /
                                                  "rank_fitness.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out, _ = tune_run
    assert bench.main(["--config", str(experiments_dir() / "vlt_scar" / "tiny_rank.yaml"), "--rank", str(out),
                       "--supernet", str(tiny_supernet), "--root", str(synth_root), "--repeats", "1", "--threads", "1"]) == 0
    rows = json.loads((out / "rank_fitness.json").read_text())["rows"]
    assert [(r["mode"], r["repeats"]) for r in rows] == [("ope", 1), ("open_loop", 1)]
    assert rows[0]["supernet_suc"] == [float(r["supernet_suc"]) for r in _rows(out)]  # the rank run's own fitness
    assert "| open_loop | 1 |" in capsys.readouterr().out


def _write_rank_csv(folder: Path, rows) -> Path:
    """A rank.csv of ``(genome, supernet SUC, stand-alone SUC)`` rows, as ``asearch rank`` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "rank.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "supernet_suc", "supernet_suc_std", "standalone_scratch", "standalone_inherited", "flops",
                    "params", "seconds", "genome"])
        for i, (genome, sup, sa) in enumerate(rows):
            w.writerow([i, sup, 0.0, sa, "", 1, 1, 1.0, json.dumps(genome)])
    return folder


def test_rank_truth_noise_worked_example(tmp_path, load_benchmark_script, capsys):
    """benchmarks/rank_truth_noise.py on two hand-made runs of 3 subnets (matched by genome, listed in another order
    in the second run). Seed 0 stand-alone 0.1, 0.2, 0.3; seed 1 0.3, 0.2, 0.1 (reversed: tau-b -1). The means are
    all 0.2: nothing between subnets, so the between-subnet share is 1 - within / total with within = the mean of
    the per-subnet variances (0.02, 0, 0.02: 0.04 / 3) and total = the variance of the 6 values (0.04 / 5) = -2/3."""
    g = [[[0]], [[1]], [[2]]]
    a = _write_rank_csv(tmp_path / "a", [(g[0], 0.1, 0.1), (g[1], 0.2, 0.2), (g[2], 0.3, 0.3)])
    b = _write_rank_csv(tmp_path / "b", [(g[2], 0.9, 0.1), (g[0], 0.9, 0.3), (g[1], 0.9, 0.2)])
    gen = load_benchmark_script("rank_truth_noise")
    mod = next(gen)
    try:
        assert mod.main(["--rank", str(a), str(b), "--bootstrap", "50", "--out", str(tmp_path / "n.json")]) == 0
    finally:
        next(gen, None)
    res = json.loads((tmp_path / "n.json").read_text())
    assert res["standalone"] == [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]
    assert res["pairs"]["a vs b"]["kendall_tau_b"]["value"] == pytest.approx(-1.0)
    assert res["between_share"] == pytest.approx(1 - (0.04 / 3) / (0.04 / 5))
    assert res["seed_std_mean"] == pytest.approx(np.sqrt(0.04 / 3))
    assert res["supernet_vs_mean"]["own fitness"]["kendall_tau_b"]["value"] is None  # the seed means are all tied
    # two-way ANOVA: subnet means all 0.2 (MSR = 0), run means both 0.2, residuals -0.1, 0, 0.1 / 0.1, 0, -0.1:
    # SSE 0.04 over (3 - 1)(2 - 1) = 2 degrees of freedom, MSE 0.02; ICC(3,1) = (0 - 0.02) / (0 + 0.02) = -1
    assert res["ms_residual"] == pytest.approx(0.02) and res["icc_3_1"] == pytest.approx(-1.0)
    assert res["icc_3_k"] is None
    # a common shift of one run leaves the consistency ICC at 1: 0.1, 0.2, 0.3 and 0.2, 0.3, 0.4
    icc = mod.icc_consistency(np.array([[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]]))
    assert icc["icc_3_1"] == pytest.approx(1.0) and icc["icc_3_k"] == pytest.approx(1.0)
    assert "a vs b" in capsys.readouterr().out
    _write_rank_csv(tmp_path / "c", [(g[0], 0.1, 0.1), (g[1], 0.2, 0.2), ([[3]], 0.3, 0.3)])
    with pytest.raises(ValueError, match="same subnets"):
        mod.truth_noise([mod.read_rank(a), mod.read_rank(tmp_path / "c")], ["a", "c"])
