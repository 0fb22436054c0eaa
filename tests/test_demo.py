"""`asearch demo`: the fast variant end to end (outputs consistent, second run resumes), and the demo's helpers."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asearch.config import load_yaml
from asearch.demo import (STAGES, TRACKERS, StageLog, _fill_roots, load_demo_config,
                          plot_search_comparison, run_demo, search_records)
from asearch.demo_report import _best_so_far
from asearch.errors import ConfigError

SUMMARY_KEYS = ("suc_vl", "suc_vision_only", "suc_untrained", "suc_search_best", "suc_random_best", "arch_json",
                "seconds")


def _demo(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "asearch", "demo", "--out", str(out), "--fast", "--no-progress",
                           *extra], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def fast_demo(tmp_path_factory):
    """One `asearch demo --fast` run shared by the end-to-end tests (the slow part of this file)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = _demo(out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return out, proc


def test_fast_demo_outputs_are_consistent(fast_demo):
    out, proc = fast_demo
    summary = json.loads((out / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in summary, key
    for key in SUMMARY_KEYS[:5]:
        assert 0.0 <= summary[key] <= 1.0, (key, summary[key])
    # every stage timed, and a marker per stage
    assert set(summary["seconds"]) == set(STAGES[:-1]) | {"total"}
    assert all(v >= 0 for v in summary["seconds"].values())
    for i, stage in enumerate(STAGES):
        marker = json.loads((out / "stages" / f"{i + 1:02d}_{stage}.json").read_text())
        assert marker["stage"] == stage and marker["seconds"] >= 0

    # the architecture JSON loads and is the best candidate of the evolutionary search
    from asearch import load_architecture

    arch = load_architecture(out / summary["arch_json"])
    assert arch.genome.to_official() == summary["genome"]
    rows = search_records(out / "search" / "candidates.csv")
    assert summary["suc_search_best"] == pytest.approx(max(r["suc"] for r in rows))
    # with final.reeval the export takes the best of the re-scored top-k, and the verdict compares those scores
    re = summary["reeval"]["search"]
    assert arch.genome.to_official() == re["genome"] and re["repeats"] == 2 and re["suc_std"] >= 0
    assert arch.reevaluation is not None and arch.reevaluation.suc == pytest.approx(re["suc"])
    assert arch.validation is not None and arch.validation.suc == pytest.approx(re["search_suc"])
    top = sorted((r["suc"] for r in rows), reverse=True)
    assert any(r["suc"] == pytest.approx(re["search_suc"]) for r in rows)
    assert re["search_suc"] >= top[re["topk"] - 1] - 1e-9                   # one of the search's top k
    rand = summary["reeval"]["search_random"]
    assert summary["goals"]["search_minus_random"] == pytest.approx(re["suc"] - rand["suc"])
    assert summary["goals"]["search_compared_on"] == "re-evaluation"
    random_rows = search_records(out / "search_random" / "candidates.csv")
    assert summary["suc_random_best"] == pytest.approx(max(r["suc"] for r in random_rows))
    assert len(random_rows) == len(rows)  # the random baseline had the same budget
    assert {r["origin"] for r in random_rows} == {"random"}

    # the summary's SUCs are those of the results files under the lasot protocol
    from asearch.evaluation import evaluate_trackers, load_sequences

    seqs = load_sequences("synthetic", root=str(out / "data"), split="test")
    assert summary["test_videos"] == len(seqs) > 0
    _, results = evaluate_trackers([out / "results" / n for n in TRACKERS], seqs, protocol="lasot",
                                   names=list(TRACKERS))
    assert summary["suc_vl"] == pytest.approx(results["vlt_scar"]["suc"])
    assert summary["suc_vision_only"] == pytest.approx(results["siamcar"]["suc"])
    assert summary["suc_untrained"] == pytest.approx(results["vlt_scar_untrained"]["suc"])
    assert summary["suc_vl_no_language"] == pytest.approx(results["vlt_scar_no_language"]["suc"])
    assert summary["goals"]["language_contribution"] == pytest.approx(summary["suc_vl"] - summary["suc_vl_no_language"])
    assert summary["weights_vl"] > 0 and summary["weights_vision_only"] > 0
    assert summary["goals"]["vl_ahead_of_vision_only"] == (summary["suc_vl"] > summary["suc_vision_only"])

    # the baseline trained with the retraining budget; the untrained tracker has the searched genome
    retrain, baseline = load_yaml(out / "configs" / "retrain.yaml"), load_yaml(out / "configs" / "baseline.yaml")
    assert baseline["model"]["name"] == "siamcar" and retrain["model"]["name"] == "vlt_scar"
    assert baseline["train"] == retrain["train"] and baseline["data"] == retrain["data"]
    import torch

    untrained = torch.load(out / "untrained" / "model.pt", weights_only=True)
    assert untrained["build_info"]["model"]["genome"] == summary["genome"]
    # VLT_SCAR's retraining started from the whole supernet tracker on the searched path (subnet, neck, head)
    marker = json.loads((out / "stages" / f"{STAGES.index('retrain') + 1:02d}_retrain.json").read_text())
    inherited = marker["outputs"]["inherited"]
    assert inherited["subnet_tensors"] > 0 and inherited["neck_head_tensors"] > 0

    report = (out / "report.md").read_text()
    assert "VLT_SCAR starts from the supernet tracker pretrained in stage 2" in report
    for label, _ in TRACKERS.values():
        assert f"| {label} |" in report
    assert "mean ± std over 2 BN repeats" in report and "validation SUC, re-evaluated" in report
    for image in ("success_plot.png", "search_comparison.png"):
        assert f"]({image})" in report and (out / image).stat().st_size > 1000
    assert "asearch demo: report in" in proc.stdout


def test_fast_demo_second_run_skips_every_stage(fast_demo):
    out, _ = fast_demo
    before = (out / "report.md").stat().st_mtime_ns
    proc = _demo(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.md").stat().st_mtime_ns == before
    summary = json.loads((out / "summary.json").read_text())
    printed = json.loads(proc.stdout.splitlines()[0])
    assert printed["skipped_now"] == list(STAGES)  # nothing ran again
    assert summary["suc_vl"] == pytest.approx(printed["suc_vl"], abs=1e-4)


def test_fast_demo_interrupted_tracking_resumes(fast_demo):
    """A stage without its marker runs again through its own resume (the runner skips finished videos); the
    stages after it run again; the ones before are skipped."""
    out, _ = fast_demo
    track_marker = out / "stages" / f"{STAGES.index('track') + 1:02d}_track.json"
    track_marker.unlink()
    results = sorted((out / "results" / "siamcar").glob("*.txt"))
    kept = {p.name: p.stat().st_mtime_ns for p in results[1:]}
    results[0].unlink()
    summary = run_demo(out, fast=True, progress=False)
    assert summary["skipped_now"] == list(STAGES[:STAGES.index("track")])
    assert results[0].is_file()
    assert {p.name: p.stat().st_mtime_ns for p in results[1:]} == kept  # finished videos were not tracked again


def test_demo_refuses_other_settings_in_the_same_folder(fast_demo):
    out, _ = fast_demo
    with pytest.raises(ConfigError, match="seed = 0, not 1"):
        run_demo(out, fast=True, seed=1, progress=False)


# ----------------------------------------------------------------------------------------------------------------
# helpers (fast)


def test_demo_configs_load_and_fast_is_smaller():
    full, folder = load_demo_config()
    fast, _ = load_demo_config(fast=True)
    assert fast.synthetic.videos < full.synthetic.videos
    for stage in ("pretrain", "search", "retrain", "baseline", "track"):
        assert (folder / getattr(full.configs, stage)).is_file()
    with pytest.raises(ConfigError, match="overrides.pretrian"):
        load_demo_config(overrides=["overrides.pretrian=[train.steps=1]"])
    with pytest.raises(ConfigError, match="synthetic.vidoes"):
        load_demo_config(overrides=["synthetic.vidoes=3"])


def test_fill_roots_sets_only_synthetic_entries_without_root():
    data = {"data": {"datasets": [{"name": "synthetic", "root": None, "split": "train"},
                                  {"name": "lasot", "root": None, "split": "train"},
                                  {"name": "synthetic", "root": "/elsewhere", "split": "train"}]},
            "fitness": {"validation": {"dataset": "synthetic", "root": None, "split": "val"}},
            "model": {"name": "synthetic"}}
    out = _fill_roots(data, "R")
    ds = out["data"]["datasets"]
    assert [d["root"] for d in ds] == ["R", None, "/elsewhere"]
    assert out["fitness"]["validation"]["root"] == "R"
    assert "root" not in out["model"]  # a mapping that is no dataset entry stays as it is
    assert data["data"]["datasets"][0]["root"] is None  # the input is not modified


def test_stage_log_skips_finished_stages_and_reruns_later_ones(tmp_path):
    outputs = {"data": ["data"], "pretrain": ["pretrain"], "report": ["report.md"]}
    log = StageLog(tmp_path, progress=False, outputs=outputs)
    calls = []
    assert log.run("data", lambda: calls.append("data") or {"root": "data"}) == {"root": "data"}
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "a.pt").write_text("x")
    log.run("pretrain", lambda: calls.append("pretrain") or {"checkpoint": "a.pt"})
    (tmp_path / "report.md").write_text("old")
    log.run("report", lambda: {"report": "report.md"})
    log2 = StageLog(tmp_path, progress=False, outputs=outputs)
    assert log2.run("data", lambda: calls.append("data again") or {}) == {"root": "data"}
    assert calls == ["data", "pretrain"] and log2.skipped == ["data"]
    # running a stage again drops the markers and outputs of the stages after it (their inputs change)
    log2.path("data").unlink()
    log2.run("data", lambda: {"root": "new"})
    assert log2.marker("data")["outputs"] == {"root": "new"}
    assert log2.marker("pretrain") is None and not (tmp_path / "pretrain").exists()
    assert log2.marker("report") is None and not (tmp_path / "report.md").exists()
    assert set(log2.seconds) == {"data"}


def test_search_records_and_comparison_plot(tmp_path):
    path = tmp_path / "candidates.csv"
    rows = [(0, 0.2, 1.5e6), (0, 0.4, 2.0e6), (1, 0.3, 1.0e6), (1, 0.35, ""), (2, 0.5, 3.0e6)]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["generation", "index", "origin", "mode", "suc", "flops", "params", "seconds", "genome"])
        for i, (g, suc, flops) in enumerate(rows):
            w.writerow([g, i, "random", "evolution", suc, flops, 10, 0.1, "[[0],[1],[2],[3]]"])
    recs = search_records(path)
    assert [r["generation"] for r in recs] == [0, 0, 1, 1, 2]
    assert recs[3]["flops"] is None and recs[0]["flops"] == 1.5e6
    gens, best = _best_so_far(recs)
    assert gens == [0, 1, 2] and best == [0.4, 0.4, 0.5]  # best so far never decreases
    png = plot_search_comparison({"evolution": recs, "random": recs[:2]}, tmp_path / "cmp.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    empty = tmp_path / "empty.csv"
    empty.write_text("generation,index,origin,mode,suc,flops,params,seconds,genome\n")
    with pytest.raises(Exception, match="no scored candidates"):
        search_records(empty)
