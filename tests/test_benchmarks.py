"""benchmarks/bench_tracking.py (and its cases module bench_tracking_cases.py): the table's rows, the token-language
rows' language timing, the ratio arithmetic and the "not available" path (no timing assertions)."""
from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_tracking.py"


@pytest.fixture(scope="module")
def bench(load_benchmark_script):
    yield from load_benchmark_script("bench_tracking")


def _rows(text: str) -> dict:
    """First cell -> list of cells of every markdown table row."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def test_small_run_prints_every_row(bench, capsys, tmp_path):
    out = tmp_path / "latency.md"
    assert bench.main(["--small", "--frames", "2", "--warmup", "1", "--device", "cpu", "--videos", "1",
                       "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_text() == text
    rows = _rows(text)
    for label, crops, paper in [("VLT_SCAR", "63/127", "43"), ("VLT_SCAR without template cache", "63/127", "-"),
                                ("SiamCAR", "63/127", "52"), ("VLT_TT", "64/128", "35"), ("TransT", "64/128", "32"),
                                ("VLT_OST", "64/128", "31"), ("OSTrack", "64/128", "33"),
                                ("VLT_RPN++", "63/127", "-"), ("SiamRPN++", "63/127", "-"),
                                ("PJVLT", "64/128", "54"), ("SATracker", "64/128", "-"), ("COST", "64/128", "36"),
                                ("CTRTNL (local frame: SiamRPN++ + AdaRS)", "63/127", "-"),
                                ("CTRTNL (global frame: + TSR)", "63/127", "-")]:
        cells = rows[label]
        assert cells[1] == crops and cells[-1] == paper, cells
        ms, fps = float(cells[2]), float(cells[4])  # ms printed with 1 decimal (+-0.05), FPS with 1 (+-0.05)
        assert ms > 0 and 1000.0 / (ms + 0.05) - 0.051 <= fps <= 1000.0 / max(ms - 0.05, 1e-9) + 0.051, cells
    # per-video costs: template branch for every cached tracker, language for the VL ones only
    assert rows["VLT_SCAR"][5] != "-" and rows["VLT_SCAR"][6] != "-" and rows["SiamCAR"][6] == "-"
    assert rows["VLT_RPN++"][5] != "-" and rows["VLT_RPN++"][6] != "-" and rows["SiamRPN++"][6] == "-"
    assert rows["VLT_SCAR without template cache"][5] == "-"
    # token-language rows (tiny.yaml models): their own language part timed per video, inside the template figure
    for label in ("PJVLT", "SATracker", "COST", "CTRTNL (local frame: SiamRPN++ + AdaRS)",
                  "CTRTNL (global frame: + TSR)"):
        assert float(rows[label][5]) > 0 and float(rows[label][6]) > 0, rows[label]
    assert float(rows["PJVLT / OSTrack"][1]) > 0 and float(rows["COST / TransT"][1]) > 0
    assert rows["PJVLT / OSTrack"][2] == "-" and rows["COST / TransT"][2] == "-"
    assert float(rows["CTRTNL global / local frame"][1]) > 0 and rows["CTRTNL global / local frame"][2] == "-"
    assert float(rows["CTRTNL local frame / SiamRPN++"][1]) > 0
    assert "PJVLT (tiny.yaml): language model" in text and "INCLUDING tokenisation" in text
    # ratios: paper latency ratios are FPS_baseline / FPS_VL
    assert rows["VLT_SCAR / SiamCAR"][2] == "1.209" and rows["VLT_SCAR / SiamCAR"][3] == "<= 1.2"
    assert rows["VLT_SCAR / SiamCAR"][4] in ("yes", "no")
    assert rows["VLT_TT / TransT"][2] == "0.914" and rows["VLT_OST / OSTrack"][2] == "1.065"
    assert float(rows["VLT_RPN++ / SiamRPN++"][1]) > 0 and rows["VLT_RPN++ / SiamRPN++"][2] == "-"
    # the ratio (3 decimals) is of the unrounded latencies; the table prints them with 1 decimal (+-0.05 ms), so the
    # ratio must lie in the interval those printed values allow (a fixed 1 % failed at ~6 ms latencies)
    measured = float(rows["VLT_SCAR / SiamCAR"][1])
    vl, base = float(rows["VLT_SCAR"][2]), float(rows["SiamCAR"][2])
    assert (vl - 0.05) / (base + 0.05) - 0.0005 <= measured <= (vl + 0.05) / (base - 0.05) + 0.0005, (measured, vl, base)
    assert float(rows["VLT_SCAR without / with template cache"][1]) > 0
    assert "Issue 4 goal: VLT_SCAR / SiamCAR latency <= 1.2:" in text and "smoke run" in text


def test_unregistered_family_is_reported_not_fatal(bench, capsys, monkeypatch):
    from asearch.errors import ConfigError
    from trackers import registry

    real = registry.build_model

    def build(cfg, pretrained=True):
        if cfg["name"] in ("vlt_ost", "ostrack", "vlt_rpnpp", "siamrpnpp"):
            raise ConfigError(f"unknown model name {cfg['name']!r}")
        return real(cfg, pretrained)

    monkeypatch.setattr(registry, "build_model", build)
    assert bench.main(["--small", "--frames", "1", "--warmup", "0", "--device", "cpu", "--families", "ost,rpn",
                       "--text-encoder", "none", "--videos", "1"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["VLT_OST"][2].startswith("not available (ConfigError: unknown model name 'vlt_ost'")
    assert rows["OSTrack"][2].startswith("not available (ConfigError")
    assert rows["VLT_OST / OSTrack"][1].startswith("not available") and "VLT_SCAR / SiamCAR" not in rows
    assert rows["VLT_RPN++"][2].startswith("not available (ConfigError") and rows["VLT_RPN++"][-1] == "-"


@contextlib.contextmanager
def _counting_language_layers():
    """A list that gets one entry per call of ``TokenTextEncoder.layer`` inside the block (the layer still runs)."""
    from asearch.language import TokenTextEncoder

    calls, real = [], TokenTextEncoder.layer

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TokenTextEncoder, "layer", counting)
        yield calls


def test_token_case_runs_the_language_once_per_video(bench):
    """A token-language tracker at tiny size: the frame step uses the cached words (no language layer per frame),
    the per-video step and the language part alone run the model's language layers."""
    import numpy as np

    frame = np.random.default_rng(0).integers(0, 256, (*bench.FRAME_SHAPE, 3), dtype=np.uint8)
    notes = []
    (case,) = bench.build_token_row("pjvlt", True, frame, torch.device("cpu"), notes)
    with torch.inference_mode(), _counting_language_layers() as calls:
        box = case.step()["box"]
        assert len(box) == 4 and not calls
        case.video()
        assert len(calls) == 2  # tiny.yaml: 2 joint layers, so 2 language layers
        case.language()
        assert len(calls) == 4
    assert case.vl and case.crops == "64/128" and any("PJVLT (tiny.yaml)" in n for n in notes)


