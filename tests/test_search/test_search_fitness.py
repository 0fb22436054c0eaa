"""BN recalibration (hand-computed statistics) and the real tracking fitness on a tiny supernet."""
import numpy as np
import pytest
import torch
from torch import nn

from asearch.errors import ConfigError, DataError
from asearch.search.bn import recalibrate_bn
from asearch.search.fitness import (BNConfig, FitnessConfig, TrackingFitness, ValidationConfig, ValidationVideo,
                                    clear_worker_cache, load_validation_videos, track_lockstep, track_one_by_one)


def test_bn_recalibration_is_the_plain_average_of_batch_statistics():
    net = nn.Sequential(nn.BatchNorm1d(2, momentum=0.3), nn.BatchNorm1d(2, track_running_stats=False))
    net[0].running_mean.fill_(5.0)
    net.eval()
    b1 = torch.tensor([[0.0, 1.0], [2.0, 3.0]])            # means (1, 2), unbiased vars (2, 2)
    b2 = torch.tensor([[4.0, 0.0], [4.0, 4.0], [4.0, 8.0]])  # means (4, 4), unbiased vars (0, 16)
    stats = recalibrate_bn(net, [b1, b2], lambda b: net(b))
    bn = net[0]
    assert torch.allclose(bn.running_mean, torch.tensor([2.5, 3.0]))   # (1+4)/2, (2+4)/2
    assert torch.allclose(bn.running_var, torch.tensor([1.0, 9.0]))    # (2+0)/2, (2+16)/2
    assert int(bn.num_batches_tracked) == 2
    assert bn.momentum == 0.3 and not net.training
    assert stats["batches"] == 2 and stats["layers"] == 1
    # the order of the batches does not matter (equal weights), unlike an exponential momentum
    recalibrate_bn(net, [b2, b1], lambda b: net(b))
    assert torch.allclose(bn.running_mean, torch.tensor([2.5, 3.0]))


def _fitness(supernet, synth_root, **kw):
    cfg = FitnessConfig(validation=ValidationConfig(root=str(synth_root), videos=2, frames=6),
                        bn=BNConfig(batches=2, batch_size=3), **kw)
    return TrackingFitness(supernet, cfg, device="cpu")


def test_tracking_fitness_is_deterministic(tiny_supernet, synth_root):
    clear_worker_cache()
    fit = _fitness(tiny_supernet, synth_root)
    ctx = fit.context()
    assert fit.context() is ctx and _fitness(tiny_supernet, synth_root).context() is ctx  # built once per process
    assert ctx.bn_batches is not None and len(ctx.bn_batches) == 2
    assert ctx.bn_batches[0]["template"].dtype == torch.uint8 and ctx.bn_batches[0]["template"].shape[0] == 3
    assert [len(v) for v in ctx.videos] == [6, 6]
    a, b = ctx.space.random(0), ctx.space.random(1)
    ra = fit(a)
    assert 0.0 <= ra["suc"] <= 1.0 and ra["bn_seconds"] > 0 and ra["track_seconds"] > 0
    fit(b)
    assert fit(a)["suc"] == ra["suc"]  # scoring b in between leaves no trace (BN reset per candidate)
    seq = ctx.score(a, batched=False)  # one video at a time (float sums differ with the batch size: no equality)
    assert 0.0 <= seq["suc"] <= 1.0
    # BN statistics now belong to genome a: the supernet's stored (random-path) statistics were replaced
    stored = torch.load(tiny_supernet, weights_only=True)["model"]
    key = next(k for k in stored if k.endswith("running_mean") and k.startswith("backbone.")
               and not torch.equal(stored[k], ctx.model.state_dict()[k]))
    assert key
    assert fit.protocol_record() == {"protocol": "lasot", "dataset": "synthetic", "split": "val", "videos": 2,
                                     "frames": 6, "bn_batches": 2}


def test_fitness_without_bn_recalibration_and_streamed_batches(tiny_supernet, synth_root):
    clear_worker_cache()
    none = _fitness(tiny_supernet, synth_root)
    none.config.bn.batches = 0
    g = none.context().space.random(2)
    assert none(g)["bn_seconds"] == 0.0
    streamed = _fitness(tiny_supernet, synth_root)
    streamed.config.bn.cache = False
    cached = _fitness(tiny_supernet, synth_root)
    assert streamed.context().bn_batches is None
    assert streamed(g)["suc"] == pytest.approx(cached(g)["suc"], abs=1e-9)


