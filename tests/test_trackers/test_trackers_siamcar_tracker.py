"""SiamCAR tracker (inference policy), batched lockstep tracking and the generic runner, with a 'perfect' fake
model that reads the target (a red square) off the search crop: any error comes from the tracker's geometry."""
import os

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from asearch.data.sequence import Sequence
from asearch.errors import ArchitectureError, ConfigError
from asearch.evaluation.results import read_results
from trackers.heads.car import location_offset, score_locations, score_size
from trackers.inference.siamcar import SiamCARTracker, TrackerConfig
from trackers.losses.car import centerness_target
from trackers.runner import run_dataset

SIZE = 160
SIDE = 24


class PerfectCAR(nn.Module):
    """Model-interface fake: the score peaks at the red square, ltrb are its exact distances (crop pixels)."""

    def __init__(self, uses_language: bool = False, template_size: int = 63, search_size: int = 127):
        super().__init__()
        self.uses_language = uses_language
        self.language_dim = 4
        self.template_size, self.search_size, self.stride = template_size, search_size, 8
        self.location_offset = location_offset(template_size)
        self.score_size = score_size(template_size, search_size)
        self.anchor = nn.Parameter(torch.zeros(()))
        self.template_calls = []

    def template(self, template, language=None, genome=None, template_box=None, use_template_language=None):
        self.template_calls.append(template.shape[0])
        state = {"kernels": [template.mean(dim=(2, 3))], "genome": genome}
        if language is not None:
            state["language"] = language
        return state

    def track(self, search, state):
        b, m = search.shape[0], self.score_size
        assert state["kernels"][0].shape[0] == b
        locs = score_locations(m, self.stride, self.location_offset)
        cls = torch.zeros(b, 2, m * m)
        loc = torch.ones(b, 4, m * m)
        for i in range(b):
            red = (search[i, 0] > 150) & (search[i, 1] < 80)
            ys, xs = torch.nonzero(red, as_tuple=True)
            x1, x2 = xs.min().float() - 0.5, xs.max().float() + 0.5
            y1, y2 = ys.min().float() - 0.5, ys.max().float() + 0.5
            c = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2])
            cls[i, 1] = 10.0 - (locs - c).norm(dim=1) / 4.0
            loc[i] = torch.stack([locs[:, 0] - x1, locs[:, 1] - y1, x2 - locs[:, 0], y2 - locs[:, 1]]).clamp(min=0.5)
        # the true centerness (FCOS / SiamCAR target) as a logit: the released decoder reads the centre off the
        # peak of cls x centerness (a flat centerness would leave it the saturated cls plateau)
        cen = centerness_target(loc.transpose(1, 2)).clamp(1e-4, 1 - 1e-4)
        return {"cls": cls.view(b, 2, m, m), "cen": torch.logit(cen).view(b, 1, m, m), "loc": loc.view(b, 4, m, m)}


def make_video(folder, name, n, start, velocity, sentence=None):
    os.makedirs(folder, exist_ok=True)
    frames, boxes = [], []
    for i in range(n):
        img = np.full((SIZE, SIZE, 3), 90, np.uint8)
        x, y = int(start[0] + velocity[0] * i), int(start[1] + velocity[1] * i)
        img[y:y + SIDE, x:x + SIDE] = (230, 30, 30)
        path = os.path.join(folder, f"{name}_{i:04d}.png")
        cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        frames.append(path)
        boxes.append([x, y, SIDE, SIDE])
    return Sequence(name, frames, np.array(boxes, float), np.ones(n, bool), sentence=sentence)


def iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    return [make_video(root, "a", 10, (20, 30), (4, 3), "a red square"),
            make_video(root, "b", 6, (110, 100), (-5, -2)),
            make_video(root, "c", 8, (60, 20), (1, 6), "the red box")]


