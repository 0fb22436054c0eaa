"""benchmarks/ctrtnl_threshold.py, the T_ars sweep, on an untrained tiny CTRTNL (mechanics, not quality): a threshold
below every AdaRS score keeps every frame local, one above every score sends every frame global, one JSON row per
threshold, the best row is the highest SUC, a second run reuses the finished thresholds, another checkpoint's
folder is refused."""
import json

import pytest
import torch

from asearch.config import experiments_dir

TINY = experiments_dir() / "ctrtnl" / "tiny.yaml"
TRACK = experiments_dir() / "ctrtnl" / "track.yaml"


@pytest.fixture(scope="module")
def sweep(load_benchmark_script):
    yield from load_benchmark_script("ctrtnl_threshold")


@pytest.fixture
def setup(tmp_path):
    """A tiny untrained CTRTNL checkpoint and 3 synthetic videos of 4 frames."""
    from asearch.data.synthetic import generate_benchmark
    from asearch.training.recipes import load_experiment
    from trackers.language_width import resolve_language_dim
    from trackers.registry import build_info, build_model, model_config

    torch.manual_seed(0)
    cfg = model_config(resolve_language_dim(dict(load_experiment(TINY).model), 384, None, "sentence", str(TINY)))
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": build_model(cfg).state_dict(), "build_info": build_info(cfg)}, ckpt)
    root = generate_benchmark(tmp_path / "synth", videos=3, frames=4, size=96, seed=0, distractors=0)
    return ckpt, root


def test_sweep_extremes_best_row_and_resume(sweep, setup, tmp_path, capsys):
    torch.set_num_threads(1)
    ckpt, root = setup
    out = tmp_path / "sweep"
    argv = ["--checkpoint", str(ckpt), "--config", str(TRACK), "--dataset", "synthetic", "--root", str(root),
            "--split", "all", "--frames", "3", "--thresholds", "10", "-10", "--out", str(out), "--batch", "2",
            "--set", "device=cpu", "--set", "tracker.min_size=4"]
    record = sweep.main(argv)
    text = capsys.readouterr().out
    saved = json.loads((out / sweep.JSON_NAME).read_text())
    assert [r["threshold"] for r in saved["rows"]] == [-10.0, 10.0]             # one row per threshold, sorted
    share = {r["threshold"]: r["global_share"] for r in saved["rows"]}
    assert share == {-10.0: 0.0, 10.0: 1.0}                                     # Eq. 19 lies in [-2, 2]
    assert all(r["frames"] == 3 * 2 for r in saved["rows"])                     # frame 0 excluded
    assert all(r["run"].startswith("tracked") for r in saved["rows"])
    best = max(saved["rows"], key=lambda r: r["suc"])
    assert saved["best"]["suc"] == best["suc"] and saved["best"] == record["best"]
    assert saved["yaml"] == f"tracker:\n  threshold: {saved['best']['threshold']:g}"
    assert "| T_ars | SUC |" in text and saved["yaml"] in text
    for name in ("T-10", "T+10"):                                               # the runner's files, 3 rows each
        assert len(list((out / name).glob("*_info.json"))) == 3
        assert all(len(p.read_text().splitlines()) == 3 for p in (out / name).glob("*.txt"))

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("T*/*")}
    again = sweep.main(argv)
    assert [r["run"] for r in again["rows"]] == ["reused", "reused"]           # nothing tracked again
    assert {p: p.stat().st_mtime_ns for p in out.glob("T*/*")} == stamps
    assert [r["suc"] for r in again["rows"]] == [r["suc"] for r in saved["rows"]]

    with pytest.raises(SystemExit, match="frames"):                             # another setting: another --out
        sweep.main([a if a != "3" else "2" for a in argv])


def test_default_grid_and_tie_break(sweep):
    assert sweep.DEFAULT_THRESHOLDS == (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
    rows = [{"threshold": 0.5, "suc": 0.6, "global_share": 0.3}, {"threshold": 1.0, "suc": 0.6, "global_share": 0.1},
            {"threshold": -1.0, "suc": 0.5, "global_share": 0.0}]
    assert sweep.best_row(rows)["threshold"] == 1.0                             # equal SUC: fewer global frames
    assert sweep.folder_name(-0.5) == "T-0.5" and sweep.folder_name(0.0) == "T+0"