def test_ctrtnl_rows_time_a_local_and_a_global_frame(bench):
    """CTRTNL's two rows share one tiny model: T^ars below every AdaRS score keeps each frame local (no TSR), above
    every score runs TSR each frame; the per-video step runs its language layers, the frame step none."""
    import numpy as np

    frame = np.random.default_rng(0).integers(0, 256, (*bench.FRAME_SHAPE, 3), dtype=np.uint8)
    notes = []
    local, glob = bench.build_token_row("ctrtnl", True, frame, torch.device("cpu"), notes)
    assert (local.key, glob.key) == ("ctrtnl", "ctrtnl:tsr") and local.crops == glob.crops == "63/127"
    with torch.inference_mode(), _counting_language_layers() as calls:
        first, second = local.step(), glob.step()
        assert first["mode"] == "local" and first["tsr_score"] is None
        assert second["mode"] == "global" and second["tsr_score"] is not None and len(second["box"]) == 4
        assert not calls
        local.video()
        assert len(calls) == 6  # tiny.yaml: the packaged MiniLM's 6 layers, once per video
    assert any("CTRTNL (tiny.yaml): language model" in n for n in notes)
    assert any("T^ars is set below / above" in n for n in notes) and len(notes) == len(set(notes))


def test_token_family_alone_prints_its_row_and_no_ratio_table(bench, capsys):
    assert bench.main(["--small", "--frames", "1", "--warmup", "0", "--device", "cpu", "--families", "satracker",
                       "--text-encoder", "none", "--videos", "1"]) == 0
    text = capsys.readouterr().out
    rows = _rows(text)
    assert rows["SATracker"][1] == "64/128"
    assert float(rows["SATracker"][2]) > 0 and float(rows["SATracker"][6]) > 0
    assert "comparison (latency ratio)" not in text and "PJVLT" not in rows


