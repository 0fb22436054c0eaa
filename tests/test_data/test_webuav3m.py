"""WebUAV-3M and VL-SOT500 readers on tiny fake datasets written in their released layouts (module doc of
asearch.data.datasets.webuav3m)."""
import numpy as np
import pytest

from asearch.data.registry import build_dataset
from asearch.errors import DataError


def _video(folder, write_frames, frames_dir, boxes, sentence="a white car on the road", extra=()):
    write_frames(folder / frames_dir, [f"{i:06d}.jpg" for i in range(1, len(boxes) + 1)])
    write_frames(folder, ["000001.jpg"])  # the stray first frame beside the frame folder, as released
    (folder / "groundtruth_rect.txt").write_text("\n".join(boxes) + "\n")
    (folder / "absent.txt").write_text("\n".join("0" for _ in boxes) + "\n")
    (folder / "attributes.txt").write_text(",".join(["0"] * 17) + "\n")
    if sentence is not None:
        (folder / "language.txt").write_text(sentence + "\n")
    for name in extra:
        (folder / name).write_text("0\n")


def test_webuav3m_splits_boxes_absence_language(tmp_path, write_frames):
    root = tmp_path / "WebUAV-3M"
    _video(root / "Test" / "uav_2", write_frames, "img", ["1,2,3,4", "0,0,0,0", "2,3,3,4"], extra=["scenario.txt"])
    _video(root / "Test" / "uav_10", write_frames, "img", ["5,5,2,2", "6,5,2,2"], extra=["scenario.txt"])
    _video(root / "Train" / "t_1", write_frames, "img", ["5,5,2,2"], sentence="a boat")
    ds = build_dataset("WebUAV-3M", root=root, split="test")
    assert ds.names == ["uav_2", "uav_10"]  # natural order
    seq = ds["uav_2"]
    assert seq.boxes.tolist() == [[1, 2, 3, 4], [0, 0, 0, 0], [2, 3, 3, 4]]
    assert seq.visible.tolist() == [True, False, True]
    assert seq.sentence == "a white car on the road"
    assert [p.rsplit("/", 2)[-2:] for p in seq.frames] == [["img", f"00000{i}.jpg"] for i in (1, 2, 3)]
    assert seq.frame(0).shape == (8, 8, 3)
    assert build_dataset("webuav3m", root=root, split="train").names == ["t_1"]
    with pytest.raises(DataError, match="no folder for split 'dev'"):
        build_dataset("webuav3m", root=root, split="dev")


def test_vl_sot500_subsets_and_imgs_folder(tmp_path, write_frames):
    root = tmp_path / "VL-SOT500"
    _video(root / "VL-SOT230" / "Video-1", write_frames, "imgs", ["1,1,4,4", "2,1,4,4"], sentence="a tiny bird")
    _video(root / "VL-SOT270" / "Video-1", write_frames, "imgs", ["1,1,2,2"], extra=["relative_speed.txt"])
    seq = build_dataset("vl_sot500", root=root, split="vl-sot230")["Video-1"]
    assert len(seq) == 2 and seq.sentence == "a tiny bird" and seq.visible.all()
    assert build_dataset("vl_sot500", root=root, split="270")["Video-1"].boxes.tolist() == [[1, 1, 2, 2]]


def test_webuav3m_bad_input_names_the_file(tmp_path, write_frames):
    root = tmp_path / "w"
    _video(root / "v", write_frames, "img", ["1,2,3,4", "1,2,3"])
    with pytest.raises(DataError, match=r"groundtruth_rect.txt.*line 2: expected 4 values"):
        build_dataset("webuav3m", root=root)["v"]
    (root / "v" / "groundtruth_rect.txt").write_text("1,2,3,4\n" * 5)  # 5 boxes, 2 frames
    with pytest.raises(DataError, match="2 frames .* but 5 boxes"):
        build_dataset("webuav3m", root=root)["v"]
    (root / "x").mkdir()
    (root / "x" / "groundtruth_rect.txt").write_text("1,1,1,1\n")
    with pytest.raises(DataError, match="no frame folder"):
        build_dataset("webuav3m", root=root)["x"]
    with pytest.raises(DataError, match="no video folders with groundtruth_rect.txt"):
        build_dataset("webuav3m", root=tmp_path / "w" / "v" / "img")


def test_vl_sot500_through_asearch_evaluate_with_small_object(tmp_path, write_frames, capsys):
    """End to end: a 3000 x 3000 video with a 10 px target (relative size 0.33 %: small) and an 8 x 8 video with a
    4 px target (50 %: not small); the tracker writes the ground truth, so cAUC = SUC = 20/21 and mACC = 100 %."""
    import json

    from asearch.cli import main
    from asearch.evaluation import write_results

    root = tmp_path / "VL-SOT500" / "VL-SOT230"
    _video(root / "tiny", write_frames, "imgs", ["100,100,10,10", "102,100,10,10"])
    write_frames(root / "tiny" / "imgs", ["000001.jpg", "000002.jpg"], size=3000)
    _video(root / "big", write_frames, "imgs", ["1,1,4,4", "2,1,4,4"])
    for name, boxes in (("tiny", [[100, 100, 10, 10], [102, 100, 10, 10]]), ("big", [[1, 1, 4, 4], [2, 1, 4, 4]])):
        write_results(tmp_path / "trk", name, np.array(boxes, dtype=float))
    out = tmp_path / "ev"
    rc = main(["evaluate", "--results", str(tmp_path / "trk"), "--dataset", "vl_sot500", "--root",
               str(tmp_path / "VL-SOT500"), "--split", "vl-sot230", "--metrics", "cauc", "macc",
               "--derived-attributes", "small_object", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "results.json").read_text())["trackers"]["trk"]
    assert data["cauc"] == pytest.approx(20 / 21) and data["macc"] == pytest.approx(1.0)
    assert "small_object,1," in (out / "attributes.csv").read_text()
