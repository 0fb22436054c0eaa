"""The grounding model's data path (asearch/data/grounding.py): letterboxing, the normalised box, the flip that
mirrors image, box and sentence together, and the errors for sources that cannot give a single item."""
from types import SimpleNamespace

import numpy as np
import pytest

from asearch.data.grounding import GroundingDataset, GroundingSamplerConfig, build_grounding_dataset, letterbox
from asearch.errors import ConfigError, DataError


def _video(name: str, sentence: str, box=(10, 20, 30, 10), size=(60, 100), frames: int = 2):
    """A video whose frames are black with the target a white rectangle at ``box`` (x, y, w, h) in every frame."""
    h, w = size
    x, y, bw, bh = box
    image = np.zeros((h, w, 3), np.uint8)
    image[y:y + bh, x:x + bw] = 255
    return SimpleNamespace(name=name, sentence=sentence, boxes=np.array([box] * frames, np.float64),
                           visible=np.ones(frames, bool), frame=lambda i: image)


class _Reader(list):
    name = "fake"
    has_language = True


def _white_box(image_chw) -> tuple:
    """x, y, w, h of the pixels brighter than mid-grey (the letterboxed target)."""
    ys, xs = np.nonzero(image_chw.numpy().mean(0) > 127)
    return xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def test_letterbox_scales_the_long_side_and_pads_with_the_mean():
    image = np.zeros((50, 100, 3), np.uint8)
    image[:, :50] = 200                                    # mean colour 100
    out, scale = letterbox(image, 40)
    assert out.shape == (40, 40, 3) and scale == pytest.approx(0.4)
    assert np.allclose(out[25:], 100.0)                    # rows below the 20 scaled rows are the padding


@pytest.mark.parametrize("flip", [False, True])
def test_item_box_is_where_the_target_is_in_the_square(flip):
    ds = GroundingDataset([(_Reader([_video("v", "the bar on the left")]), 1.0)],
                          GroundingSamplerConfig(flip_prob=1.0 if flip else 0.0), image_size=50, length=4)
    item = ds[0]
    # 100x60 frame -> scale 0.5: the 30x10 target at (10, 20) is at (5, 10), 15x5 in the 50x50 square
    expect_x = 50 - 5 - 15 if flip else 5
    assert _white_box(item["image"]) == (expect_x, 10, 15, 5)
    cx, cy, w, h = item["box"].tolist()
    assert (cx, cy, w, h) == pytest.approx(((expect_x + 7.5) / 50, 12.5 / 50, 15 / 50, 5 / 50), abs=1e-6)
    assert item["sentence"] == ("the bar on the right" if flip else "the bar on the left")
    assert item["frame"] == 0 and item["has_language"]


def test_items_are_deterministic_per_seed_epoch_and_index():
    videos = _Reader([_video(f"v{i}", f"target {i}", box=(5 + 10 * i, 5, 10, 10)) for i in range(5)])
    a = GroundingDataset([(videos, 1.0)], GroundingSamplerConfig(frame="any", flip_prob=0.5), 40, seed=3, length=8)
    b = GroundingDataset([(videos, 1.0)], GroundingSamplerConfig(frame="any", flip_prob=0.5), 40, seed=3, length=8)
    assert [a[i]["video"] for i in range(8)] == [b[i]["video"] for i in range(8)]
    assert all(bool((a[i]["box"] == b[i]["box"]).all()) for i in range(8))
    a.set_epoch(1)
    assert [a[i]["video"] for i in range(8)] != [b[i]["video"] for i in range(8)]


def test_videos_without_a_sentence_are_skipped_and_none_at_all_is_an_error():
    mixed = _Reader([_video("silent", "  "), _video("named", "the white bar")])
    ds = GroundingDataset([(mixed, 1.0)], GroundingSamplerConfig(), 40, length=6)
    assert {ds[i]["video"] for i in range(6)} == {"named"}
    silent = GroundingDataset([(_Reader([_video("silent", "")]), 1.0)], GroundingSamplerConfig(max_tries=5), 40)
    with pytest.raises(DataError, match="sentence"):
        silent[0]


def test_a_reader_without_sentences_is_a_config_error():
    reader = _Reader([_video("v", "x")])
    reader.has_language = False
    reader.name = "got10k"
    with pytest.raises(ConfigError, match="got10k.*no sentences"):
        build_grounding_dataset([reader], [1.0], {}, SimpleNamespace(image_size=40),
                                SimpleNamespace(missing="zero"), seed=0, length=4)
    with pytest.raises(ConfigError, match="data.sampler.frame"):
        GroundingSamplerConfig(frame="last")
