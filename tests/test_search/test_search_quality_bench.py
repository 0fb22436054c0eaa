"""benchmarks/bench_search_quality.py on the tiny supernet: one seed, both modes, re-evaluation and stand-alone."""
import importlib.util
import json

from asearch.config import experiments_dir


def test_search_quality_benchmark(tmp_path, tiny_supernet, synth_root, capsys):
    spec = importlib.util.spec_from_file_location("bench_search_quality", experiments_dir().parent / "benchmarks" /
                                                  "bench_search_quality.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"_base_: {experiments_dir() / 'vlt_scar' / 'tiny_retrain.yaml'}\n"
                      "train: {steps: 2, warmup_steps: 1, log_every: 1, checkpoint_every: 2, batch_size: 4}\n"
                      f"data: {{pairs_per_epoch: 8, datasets: [{{name: synthetic, root: {synth_root}, split: train}}]}}\n"
                      "language: {enabled: false}\n")
    argv = ["--config", str(experiments_dir() / "vlt_scar" / "tiny_search.yaml"), "--supernet", str(tiny_supernet),
            "--root", str(synth_root), "--out", str(tmp_path / "sq"), "--seeds", "0", "--local",
            "--reeval-topk", "2", "--reeval-repeats", "2", "--reeval-split", "train", "--reeval-frames", "6",
            "--standalone", str(recipe), "--set", "evolution.generations=2", "--set", "evolution.population=3",
            "--set", "evolution.topk=2", "--set", "evolution.mutations=1", "--set", "evolution.crossovers=1",
            "--set", "fitness.validation.frames=5"]
    assert bench.main(argv) == 0
    runs = json.loads((tmp_path / "sq" / "search_quality.json").read_text())["runs"]
    assert [r["mode"] for r in runs] == ["evolution", "random"] and all(r["candidates"] == 6 for r in runs)
    for r in runs:
        best = json.loads((tmp_path / "sq" / f"seed0_{r['mode']}" / "best.json").read_text())
        assert best["reevaluation"]["suc"] == r["reeval"] and best["reevaluation"]["split"] == "train"
        assert 0 <= r["standalone"] <= 1
    printed = capsys.readouterr().out
    assert "| evolution |" in printed and "| random |" in printed and "evolution - random, stand-alone" in printed
    # resumable: a second call re-runs nothing and prints the same table
    assert bench.main(argv) == 0
    assert json.loads((tmp_path / "sq" / "search_quality.json").read_text())["runs"] == runs