def test_tracker_follows_moving_square(videos):
    seq = videos[0]
    tracker = SiamCARTracker(PerfectCAR(), TrackerConfig(), device="cpu")
    tracker.initialize(seq.frame(0), seq.boxes[0])
    for i in range(1, len(seq)):
        out = tracker.track(seq.frame(i))
        assert len(out["box"]) == 4 and 0.0 <= out["score"] <= 1.0
        gt = seq.boxes[i]
        centre_err = np.hypot(out["box"][0] + out["box"][2] / 2 - gt[0] - gt[2] / 2,
                              out["box"][1] + out["box"][3] / 2 - gt[1] - gt[3] / 2)
        assert centre_err < 1.5, (i, out["box"], gt)
        assert iou(out["box"], gt) > 0.85


def test_score_upsampling_keeps_the_geometry(videos):
    seq = videos[2]
    # score_upsample is the argmax decoder's option (the released decoder has its own fixed upsampling)
    tracker = SiamCARTracker(PerfectCAR(), TrackerConfig(decoder="argmax", score_upsample=4), device="cpu")
    assert tracker.map_size == (10 - 1) * 4 + 1
    tracker.initialize(seq.frame(0), seq.boxes[0])
    for i in range(1, len(seq)):
        assert iou(tracker.track(seq.frame(i))["box"], seq.boxes[i]) > 0.85


def test_batched_tracking_equals_per_video_tracking(videos):
    n = min(len(v) for v in videos)
    single = []
    for seq in videos:
        t = SiamCARTracker(PerfectCAR(), device="cpu")
        t.initialize(seq.frame(0), seq.boxes[0])
        single.append([t.track(seq.frame(i))["box"] for i in range(1, n)])
    model = PerfectCAR()
    t = SiamCARTracker(model, device="cpu")
    t.initialize_batch([s.frame(0) for s in videos], [s.boxes[0] for s in videos])
    assert model.template_calls == [3]          # the template branch ran once, for all videos together
    batched = [[] for _ in videos]
    for i in range(1, n):
        for k, out in enumerate(t.track_batch([s.frame(i) for s in videos])):
            batched[k].append(out["box"])
    np.testing.assert_allclose(np.array(batched), np.array(single), atol=1e-9)
    # drop the middle video: the others continue unchanged
    t.keep([0, 2])
    assert t.num_videos == 2
    with pytest.raises(Exception, match="2 videos"):
        t.track_batch([videos[0].frame(n)])


class CountingFeaturizer:
    dim = 4

    def __init__(self):
        self.calls = []

    def __call__(self, sentences, attributes, has_language, strategies=None):
        self.calls.append(list(sentences))
        vec = torch.tensor([[float(len(s or "")), 1.0, 0.0, 0.0] for s in sentences])
        return vec, torch.zeros(len(sentences), dtype=torch.bool)


def test_language_is_encoded_once_per_video(videos):
    feat = CountingFeaturizer()
    t = SiamCARTracker(PerfectCAR(uses_language=True), featurizer=feat, device="cpu")
    t.initialize_batch([s.frame(0) for s in videos], [s.boxes[0] for s in videos], videos)
    for i in range(1, 5):
        t.track_batch([s.frame(i) for s in videos])
    assert feat.calls == [["a red square", None, "the red box"]]
    # a vision-only model never calls the featurizer
    feat2 = CountingFeaturizer()
    t2 = SiamCARTracker(PerfectCAR(uses_language=False), featurizer=feat2, device="cpu")
    t2.initialize(videos[0].frame(0), videos[0].boxes[0], videos[0])
    assert feat2.calls == []