def test_cpu_settings_change_the_layout_not_the_outputs(tiny_supernet, synth_root):
    """fitness.channels_last / keep_freed_memory: the worker's model is channels-last on CPU; its outputs, BN
    recalibration included, agree with the plain NCHW model up to float rounding."""
    from asearch.runtime import keep_freed_memory

    clear_worker_cache()
    fast = _fitness(tiny_supernet, synth_root).context()
    plain = _fitness(tiny_supernet, synth_root, channels_last=False, keep_freed_memory=False).context()
    assert fast is not plain
    convs = lambda m: [x for x in m.modules() if isinstance(x, nn.Conv2d) and x.weight.dim() == 4]  # noqa: E731
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs(fast.model))
    assert not all(c.weight.is_contiguous() for c in convs(fast.model))  # (1x1 and depthwise kernels fit both)
    assert all(c.weight.is_contiguous() for c in convs(plain.model))
    g = fast.space.random(3)
    fast.score(g), plain.score(g)  # both recalibrate BN for g
    batch = next(iter(fast.recalibration_batches()))
    with torch.no_grad():
        a = fast.model(batch["template"], batch["search"], genome=g)
        b = plain.model(batch["template"], batch["search"], genome=g)
    for k in ("cls", "cen", "loc"):
        assert torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-3), k
    assert keep_freed_memory() is True  # glibc (Linux CI); idempotent


def test_validation_selection_and_errors(synth_root):
    first = load_validation_videos(ValidationConfig(root=str(synth_root), split="all", videos=3, frames=4,
                                                    select="first", cache_frames=False))
    spread = load_validation_videos(ValidationConfig(root=str(synth_root), split="all", videos=3, frames=None,
                                                     cache_frames=False))
    assert [v.images for v in first] == [None] * 3 and len(first[0]) == 4 and len(spread[0]) == 8
    assert first[0].name == spread[0].name and first[1].name != spread[1].name  # 0, 1, 2 vs 0, 4, 7 of 8
    with pytest.raises(DataError, match="fitness.validation.videos is 50"):
        load_validation_videos(ValidationConfig(root=str(synth_root), split="all", videos=50))
    with pytest.raises(ConfigError, match="fitness.validation.frames"):
        ValidationConfig(frames=1)
    with pytest.raises(ConfigError, match="fitness.validation.select"):
        ValidationConfig(select="random")


def test_missing_bn_data_is_named(tmp_path, tiny_supernet, synth_root):
    ckpt = torch.load(tiny_supernet, weights_only=True)
    del ckpt["config"]["data"]
    torch.save(ckpt, tmp_path / "nodata.pt")
    clear_worker_cache()
    with pytest.raises(ConfigError, match="set fitness.bn.data"):
        _fitness(tmp_path / "nodata.pt", synth_root).context()
    # given explicitly, the data section works
    fit = _fitness(tmp_path / "nodata.pt", synth_root)
    fit.config.bn.data = {"datasets": [{"name": "synthetic", "root": str(synth_root), "split": "train"}]}
    assert np.isfinite(fit(fit.context().space.random(0))["suc"])


class EchoTracker:
    """Fake batched tracker: the 'box' of frame t of a video is [t, first x, batch size, video slot]; records calls."""

    def __init__(self):
        self.calls = []

    def initialize_batch(self, images, boxes, languages):
        self.firsts = [b[0] for b in boxes]
        self.calls.append(("init", len(images)))

    def keep(self, indices):
        self.firsts = [self.firsts[i] for i in indices]
        self.calls.append(("keep", list(indices)))

    def track_batch(self, images):
        self.calls.append(("track", len(images)))
        return [{"box": [float(img[0, 0, 0]), x, 0.0, 0.0]} for img, x in zip(images, self.firsts)]

    def initialize(self, image, box, language):
        self.initialize_batch([image], [box], [language])

    def track(self, image):
        return self.track_batch([image])[0]


def _video(name, n, x):
    images = [np.full((4, 4, 3), t, dtype=np.uint8) for t in range(n)]
    boxes = np.tile(np.array([[x, 1.0, 2.0, 2.0]]), (n, 1))
    return ValidationVideo(name, None, boxes, np.ones(n, bool), images)


def test_lockstep_tracks_every_frame_of_videos_of_different_lengths():
    videos = [_video("a", 4, 10.0), _video("b", 2, 20.0), _video("c", 3, 30.0)]
    tracker = EchoTracker()
    batched = track_lockstep(tracker, videos)
    assert tracker.calls == [("init", 3), ("track", 3), ("keep", [0, 2]), ("track", 2), ("keep", [0]), ("track", 1)]
    one = track_one_by_one(EchoTracker(), videos)
    for b, o, v in zip(batched, one, videos):
        assert b.shape == (len(v), 4)
        np.testing.assert_array_equal(b, o)
        np.testing.assert_array_equal(b[0], v.boxes[0])  # frame 0 = ground truth
        assert b[1:, 0].tolist() == list(range(1, len(v))) and set(b[1:, 1]) == {v.boxes[0, 0]}
