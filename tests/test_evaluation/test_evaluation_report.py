"""evaluate_trackers / write_evaluation / report and the `asearch evaluate` / `asearch report` commands.

The dataset comes from a stand-in ``asearch.data.registry`` module (two 3-frame sequences built directly as
Sequence records), so the test exercises the command's plumbing without depending on a dataset layout.

Worked numbers (lasot protocol, 21 thresholds, frame 0 set to the GT):
  tracker "good" predicts the GT: IoU 1 everywhere -> 20/21 per sequence -> SUC 95.2 %, P 100 %.
  tracker "bad": s1 frames 1-2 shifted by 5 px (IoU 1/3 -> 7 counts): (20+7+7)/63 = 34/63 = 54.0 %;
  s2 frames 1-2 far away: 20/63 = 31.7 %; SUC (34+20)/126 = 42.9 %; P: s1 3/3, s2 1/3 -> 66.7 %.
"""
import json
import sys
import types

import numpy as np
import pytest

from asearch.cli import main
from asearch.data.sequence import Sequence
from asearch.errors import DataError
from asearch.evaluation import evaluate_trackers, write_evaluation, write_report, write_results


def _sequences(frames_dir="nowhere"):
    s1 = Sequence(name="s1", frames=[f"{frames_dir}/s1/{i}.jpg" for i in range(3)], boxes=[[10, 10, 10, 10]] * 3,
                  visible=[True] * 3, attribute_flags={"fast_motion": True, "occlusion": False})
    s2 = Sequence(name="s2", frames=[f"{frames_dir}/s2/{i}.jpg" for i in range(3)], boxes=[[20, 20, 10, 10]] * 3,
                  visible=[True] * 3, attribute_flags={"fast_motion": False, "occlusion": True})
    return [s1, s2]


def _write_trackers(root):
    good, bad = root / "good", root / "bad"
    for s in _sequences():
        write_results(good, s.name, s.boxes, fps=20.0)
    write_results(bad, "s1", [[0, 0, 1, 1], [15, 10, 10, 10], [15, 10, 10, 10]], fps=10.0)
    write_results(bad, "s2", [[0, 0, 1, 1], [100, 100, 10, 10], [100, 100, 10, 10]], fps=10.0)
    return good, bad


