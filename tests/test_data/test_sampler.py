"""The template/search pair sampler: crops and boxes (hand-computed), determinism, negatives, flip and language."""
from pathlib import Path

import numpy as np
import pytest
import torch

from asearch.data.augment import brightness_contrast, flip_words, hflip_box_xyxy, to_gray
from asearch.data.sampler import PairDataset, SamplerConfig, collate_pairs, valid_frames
from asearch.data.sequence import Sequence
from asearch.data.synthetic import COLORS, generate_benchmark
from asearch.errors import ConfigError, DataError

CLEAN = dict(template_shift=0.0, template_scale=0.0, search_shift=0.0, search_scale=0.0, brightness=0.0,
             contrast=0.0, gray_prob=0.0, blur_prob=0.0, flip_prob=0.0, neg_prob=0.0)


class ListDataset:
    """The minimal dataset the sampler needs: ``__len__``, ``__getitem__ -> Sequence`` and ``name``."""

    def __init__(self, name, sequences):
        self.name, self.sequences = name, list(sequences)

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, i):
        return self.sequences[i]


def read_synthetic(root: Path) -> ListDataset:
    """Read the generated LaSOT-layout benchmark with a few lines (independent of the readers package)."""
    import json

    attrs = json.loads((root / "attributes.json").read_text())
    seqs = []
    for folder in sorted(root.glob("*/*-*")):
        boxes = np.loadtxt(folder / "groundtruth.txt", delimiter=",", ndmin=2)
        occ = np.array((folder / "full_occlusion.txt").read_text().strip().split(","), int)
        oov = np.array((folder / "out_of_view.txt").read_text().strip().split(","), int)
        seqs.append(Sequence(folder.name, [str(p) for p in sorted((folder / "img").iterdir())], boxes,
                             (occ == 0) & (oov == 0), sentence=(folder / "nlp.txt").read_text().strip(),
                             attributes=attrs[folder.name].split(","), dataset="synthetic",
                             category=folder.parent.name))
    return ListDataset("synthetic", seqs)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = generate_benchmark(tmp_path_factory.mktemp("synth"), videos=5, frames=30, size=96, seed=3)
    return read_synthetic(root)