def test_tracker_crops_by_the_siamfc_rule(monkeypatch):
    """SiamCAR's rule is SiamFC's context crop (the sampler's default): for a 4:1 box 40×10 with context 0.5,
    p = 25: template side sqrt(65·35) = 47.697, scale 63/47.697 = 1.3208, search side 47.697·127/63 = 96.151."""
    from asearch.data.crops import ContextCrop
    from trackers.registry import crop_rule

    tracker = SiamCARTracker(PerfectCAR(), TrackerConfig(), device="cpu")
    assert tracker.crops == ContextCrop(0.5, 63, 127)
    assert crop_rule({"name": "siamcar"}, {"context_amount": 0.4}) == ContextCrop(0.4, 127, 255)
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    _, _, video = tracker.prepare_video(img, np.array([60.0, 75.0, 40.0, 10.0]))
    _, geo = tracker.search_crop(img, video)
    assert geo["scale"] == pytest.approx(63 / 47.6970, rel=1e-5)
    assert tracker.crops.search_side(40.0, 10.0) == pytest.approx(96.1510, abs=1e-4)
    calls = []
    monkeypatch.setattr(ContextCrop, "search_side", lambda self, w, h: calls.append((w, h)) or 100.0)
    tracker.search_crop(img, video)
    assert calls == [(40.0, 10.0)]


def test_config_and_genome_errors():
    with pytest.raises(ConfigError, match="score_upsample"):
        TrackerConfig(score_upsample=0)
    with pytest.raises(ConfigError, match="window_influence"):
        TrackerConfig(window_influence=1.5)
    with pytest.raises(ArchitectureError, match="fixed architecture"):
        SiamCARTracker(PerfectCAR(), genome=[[0] * 20, [0] * 20, [0] * 4, [0] * 4], device="cpu")


def test_runner_batched_matches_sequential_and_resumes(videos, tmp_path):
    seq_dir, bat_dir = tmp_path / "seq", tmp_path / "bat"
    factory = lambda: SiamCARTracker(PerfectCAR(), device="cpu")  # noqa: E731
    s1 = run_dataset(factory, videos, seq_dir, batch_size=1, progress=False)
    s2 = run_dataset(factory, videos, bat_dir, batch_size=2, progress=False)   # lengths 10, 6, 8: slots refill
    assert sorted(s1["done"]) == sorted(s2["done"]) == ["a", "b", "c"]
    for seq in videos:
        a, b = read_results(seq_dir, seq.name), read_results(bat_dir, seq.name)
        assert a.shape == (len(seq), 4)
        np.testing.assert_allclose(a[0], seq.boxes[0])            # frame 0 = ground truth
        np.testing.assert_allclose(a, b, atol=1e-3)               # written with 3 decimals or so
        assert (bat_dir / f"{seq.name}_time.json").is_file()
    # resumable: a second run skips every finished sequence and leaves the files alone
    before = {p.name: p.stat().st_mtime_ns for p in bat_dir.glob("*.txt")}
    s3 = run_dataset(factory, videos, bat_dir, batch_size=2, progress=False)
    assert s3["done"] == [] and sorted(s3["skipped"]) == ["a", "b", "c"]
    assert before == {p.name: p.stat().st_mtime_ns for p in bat_dir.glob("*.txt")}
    # a partial (killed) result is redone; max_frames and limit_videos are honoured
    (bat_dir / "b.txt").write_text("1,2,3,4\n")
    s4 = run_dataset(factory, videos, bat_dir, batch_size=2, progress=False)
    assert s4["done"] == ["b"]
    s5 = run_dataset(factory, videos, tmp_path / "short", batch_size=3, max_frames=4, limit_videos=2,
                     progress=False)
    assert sorted(s5["done"]) == ["a", "b"]
    assert read_results(tmp_path / "short", "a").shape == (4, 4)


def test_runner_prints_a_line_per_video_without_a_bar(videos, tmp_path, capsys):
    """``progress=False`` (``--no-progress``, or stdout not a terminal): one plain line per finished video."""
    run_dataset(lambda: SiamCARTracker(PerfectCAR(), device="cpu"), videos, tmp_path / "plain", batch_size=2,
                progress=False)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("track video")]
    assert len(lines) == 3 and lines[-1].startswith("track video 3/3 ")
    assert sorted(l.split()[3].rstrip(":") for l in lines) == ["a", "b", "c"]
    assert all(" frames" in l for l in lines)