def test_evaluate_trackers_table_files_and_attributes(tmp_path):
    good, bad = _write_trackers(tmp_path)
    seqs = _sequences()
    table, results = evaluate_trackers([bad, good], seqs, protocol="lasot")
    assert list(table.index) == ["good", "bad"]  # best first
    assert table.loc["good", "SUC"] == pytest.approx(100 * 20 / 21)
    assert table.loc["bad", "SUC"] == pytest.approx(100 * 54 / 126)
    assert table.loc["bad", "P"] == pytest.approx(100 * 2 / 3)
    assert table.loc["good", "FPS"] == pytest.approx(20.0)
    paths = write_evaluation(tmp_path / "out", table, results, seqs, meta={"dataset": "toy"})
    for key in ("summary", "success_plot", "precision_plot", "attributes", "results"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    data = json.loads(paths["results"].read_text())
    assert data["sequences"] == ["s1", "s2"]
    assert data["trackers"]["bad"]["per_sequence"]["suc"] == pytest.approx([34 / 63, 20 / 63])
    attrs = (tmp_path / "out" / "attributes.csv").read_text().splitlines()
    assert attrs[0] == "attribute,n,good,bad"
    assert attrs[1].startswith("fast_motion,1,95.2381,53.9683")
    report = write_report(tmp_path / "rep" / "report.md", table, results, seqs, title="Toy")
    text = report.read_text()
    assert text.startswith("# Toy")
    assert "| good | 95.2 | 100.0 |" in text
    assert "![Success plot](success_plot.png)" in text and (tmp_path / "rep" / "success_plot.png").is_file()
    assert "| occlusion | 1 | 95.2 | 31.7 |" in text


def test_missing_results_file_is_named(tmp_path):
    good, _ = _write_trackers(tmp_path)
    (good / "s2.txt").unlink()
    with pytest.raises(DataError, match="no results for sequence 's2'"):
        evaluate_trackers([good], _sequences())


def test_got10k_reads_image_size_from_first_frame(tmp_path):
    import cv2

    frame = tmp_path / "f" / "0.png"
    frame.parent.mkdir()
    cv2.imwrite(str(frame), np.zeros((30, 40, 3), np.uint8))  # W = 40, H = 30
    seq = Sequence(name="g", frames=[str(frame)] * 2, boxes=[[1, 1, 5, 5], [30, 10, 20, 10]], visible=[True, True])
    write_results(tmp_path / "trk", "g", [[1, 1, 5, 5], [30, 10, 10, 10]])
    # GT of frame 1 clipped to (30, 10, 10, 10): IoU 1 (0.5 without clipping); frame 0 is excluded
    table, results = evaluate_trackers([tmp_path / "trk"], [seq], protocol="got10k")
    assert table.loc["trk", "AO"] == pytest.approx(100.0)
    assert results["trk"]["n_frames"] == 1


@pytest.fixture
def fake_registry(monkeypatch):
    calls = []

    def build_dataset(name, root=None, split=None):
        calls.append((name, root, split))
        return _sequences()

    module = types.ModuleType("asearch.data.registry")
    module.build_dataset = build_dataset
    monkeypatch.setitem(sys.modules, "asearch.data.registry", module)
    return calls


def test_evaluate_and_report_commands(tmp_path, fake_registry, capsys):
    good, bad = _write_trackers(tmp_path)
    out = tmp_path / "eval"
    rc = main(["evaluate", "--results", str(good), str(bad), "--dataset", "lasot", "--root", "R", "--split", "test",
               "--names", "Good", "Bad", "--out", str(out)])
    assert rc == 0
    assert fake_registry == [("lasot", "R", "test")]
    printed = capsys.readouterr().out
    assert "protocol lasot" in printed and "95.2" in printed and "42.9" in printed and "fast_motion" in printed
    assert {p.name for p in out.iterdir()} >= {"summary.csv", "success_plot.png", "precision_plot.png",
                                                "attributes.csv", "results.json"}
    rc = main(["report", "--results", str(good), str(bad), "--dataset", "lasot", "--out", str(tmp_path / "r.md")])
    assert rc == 0
    text = (tmp_path / "r.md").read_text()
    assert "| good | 95.2 |" in text and "| bad | 42.9 |" in text and "`lasot`" in text
    (bad / "s1.txt").unlink()
    rc = main(["evaluate", "--results", str(bad), "--dataset", "lasot", "--out", str(out)])
    assert rc == 2
    assert "no results for sequence 's1'" in capsys.readouterr().err


def test_evaluate_command_on_a_tiny_lasot_layout(tmp_path, capsys):
    """End to end through the real dataset registry: two 3-frame videos in the LaSOT layout (empty frame files:
    the lasot protocol never reads images), one absent frame, LaSOT attribute flags from --option flags_dir."""
    root, flags = tmp_path / "lasot", tmp_path / "att"
    flags.mkdir()
    for name, box in (("cat-1", "10,10,10,10"), ("cat-2", "20,20,10,10")):
        video = root / "cat" / name
        (video / "img").mkdir(parents=True)
        for i in range(1, 4):
            (video / "img" / f"{i:08d}.jpg").write_bytes(b"")
        (video / "groundtruth.txt").write_text(f"{box}\n{box}\n{box}\n")
        (video / "full_occlusion.txt").write_text("0,0,1" if name == "cat-1" else "0,0,0")
        (video / "out_of_view.txt").write_text("0,0,0")
        (video / "nlp.txt").write_text("a cat")
        (flags / f"{name}.txt").write_text(",".join(["1" if name == "cat-1" else "0"] + ["0"] * 13))
        write_results(tmp_path / "trk", name, np.array([[float(v) for v in box.split(",")]] * 3))
    out = tmp_path / "ev"
    rc = main(["evaluate", "--results", str(tmp_path / "trk"), "--dataset", "lasot", "--root", str(root),
               "--split", "all", "--option", f"flags_dir={flags}", "--out", str(out)])
    assert rc == 0
    # cat-1: frame 2 absent -> (20 + 20 + 0) / 63; cat-2: 60/63; SUC = 100 / 126 = 79.4 %; P: (2/3 + 1) / 2 = 83.3 %
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["protocol"] == "lasot"
    assert data["trackers"]["trk"]["suc"] == pytest.approx(100 / 126)
    printed = capsys.readouterr().out
    assert "79.4" in printed and "83.3" in printed
    # the first LaSOT attribute (illumination variation) is flagged on cat-1 only: 40/63 = 63.5 %
    assert (out / "attributes.csv").read_text().splitlines()[1].split(",")[1:] == ["1", "63.4921"]


def test_evaluate_command_on_a_tiny_tnl2k_layout_with_attribute_flags(tmp_path, capsys):
    """TNL2K through the real registry: two 3-frame test videos (empty frame files), 0,0,0,0 = absent, the 17
    attribute flags of the toolkit's annos/att/<video>_attribute.txt given as --option flags_dir; the
    per-attribute table is the same machinery as LaSOT's."""
    from asearch.data.attributes import TNL2K_ATTRIBUTES

    root, att = tmp_path / "tnl2k", tmp_path / "annos" / "att"
    att.mkdir(parents=True)
    flagged = {"Car_video_1": {"CM", "MS"}, "dog_2": {"MS"}}
    for name, rows in (("Car_video_1", ["10,10,10,10", "10,10,10,10", "0,0,0,0"]),
                       ("dog_2", ["20,20,10,10"] * 3)):
        video = root / "TNL2K_test_subset" / name
        (video / "imgs").mkdir(parents=True)
        for i in range(1, 4):
            (video / "imgs" / f"{i:05d}.png").write_bytes(b"")
        (video / "groundtruth.txt").write_text("\n".join(rows) + "\n")
        (video / "language.txt").write_text("the target")
        (att / f"{name}_attribute.txt").write_text(
            "".join(("1" if a in flagged[name] else "0") + "\r\n" for a in TNL2K_ATTRIBUTES))
        box = [float(v) for v in rows[0].split(",")]
        write_results(tmp_path / "trk", name, np.array([box] * 3))
    out = tmp_path / "ev"
    rc = main(["evaluate", "--results", str(tmp_path / "trk"), "--dataset", "tnl2k", "--root", str(root),
               "--split", "test", "--option", f"flags_dir={att}", "--out", str(out)])
    assert rc == 0
    # lasot protocol: Car_video_1's frame 3 is absent (0,0,0,0) and fails -> 40/63; dog_2: 60/63
    data = json.loads((out / "results.json").read_text())
    assert data["trackers"]["trk"]["suc"] == pytest.approx(100 / 126)
    rows = {r.split(",")[0]: r.split(",")[1:] for r in (out / "attributes.csv").read_text().splitlines()[1:]}
    assert rows["CM"] == ["1", "63.4921"]  # Car_video_1 only: 40/63
    assert rows["MS"] == ["2", "79.3651"]  # both: 100/126
    assert rows["ROT"][0] == "0"  # an attribute no video has: n = 0
    assert "per attribute" in capsys.readouterr().out


def test_evaluate_command_extra_metrics_and_derived_attributes(tmp_path, fake_registry, capsys):
    """--metrics cauc macc and --derived-attributes relative_speed through `asearch evaluate`.

    Worked numbers (see test_evaluation_extra for the formulas): tracker "bad", s1 frames 1-2 are [15, 10, 10, 10]
    against [10, 10, 10, 10]: IoU 1/3, rho^2 = 25, c^2 = 15^2 + 10^2 = 325, cIoU = 1/3 - 1/13 = 10/39 -> 6 thresholds
    each: (20 + 12) / 63; s2: 20 / 63; cAUC = 52 / 126 = 41.3 %. mACC: s1 (0 + 1/3 + 1/3) / 3 = 2/9 (frame 0 is
    counted as written: [0, 0, 1, 1], IoU 0), s2 0 -> 1/9 = 11.1 %; "good" 100 %.
    """
    good, bad = _write_trackers(tmp_path)
    out = tmp_path / "eval"
    rc = main(["evaluate", "--results", str(good), str(bad), "--dataset", "lasot", "--metrics", "cauc", "macc",
               "--derived-attributes", "relative_speed", "--speed-threshold", "-1", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "cAUC" in printed and "mACC" in printed and "high_relative_speed" in printed
    data = json.loads((out / "results.json").read_text())
    assert data["trackers"]["bad"]["cauc"] == pytest.approx(52 / 126)
    assert data["trackers"]["bad"]["macc"] == pytest.approx(1 / 9)
    assert data["trackers"]["bad"]["per_sequence"]["macc"] == pytest.approx([2 / 9, 0.0])
    assert data["trackers"]["good"]["macc"] == pytest.approx(1.0)
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0] == "tracker,SUC,P,P_norm,cAUC,mACC,FPS"
    attrs = (out / "attributes.csv").read_text()
    assert "high_relative_speed,2," in attrs  # static boxes: speed 0 > -1 for both videos