def write_square_video(folder: Path, n: int = 5, box=(10, 20, 20, 20), color=(220, 40, 40)) -> list:
    """``n`` 64×64 PNG frames, grey background, a solid square at ``box`` (x, y, w, h; w×h pixels)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.full((64, 64, 3), 100, np.uint8)
        x, y, w, h = box
        img[y:y + h, x:x + w] = color
        p = folder / f"{i:03d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        paths.append(str(p))
    return paths


def chroma_mask(image_chw: torch.Tensor, color: str, tol: float = 0.1) -> np.ndarray:
    img = image_chw.numpy().transpose(1, 2, 0).astype(np.float64)
    s = img.sum(axis=-1, keepdims=True)
    ref = np.asarray(COLORS[color], np.float64)
    ref = ref / ref.sum()
    return (np.linalg.norm(img / np.maximum(s, 1) - ref, axis=-1) < tol) & (s[..., 0] > 60)


def test_crop_boxes_hand_computed(tmp_path):
    """w = h = 20, context 0.5: s_z = sqrt(40·40) = 40; the box spans 127·20/40 = 63.5 px centred on 63;
    the search side is 40·255/127, so the box also spans 63.5 px, centred on 127."""
    paths = write_square_video(tmp_path / "v")
    seq = Sequence("sq", paths, [[10, 20, 20, 20]] * 5, [True] * 5, category="square")
    ds = PairDataset([ListDataset("toy", [seq])], SamplerConfig(**CLEAN), seed=0, length=3)
    item = ds[0]
    assert item["template"].shape == (3, 127, 127) and item["search"].shape == (3, 255, 255)
    assert item["template"].dtype == torch.float32 and float(item["template"].max()) > 200  # 0..255, not normalized
    np.testing.assert_allclose(item["template_box"].numpy(), [31.25, 31.25, 94.75, 94.75], atol=1e-4)
    np.testing.assert_allclose(item["search_box"].numpy(), [95.25, 95.25, 158.75, 158.75], atol=1e-4)
    # the pixels inside the template box are red, the ones well outside are the grey background
    t = item["template"].numpy()
    assert np.allclose(t[:, 63, 63], [220, 40, 40], atol=2) and np.allclose(t[:, 63, 10], [100, 100, 100], atol=2)
    # TransT-style sizes: 128/256
    ds2 = PairDataset([ListDataset("toy", [seq])], SamplerConfig(template_size=128, search_size=256, **CLEAN))
    item2 = ds2[0]
    assert item2["template"].shape == (3, 128, 128) and item2["search"].shape == (3, 256, 256)
    np.testing.assert_allclose(item2["template_box"].numpy(), [31.5, 31.5, 95.5, 95.5], atol=1e-4)


def test_crops_follow_the_given_crop_rule_on_a_4_to_1_box(tmp_path):
    """Box 40×10 at (12, 27), centre (32, 32); crops 128/256, jitter off.

    * ``AreaFactorCrop(2, 4)`` (OSTrack): sqrt(400) = 20 -> sides 40 and 80, scale 3.2 in both crops: the box is
      128×32 around 63.5 (template) and 127.5 (search).
    * ``ContextFactorCrop(2, 4)`` (TransT): sides ceil(sqrt(65·35)) = ceil(47.70) = 48 and ceil(sqrt(115·85)) =
      ceil(98.87) = 99: template scale 128/48 (box 106.67×26.67), search scale 256/99 (box 103.43×25.86).
    """
    from asearch.data.crops import AreaFactorCrop, ContextFactorCrop

    paths = write_square_video(tmp_path / "v", box=(12, 27, 40, 10))
    seq = Sequence("bar", paths, [[12, 27, 40, 10]] * 5, [True] * 5)
    cfg = SamplerConfig(template_size=128, search_size=256, **CLEAN)
    item = PairDataset([ListDataset("toy", [seq])], cfg, crop_rule=AreaFactorCrop(2.0, 4.0))[0]
    np.testing.assert_allclose(item["template_box"].numpy(), [-0.5, 47.5, 127.5, 79.5], atol=1e-4)
    np.testing.assert_allclose(item["search_box"].numpy(), [63.5, 111.5, 191.5, 143.5], atol=1e-4)
    item = PairDataset([ListDataset("toy", [seq])], cfg, crop_rule=ContextFactorCrop(2.0, 4.0))[0]
    np.testing.assert_allclose(item["template_box"].numpy(), [10.1667, 50.1667, 116.8333, 76.8333], atol=1e-3)
    np.testing.assert_allclose(item["search_box"].numpy(), [75.7828, 114.5707, 179.2172, 140.4293], atol=1e-3)
    with pytest.raises(ConfigError, match="crop_rule must be an asearch.data.crops.CropRule"):
        PairDataset([ListDataset("toy", [seq])], cfg, crop_rule=lambda w, h: 1.0)


def test_default_rule_is_siamfc_context_and_jitter_stays_around_the_rule(tmp_path, synth):
    """Without a rule the sampler uses ``ContextCrop(context, template_size, search_size)``: the same items as with
    that rule given. The scale jitter stays around the rule's side: with ``search_scale = 0.25`` the side implied
    by the crop box (``w · 256 / box width``) lies in ``[0.75, 1.25] · 80`` for the 40×10 box of the area rule."""
    from asearch.data.crops import AreaFactorCrop, ContextCrop

    cfg = SamplerConfig(template_size=64, search_size=128)
    plain = PairDataset([synth], cfg, seed=2, length=4)
    given = PairDataset([synth], cfg, seed=2, length=4, crop_rule=ContextCrop(0.5, 64, 128))
    assert plain.crop_rule == ContextCrop(0.5, 64, 128)
    for i in range(4):
        a, b = plain[i], given[i]
        for key in ("template", "search", "template_box", "search_box"):
            assert torch.equal(a[key], b[key])

    paths = write_square_video(tmp_path / "v", box=(12, 27, 40, 10))
    seq = Sequence("bar", paths, [[12, 27, 40, 10]] * 5, [True] * 5)
    jitter = dict(CLEAN, search_scale=0.25, search_shift=0.1)
    ds = PairDataset([ListDataset("toy", [seq])], SamplerConfig(template_size=128, search_size=256, **jitter),
                     length=24, crop_rule=AreaFactorCrop(2.0, 4.0))
    sides = np.array([40 * 256 / float(ds[i]["search_box"][2] - ds[i]["search_box"][0]) for i in range(24)])
    assert sides.min() >= 0.75 * 80 - 1e-6 and sides.max() <= 1.25 * 80 + 1e-6 and sides.std() > 1.0


def test_search_box_covers_the_target_in_synthetic_frames(synth):
    ds = PairDataset([synth], SamplerConfig(search_shift=0.25, search_scale=0.18, template_shift=0.03,
                                            brightness=0.0, contrast=0.0, max_gap=10), seed=7, length=12)
    by_name = {s.name: s for s in synth.sequences}
    for i in range(len(ds)):
        item = ds[i]
        color = by_name[item["video"]].attributes[2]
        for key in ("template", "search"):
            mask = chroma_mask(item[key], color)
            x1, y1, x2, y2 = item[f"{key}_box"].numpy()
            inside = mask[max(int(y1) - 2, 0):int(y2) + 3, max(int(x1) - 2, 0):int(x2) + 3].sum()
            assert inside > 0.02 * (x2 - x1) * (y2 - y1), (key, item["video"], item["search_frame"])
            assert inside >= 0.9 * mask.sum(), (key, item["video"])  # the target's colour is (almost) all in the box
        assert abs(item["search_frame"] - item["template_frame"]) <= 10
        seq = by_name[item["video"]]
        assert seq.visible[item["template_frame"]] and seq.visible[item["search_frame"]]


def test_deterministic_per_seed_epoch_index(synth):
    cfg = SamplerConfig(gray_prob=0.3, blur_prob=0.5, flip_prob=0.5, neg_prob=0.3)
    a = PairDataset([synth], cfg, seed=11, length=6)
    b = PairDataset([synth], cfg, seed=11, length=6)
    order_a = [a[i] for i in range(6)]
    order_b = {i: b[i] for i in (5, 2, 0, 4, 1, 3)}                 # another order, another instance
    for i in range(6):
        for key in ("template", "search", "template_box", "search_box"):
            assert torch.equal(order_a[i][key], order_b[i][key])
        assert order_a[i]["sentence"] == order_b[i]["sentence"] and order_a[i]["label"] == order_b[i]["label"]
    a.set_epoch(1)
    assert any(not torch.equal(a[i]["search"], order_a[i]["search"]) for i in range(6))
    a.set_epoch(0)
    assert torch.equal(a[3]["search"], order_a[3]["search"])
    other = PairDataset([synth], cfg, seed=12, length=6)
    assert any(not torch.equal(other[i]["search"], order_a[i]["search"]) for i in range(6))


def test_negative_pairs_come_from_another_video(synth):
    neg = PairDataset([synth], SamplerConfig(neg_prob=1.0), seed=0, length=8)
    for i in range(len(neg)):
        item = neg[i]
        assert item["label"] == 0 and item["search_video"] != item["video"]
        assert item["language_mask"] is False          # another target in the search crop: not a contrastive pair
    pos = PairDataset([synth], SamplerConfig(neg_prob=0.0, max_gap=3), seed=0, length=8)
    for i in range(len(pos)):
        item = pos[i]
        assert item["label"] == 1 and item["search_video"] == item["video"]
        assert item["language_mask"] is True           # the synthetic videos all have a sentence
        assert abs(item["search_frame"] - item["template_frame"]) <= 3


def test_flip_mirrors_crops_boxes_and_words(tmp_path):
    paths = write_square_video(tmp_path / "v")
    seq = Sequence("sq", paths, [[10, 20, 20, 20]] * 5, [True] * 5, dataset="toy",
                   sentence="the red box on the Left moving to the top-right, bright and left-aligned",
                   attributes=["box", "shape", "red", "top-left"])
    cfg = dict(CLEAN, template_shift=0.1, search_shift=0.2)         # asymmetric crops: the flip is visible
    plain = PairDataset([ListDataset("toy", [seq])], SamplerConfig(**cfg), seed=4, length=2)[1]
    flipped = PairDataset([ListDataset("toy", [seq])], SamplerConfig(**dict(cfg, flip_prob=1.0)), seed=4, length=2)[1]
    assert torch.equal(flipped["template"], torch.flip(plain["template"], dims=[2]))
    assert torch.equal(flipped["search"], torch.flip(plain["search"], dims=[2]))
    x1, y1, x2, y2 = plain["search_box"].tolist()
    np.testing.assert_allclose(flipped["search_box"].numpy(), [254 - x2, y1, 254 - x1, y2], atol=1e-4)
    assert flipped["sentence"] == "the red box on the Right moving to the top-left, bright and right-aligned"
    assert flipped["attributes"] == ["box", "shape", "red", "top-right"]
    assert plain["attributes"] == ["box", "shape", "red", "top-left"]


def test_augment_helpers():
    assert flip_words("LEFT or right, bright, leftover") == "RIGHT or left, bright, leftover"
    np.testing.assert_allclose(hflip_box_xyxy([2, 3, 5, 7], 10), [4, 3, 7, 7])
    img = np.array([[[100.0, 50.0, 0.0]]], np.float32)
    np.testing.assert_allclose(to_gray(img)[0, 0], [0.299 * 100 + 0.587 * 50] * 3, rtol=1e-6)
    np.testing.assert_allclose(brightness_contrast(img, 1.2, 1.0)[0, 0], [120, 60, 0], rtol=1e-5)  # brightness scales
    # contrast blends with the mean grey m = 0.299·120 + 0.587·60 = 71.1: out = (x − m)·c + m, clipped
    np.testing.assert_allclose(brightness_contrast(img, 1.2, 0.5)[0, 0], [95.55, 65.55, 35.55], rtol=1e-5)
    two = np.array([[[100.0] * 3, [200.0] * 3]], np.float32)
    np.testing.assert_allclose(brightness_contrast(two, 1.0, 0.5)[0, :, 0], [125, 175], rtol=1e-5)


@pytest.mark.parametrize("strategy, category, words", [
    ("zero", "person", ["", "", "", ""]),
    ("template", "person", ["", "", "", ""]),
    ("attribute", "person", ["person", "object", "none", "none"]),
    ("attribute", None, ["none", "object", "none", "none"]),
])
def test_strategies_for_data_without_language(tmp_path, strategy, category, words):
    paths = write_square_video(tmp_path / "img", n=1)
    image = Sequence("coco_1", paths, [[10, 20, 20, 20]], [True], category=category, dataset="coco")
    item = PairDataset([ListDataset("coco", [image])], SamplerConfig(language_strategy=strategy))[0]
    assert item["has_language"] is False and item["sentence"] == ""
    assert item["attributes"] == words and item["language_strategy"] == strategy
    assert item["language_mask"] is False              # a fallback is no caption of the target
    assert item["template_frame"] == item["search_frame"] == 0       # image datasets: the pair is one image


def test_language_fields_of_videos_with_language(synth):
    item = PairDataset([synth], SamplerConfig(language_strategy="attribute"), seed=1, length=2)[0]
    seq = next(s for s in synth.sequences if s.name == item["video"])
    assert item["has_language"] is True and item["sentence"] == seq.sentence
    assert item["attributes"] == seq.attributes and item["language_strategy"] == "attribute"


def test_collate_and_source_ratios(tmp_path, synth):
    paths = write_square_video(tmp_path / "img", n=1)
    images = ListDataset("coco", [Sequence("img", paths, [[10, 20, 20, 20]], [True], category="cat")])
    ds = PairDataset([(synth, 0.0), (images, 1.0)], SamplerConfig(template_size=32, search_size=64), length=4)
    batch = collate_pairs([ds[i] for i in range(4)])
    assert batch["template"].shape == (4, 3, 32, 32) and batch["search"].shape == (4, 3, 64, 64)
    assert batch["template_box"].shape == (4, 4) and batch["template_box"].dtype == torch.float32
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [1, 1, 1, 1]
    assert batch["has_language"].dtype == torch.bool and not batch["has_language"].any()
    assert batch["language_mask"].dtype == torch.bool and not batch["language_mask"].any()
    assert batch["video"] == ["img"] * 4 and batch["attributes"] == [["", "", "", ""]] * 4   # ratio 0: never synth
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_pairs)
    assert next(iter(loader))["search"].shape == (2, 3, 64, 64)


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="language_strategy"):
        SamplerConfig(language_strategy="caption").validate()
    with pytest.raises(ConfigError, match="neg_prob"):
        SamplerConfig(neg_prob=1.5).validate()
    paths = write_square_video(tmp_path / "v", n=3)
    hidden = Sequence("hidden", paths, [[10, 20, 20, 20], [0, 0, 0, 0], [np.nan] * 4], [False, True, True])
    assert valid_frames(hidden).tolist() == []
    ds = PairDataset([ListDataset("empty-ish", [hidden])], SamplerConfig(max_tries=3))
    with pytest.raises(DataError, match="empty-ish"):
        ds[0]
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(DataError, match="holds no videos"):
        PairDataset([ListDataset("none", [])])


def test_with_the_registry_reader(tmp_path):
    """The real reader of the benchmark feeds the sampler (skipped while asearch.data.registry is absent)."""
    registry = pytest.importorskip("asearch.data.registry")
    root = generate_benchmark(tmp_path / "b", videos=5, frames=8, size=64, seed=0)
    train = registry.build_dataset("synthetic", root, "train")
    item = PairDataset([train], SamplerConfig(template_size=128, search_size=256), seed=0, length=1)[0]
    assert item["search"].shape == (3, 256, 256) and item["has_language"] and len(item["attributes"]) == 4


def test_no_negative_without_another_reachable_video(tmp_path, synth):
    """With a single reachable video (the other source has ratio 0), a negative pair is impossible: positives."""
    paths = write_square_video(tmp_path / "v", n=2)
    one = ListDataset("one", [Sequence("sq", paths, [[10, 20, 20, 20]] * 2, [True] * 2)])
    ds = PairDataset([(one, 1.0), (synth, 0.0)], SamplerConfig(neg_prob=1.0, template_size=32, search_size=64), length=3)
    assert [ds[i]["label"] for i in range(3)] == [1, 1, 1]


def test_crop_pads_with_the_channel_mean():
    """The crop's padding is the frame's per-channel mean (for uint8 OpenCV's sum, the same values as numpy's);
    a crop half outside the frame: hand-computed pad and inside values."""
    from asearch.data.crops import channel_mean, crop_square

    rng = np.random.default_rng(0)
    for dtype in (np.uint8, np.float32):
        img = (rng.random((37, 53, 3)) * 255).astype(dtype)
        np.testing.assert_allclose(channel_mean(img), img.reshape(-1, 3).mean(0), rtol=1e-12)
        a = crop_square(img, (5.0, 30.0), 40.0, 31)
        b = crop_square(img, (5.0, 30.0), 40.0, 31, pad_value=img.reshape(-1, 3).mean(0))
        np.testing.assert_array_equal(a, b)
    wide = rng.random((4, 4, 6))  # more channels than OpenCV's mean handles: numpy's
    np.testing.assert_allclose(channel_mean(wide), wide.reshape(-1, 6).mean(0))
    img = np.zeros((10, 10, 3), dtype=np.uint8)
    img[:, :5] = (10, 20, 30)                    # left half coloured, mean = (5, 10, 15)
    crop = crop_square(img, (0.5, 4.5), 10.0, 10)  # 1 px per crop px; crop columns 0..4 fall left of the frame
    np.testing.assert_allclose(crop[5, 0], (5.0, 10.0, 15.0))
    np.testing.assert_allclose(crop[5, 6], (10.0, 20.0, 30.0))
