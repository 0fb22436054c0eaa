"""Builders of tiny fake datasets in native layouts (8×8 frames written with cv2) for the reader tests."""
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pytest


def _write_frames(folder: Path, names: Iterable[str], size: int = 8) -> None:
    """Write one tiny image per name; frame k is filled with the BGR colour (k, 10 + k, 20 + k)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        img = np.zeros((size, size, 3), np.uint8)
        img[:] = (k, 10 + k, 20 + k)
        assert cv2.imwrite(str(folder / name), img)


def _write_lasot_video(root: Path, name: str, boxes: Sequence[str], occ: str = None, oov: str = None,
                      nlp: str = "a red plane in the sky") -> Path:
    """``root/<class>/<name>/`` in the LaSOT layout; ``boxes`` are the groundtruth.txt lines."""
    folder = root / name.rsplit("-", 1)[0] / name
    _write_frames(folder / "img", [f"{i:08d}.jpg" for i in range(1, len(boxes) + 1)])
    (folder / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
    n = len(boxes)
    (folder / "full_occlusion.txt").write_text(occ if occ is not None else ",".join(["0"] * n))
    (folder / "out_of_view.txt").write_text(oov if oov is not None else ",".join(["0"] * n))
    if nlp is not None:
        (folder / "nlp.txt").write_text(nlp)
    return folder


@pytest.fixture
def write_frames():
    """``write_frames(folder, names, size=8)``: tiny frames, frame k filled with BGR (k, 10 + k, 20 + k)."""
    return _write_frames


@pytest.fixture
def write_lasot_video():
    """``write_lasot_video(root, name, boxes, occ=None, oov=None, nlp=...)``: one video in the LaSOT layout."""
    return _write_lasot_video


@pytest.fixture
def lasot_root(tmp_path):
    """LaSOT with airplane-1 (official test video) and airplane-2, bird-2 (training videos), 3 frames each."""
    root = tmp_path / "lasot"
    _write_lasot_video(root, "airplane-1", ["10,20,30,40", "11,21,30,40", "12,22,30,40"], occ="0,1,0", oov="0,0,1")
    _write_lasot_video(root, "airplane-2", ["1,2,3,4", "1,2,3,4", "1,2,3,4"], nlp="a white plane\n")
    _write_lasot_video(root, "bird-2", ["5,5,5,5", "5,5,5,5", "5,5,5,5"])  # bird-2 is also a test video
    return root