def test_ratio_goal_arithmetic(bench):
    opts = bench.Options(families=["scar", "tt"], frames=3)
    noop = lambda: None  # noqa: E731
    cases = [bench.Case("vlt_scar", "VLT_SCAR", "127/255", noop, noop, 43.0, True, [0.030, 0.025, 0.060], [0.01]),
             bench.Case("vlt_scar:no_cache", "VLT_SCAR without template cache", "127/255", noop, None, None, True,
                        [0.090, 0.080, 0.100]),
             bench.Case("siamcar", "SiamCAR", "127/255", noop, noop, 52.0, False, [0.020, 0.020, 0.025], [0.01])]
    report = bench.Report(opts, torch.device("cpu"), 1, bench.resolve_genome("zeros", 0), cases,
                          [bench.Unavailable("transt", "ImportError: no module")], [0.004, 0.006], "enc (4-d)", [])
    ratios = {r["name"]: r for r in report.ratios()}
    # medians 30 ms / 20 ms = 1.5 > 1.2: goal not met; no cache 90 / 30 = 3
    assert ratios["VLT_SCAR / SiamCAR"]["ratio"] == pytest.approx(1.5)
    assert ratios["VLT_SCAR / SiamCAR"]["met"] is False
    assert ratios["VLT_SCAR without / with template cache"]["ratio"] == pytest.approx(3.0)
    assert ratios["VLT_TT / TransT"]["ratio"] is None and "ImportError" in ratios["VLT_TT / TransT"]["reason"]
    text = report.format()
    assert "Issue 4 goal: VLT_SCAR / SiamCAR latency <= 1.2: NOT MET (measured 1.500 on cpu)" in text
    rows = _rows(text)
    assert rows["VLT_SCAR"][2:7] == ["30.0", "27.5-45.0", "33.3", "10.0", "5.0"]
    assert rows["VLT_TT"][2] == "not available (not measured)"  # neither timed nor reported failing
    assert rows["TransT"][2] == "not available (ImportError: no module)"


def test_bad_options_exit_with_message(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--families", "scar,foo"])
    assert "unknown family 'foo'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--frames", "0"])
    assert "--frames must be >= 1" in capsys.readouterr().err


def test_bench_search_small_run_prints_both_modes(capsys):
    """benchmarks/bench_search.py end to end on a tiny run: both modes' rows, shares summing to 100 %, the ratios,
    and the CPU settings named in the header (no timing assertions)."""
    path = SCRIPT.parent / "bench_search.py"
    spec = importlib.util.spec_from_file_location("bench_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for flags, settings in (([], "channels_last True, keep_freed_memory True"),
                            (["--plain"], "channels_last False, keep_freed_memory False (--plain)")):
        assert module.main(["--videos", "2", "--frames", "3", "--candidates", "1", "--bn-batches", "1",
                            "--bn-batch-size", "2"] + flags) == 0
        out = capsys.readouterr().out
        assert f"# CPU settings: {settings}" in out
        rows = _rows(out)
        for mode in ("batched", "sequential"):
            cells = rows[mode]
            assert float(cells[1]) > 0 and float(cells[2]) > 0
            assert 98 <= sum(float(c.rstrip("%")) for c in cells[3:6]) <= 102
        assert "x candidates per minute" in out and "x tracking alone" in out
