"""Results files: exact round trip, tolerant reader, errors naming file and line, done-check, speed records."""
import json
import math

import numpy as np
import pytest

from asearch.errors import DataError
from asearch.evaluation import read_results, read_speed, results_done, write_results


def test_round_trip_is_exact(tmp_path):
    boxes = np.array([[1, 2, 3, 4], [0.1, 12.5, 1e-3, 7.25], [np.nan, np.nan, np.nan, np.nan]])
    path = write_results(tmp_path, "seq-1", boxes)
    assert path.name == "seq-1.txt"
    assert path.read_text().splitlines()[0] == "1,2,3,4"
    back = read_results(tmp_path, "seq-1")
    np.testing.assert_array_equal(back[:2], boxes[:2])
    assert np.isnan(back[2]).all()
    assert results_done(tmp_path, "seq-1", 3)
    assert not results_done(tmp_path, "seq-1", 4)
    assert not results_done(tmp_path, "other", 3)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_reader_tolerates_tabs_spaces_crlf_and_trailing_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"1\t2\t3\t4\r\n5 6  7 8\r\n9, 10, 11, 12\r\n\r\n")
    np.testing.assert_array_equal(read_results(tmp_path, "a"), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])


def test_reader_errors_name_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_text("1,2,3,4\n1,2,3\n")
    with pytest.raises(DataError, match=r"bad\.txt.*line 2: expected 4 values"):
        read_results(tmp_path, "bad")
    (tmp_path / "word.txt").write_text("1,2,3,4\n1,2,3,4\n1,x,3,4\n")
    with pytest.raises(DataError, match=r"word\.txt.*line 3: not a number"):
        read_results(tmp_path, "word")
    with pytest.raises(DataError, match="no results for sequence 'missing'"):
        read_results(tmp_path, "missing")


def test_speed_records(tmp_path):
    write_results(tmp_path, "s", np.zeros((4, 4)) + 1, times=[0.1, 0.1, 0.1, 0.1])
    speed = read_speed(tmp_path, "s")
    assert speed["fps"] == pytest.approx(10.0) and speed["n_frames"] == 4
    assert json.loads((tmp_path / "s_time.json").read_text())["times"] == [0.1] * 4
    write_results(tmp_path, "f", np.ones((2, 4)), fps=25.0)
    assert read_speed(tmp_path, "f")["fps"] == 25.0
    (tmp_path / "p_time.txt").write_text("0.5\n0.5\n")  # pytracking layout
    assert read_speed(tmp_path, "p")["fps"] == pytest.approx(2.0)
    assert read_speed(tmp_path, "none") is None
    with pytest.raises(DataError, match="N x 4"):
        write_results(tmp_path, "x", np.zeros((3, 5)))
    assert not math.isnan(read_speed(tmp_path, "s")["fps"])
