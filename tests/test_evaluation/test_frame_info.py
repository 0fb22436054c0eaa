"""Per-frame tracker info beside the results (``<video>_info.json``: CTRTNL's switch decisions), its reader's
errors, the runner writing it only for trackers that declare ``frame_info_keys``, and the switch plot."""
import json

import numpy as np
import pytest

from asearch.errors import DataError
from asearch.evaluation.plots import plot_switch
from asearch.evaluation.results import read_frame_info, write_frame_info


def test_write_and_read_frame_info_round_trip_with_nan_as_null(tmp_path):
    rows = [{"mode": "init"}, {"mode": "local", "adars_score": np.float32(0.75), "threshold": 0.5},
            {"mode": "global", "adars_score": float("nan"), "threshold": 0.5, "extra": 1}]
    write_frame_info(tmp_path, "v", ("mode", "adars_score", "threshold"), rows)
    data = read_frame_info(tmp_path, "v")
    assert data["keys"] == ["mode", "adars_score", "threshold"]
    assert data["frames"] == [{"mode": "init", "adars_score": None, "threshold": None},
                              {"mode": "local", "adars_score": 0.75, "threshold": 0.5},
                              {"mode": "global", "adars_score": None, "threshold": 0.5}]
    assert read_frame_info(tmp_path, "other") is None


def test_a_broken_info_file_names_itself(tmp_path):
    (tmp_path / "v_info.json").write_text("{not json")
    with pytest.raises(DataError, match="v_info.json"):
        read_frame_info(tmp_path, "v")
    (tmp_path / "v_info.json").write_text(json.dumps({"keys": ["mode"]}))
    with pytest.raises(DataError, match="frames"):
        read_frame_info(tmp_path, "v")


class _Switching:
    """A one-video tracker whose results carry a mode: global on odd frames."""

    frame_info_keys = ("mode", "adars_score")

    def initialize(self, image, box, language):
        self.box, self.i = np.asarray(box, float), 0

    def track(self, image):
        self.i += 1
        return {"box": self.box, "mode": "global" if self.i % 2 else "local", "adars_score": 0.1 * self.i}


class _Plain(_Switching):
    frame_info_keys = ()


class _Seq:
    def __init__(self, name, n=4):
        self.name, self.boxes = name, np.array([[1.0, 1.0, 4.0, 4.0]] * n)

    def __len__(self):
        return len(self.boxes)

    def frame(self, i):
        return np.zeros((8, 8, 3), np.uint8)


def test_runner_writes_info_only_for_trackers_that_declare_keys(tmp_path):
    from trackers.runner import run_dataset

    run_dataset(_Switching, [_Seq("a")], tmp_path / "sw", progress=False)
    frames = read_frame_info(tmp_path / "sw", "a")["frames"]
    assert [f["mode"] for f in frames] == ["init", "global", "local", "global"]
    assert frames[0]["adars_score"] is None
    assert [f["adars_score"] for f in frames[1:]] == pytest.approx([0.1, 0.2, 0.3])
    run_dataset(_Plain, [_Seq("a")], tmp_path / "plain", progress=False)
    assert (tmp_path / "plain" / "a.txt").is_file() and read_frame_info(tmp_path / "plain", "a") is None


def test_switch_plot_is_written_and_needs_modes(tmp_path):
    info = {"keys": ["mode", "adars_score", "threshold"],
            "frames": [{"mode": "init", "adars_score": None, "threshold": None}]
            + [{"mode": m, "adars_score": s, "threshold": 0.5} for m, s in (("local", 0.9), ("global", 0.2))]}
    path = plot_switch(info, tmp_path / "plots" / "v.png")
    assert path.is_file() and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="mode"):
        plot_switch({"keys": ["score"], "frames": [{"score": 1.0}]}, tmp_path / "x.png")
