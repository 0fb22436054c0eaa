"""BN recalibration (hand-computed statistics) and the real tracking fitness on a tiny supernet."""
import numpy as np
import pytest
import torch
from torch import nn

from asearch.errors import ConfigError, DataError
from asearch.search.bn import Recalibrator, recalibrate_bn
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


class _Probe(nn.Module):
    """Records the training flag it sees in forward."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(self.training)
        return x


class _OverridesTrain(_Probe):
    """A probe that overrides ``train`` (calls counted)."""

    calls = 0

    def train(self, mode=True):
        type(self).calls += 1
        return super().train(mode)


@pytest.mark.parametrize("probe_cls", [_Probe, _OverridesTrain])
def test_recalibrator_is_recalibrate_bn_reused(probe_cls):
    """Recalibrator: the same statistics as recalibrate_bn; every module in train mode during the forward passes
    and in eval mode after; a module that overrides train() is switched through it."""
    probe = probe_cls()
    net = nn.Sequential(nn.BatchNorm1d(2, momentum=0.3), nn.Dropout(0.0), probe).eval()
    b1 = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    b2 = torch.tensor([[4.0, 0.0], [4.0, 4.0], [4.0, 8.0]])
    rec = Recalibrator(net)
    calls = _OverridesTrain.calls
    for _ in range(2):  # reused: reset every time
        stats = rec([b1, b2], lambda b: net(b))
        assert torch.allclose(net[0].running_mean, torch.tensor([2.5, 3.0]))
        assert torch.allclose(net[0].running_var, torch.tensor([1.0, 9.0]))
        assert stats["batches"] == 2 and stats["layers"] == 1 and net[0].momentum == 0.3
        assert not any(m.training for m in net.modules())
    assert probe.seen == [True] * 4
    assert (_OverridesTrain.calls > calls) == (probe_cls is _OverridesTrain)


@pytest.mark.parametrize("probe_cls", [_Probe, _OverridesTrain])
def test_recalibration_keeps_dropout_and_drop_path_in_eval_mode(probe_cls):
    """Dropout and stochastic depth before a BN layer stay off during recalibration: the statistics are those of
    the eval-mode features, the same on every call whatever the global RNG (VLT_OST's ViT has drop_path 0.1)."""
    from trackers.backbones.vit import DropPath

    probe = probe_cls()
    net = nn.Sequential(nn.Dropout(0.5), DropPath(0.5), probe, nn.BatchNorm1d(3)).eval()
    x = torch.arange(24, dtype=torch.float32).reshape(8, 3)
    rec = Recalibrator(net)
    for seed in (0, 1):
        torch.manual_seed(seed)
        rec([x], lambda b: net(b))
        assert torch.allclose(net[3].running_mean, x.mean(0)) and torch.allclose(net[3].running_var, x.var(0))
    assert probe.seen == [True, True] and not net[0].training and not net[1].training
    attn = nn.ModuleList([nn.MultiheadAttention(4, 2, dropout=0.5), nn.ReLU()])  # VLT_TT's attention dropout
    Recalibrator(attn).set_training(True)
    assert attn[1].training and not attn[0].training


def test_ghost_batches_give_the_statistics_of_separate_passes():
    """Two batches stacked and forwarded once with parts=2: every BatchNorm layer normalises and counts each part
    on its own (hand-computed running statistics; outputs equal to separate passes, also for a layer without
    running statistics)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.BatchNorm1d(2, track_running_stats=False),
                        nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
    b1 = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # means (1, 2), unbiased vars (2, 2)
    b2 = torch.tensor([[4.0, 0.0], [4.0, 8.0]])  # means (4, 4), unbiased vars (0, 32)
    rec = Recalibrator(net)
    outs = []
    rec([b1, b2], lambda b: outs.append(net(b)))
    separate = [torch.cat([m.running_mean, m.running_var]).clone() for m in rec.layers]
    assert torch.allclose(separate[0], torch.tensor([2.5, 3.0, 1.0, 17.0]))
    stacked = []
    stats = rec([torch.cat([b1, b2])], lambda b: stacked.append(net(b)), parts=2)
    assert stats["batches"] == 2 and int(net[1].num_batches_tracked) == 2
    for m, ref in zip(rec.layers, separate):
        assert torch.allclose(torch.cat([m.running_mean, m.running_var]), ref, atol=1e-6)
    assert torch.allclose(stacked[0], torch.cat(outs), atol=1e-6)
    assert "forward" not in net[1].__dict__ and not net.training  # the layers' own forward is back
    rec([torch.cat([b1, b2]), b1], lambda b: net(b), parts=[2, 1])  # parts per batch
    assert int(net[1].num_batches_tracked) == 3
    with pytest.raises(ValueError, match="cannot be split into 2"):
        rec([torch.cat([b1, b2[:1]])], lambda b: net(b), parts=2)
    assert "forward" not in net[1].__dict__


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("kind", ["plain", "no_affine", "no_running_stats"])
def test_channels_last_recalibration_matches_separate_float64_passes(parts, kind):
    """Channels-last CPU batches take their own train-mode batch norm during recalibration: outputs and running
    statistics those of one float64 pass per part through the layer's own forward (reset, cumulative average), to
    float32 rounding and at least as close as PyTorch's float32 kernel; the output channels-last, the parts
    counted."""
    torch.manual_seed(0)
    kw = {"affine": False} if kind == "no_affine" else {"track_running_stats": False} if kind == "no_running_stats" \
        else {}
    layer = nn.BatchNorm2d(6, momentum=0.3, **kw)
    if layer.affine:
        with torch.no_grad():
            layer.weight.uniform_(0.5, 1.5)
            layer.bias.normal_()
    ref, native = nn.BatchNorm2d(6, **kw).double(), nn.BatchNorm2d(6, **kw)
    for r in (ref, native):
        r.load_state_dict(layer.state_dict())
        r.momentum = None  # what recalibration uses
    x = (torch.randn(2 * parts, 6, 9, 14) * 3 + 5).contiguous(memory_format=torch.channels_last)
    out = []
    Recalibrator(layer, kernel="channels_last")([x], lambda b: out.append(layer(b)), parts=parts)
    y = out[0]
    assert y.is_contiguous(memory_format=torch.channels_last) and y.shape == x.shape
    ref_out = torch.cat([ref(xk.double()) for xk in x.chunk(parts)])
    native_out = torch.cat([native(xk.contiguous()) for xk in x.chunk(parts)])
    err = (y.double() - ref_out).abs().max().item()
    assert err < 1e-5 and err <= 2 * (native_out.double() - ref_out).abs().max().item() + 1e-6
    assert "forward" not in layer.__dict__ and not layer.training and layer.momentum == 0.3
    if kind == "no_running_stats":
        assert layer.running_mean is None
        return
    assert int(layer.num_batches_tracked) == parts
    assert torch.allclose(layer.running_mean.double(), ref.running_mean, rtol=1e-6, atol=1e-6)
    assert torch.allclose(layer.running_var.double(), ref.running_var, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_native_ghost_batches_are_bit_identical_to_separate_passes(layout):
    """The default kernel writes each part into the stacked output: exactly (bit for bit) the outputs and running
    statistics of one pass per part through the layer's own forward, concatenated; an unknown kernel is refused."""
    torch.manual_seed(2)
    layer, ref = nn.BatchNorm2d(5), nn.BatchNorm2d(5)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.normal_()
    ref.load_state_dict(layer.state_dict())
    ref.momentum = None
    x = (torch.randn(8, 5, 7, 6) * 2 + 1).contiguous(memory_format=layout)
    out = []
    Recalibrator(layer)([x], lambda b: out.append(layer(b)), parts=4)
    ref.train()
    with torch.no_grad():
        expected = torch.cat([ref(xk) for xk in x.chunk(4)])
    assert torch.equal(out[0], expected)
    assert torch.equal(layer.running_mean, ref.running_mean) and torch.equal(layer.running_var, ref.running_var)
    assert int(layer.num_batches_tracked) == 4
    with pytest.raises(ValueError, match="kernel"):
        Recalibrator(layer, kernel="fast")


def test_channels_last_batch_norm_with_a_momentum_counts_each_part():
    """With a fixed momentum (a layer driven outside Recalibrator) the parts update the running statistics one
    after another, as separate forward passes do."""
    from asearch.search.bn import _GhostForward

    torch.manual_seed(1)
    layer, native = nn.BatchNorm2d(4, momentum=0.3), nn.BatchNorm2d(4, momentum=0.3)
    layer.running_mean.fill_(2.0)
    native.load_state_dict(layer.state_dict())
    x = torch.randn(6, 4, 5, 8).contiguous(memory_format=torch.channels_last)
    y = _GhostForward(layer, 3, channels_last=True)(x)
    ref = torch.cat([native(xk.contiguous()) for xk in x.chunk(3)])
    assert torch.allclose(y, ref, atol=1e-5)
    assert torch.allclose(layer.running_mean, native.running_mean, atol=1e-6)
    assert torch.allclose(layer.running_var, native.running_var, atol=1e-6)
    assert int(layer.num_batches_tracked) == 3


def test_fused_recalibration_batches_and_stacking(tiny_supernet, synth_root):
    """fitness.bn.fuse stacks the recalibration batches (ghost batches): BN statistics as with one pass per
    batch (float rounding); stack_batches joins tensors and lists and fills a missing template-language mask."""
    from asearch.search.bn import batchnorm_layers
    from asearch.search.fitness import stack_batches

    clear_worker_cache()
    cfg = lambda fuse: FitnessConfig(validation=ValidationConfig(root=str(synth_root), videos=2, frames=6),  # noqa
                                     bn=BNConfig(batches=3, batch_size=2, fuse=fuse))
    fused = TrackingFitness(tiny_supernet, cfg(2), device="cpu").context()
    single = TrackingFitness(tiny_supernet, cfg(1), device="cpu").context()
    assert fused.recalibration_parts() == [2, 1]
    assert [b["template"].shape[0] for b in fused.fused_recalibration_batches()] == [4, 2]
    g = fused.space.random(6)
    fused.score(g), single.score(g)
    for a, b in zip(batchnorm_layers(fused.model), batchnorm_layers(single.model)):
        assert int(a.num_batches_tracked) == int(b.num_batches_tracked)  # 3 per call (the neck's: 2 calls)
        assert torch.allclose(a.running_mean, b.running_mean, rtol=1e-4, atol=1e-5)
        assert torch.allclose(a.running_var, b.running_var, rtol=1e-4, atol=1e-5)
    x = {"template": torch.zeros(2, 3), "sentence": ["a", "b"], "use_template_language": None, "language": None}
    y = {"template": torch.ones(1, 3), "sentence": ["c"], "use_template_language": torch.tensor([True]),
         "language": None}
    z = stack_batches([x, y])
    assert z["template"].shape == (3, 3) and z["sentence"] == ["a", "b", "c"] and z["language"] is None
    assert z["use_template_language"].tolist() == [False, False, True]
    with pytest.raises(ConfigError, match="fuse"):
        BNConfig(fuse=0)
    with pytest.raises(ConfigError, match="fitness.bn.kernel"):
        BNConfig(kernel="fast")


def test_fitness_with_the_channels_last_kernel(tiny_supernet, synth_root):
    """fitness.bn.kernel: channels_last reaches the worker's recalibration (channels-last CPU model): the BN
    statistics differ from the native kernel's in the last bits only."""
    from asearch.search.bn import batchnorm_layers

    clear_worker_cache()
    cfg = lambda kernel: FitnessConfig(validation=ValidationConfig(root=str(synth_root), videos=2, frames=6),  # noqa
                                       bn=BNConfig(batches=2, batch_size=2, fuse=2, kernel=kernel))
    native = TrackingFitness(tiny_supernet, cfg("native"), device="cpu").context()
    fast = TrackingFitness(tiny_supernet, cfg("channels_last"), device="cpu").context()
    assert fast.recalibrator.kernel == "channels_last" and fast.channels_last
    g = fast.space.random(3)
    r = fast.score(g)
    native.score(g)
    assert 0.0 <= r["suc"] <= 1.0
    differ = 0
    for a, b in zip(batchnorm_layers(native.model), batchnorm_layers(fast.model)):
        assert int(a.num_batches_tracked) == int(b.num_batches_tracked)
        assert torch.allclose(a.running_mean, b.running_mean, rtol=1e-3, atol=1e-4)
        assert torch.allclose(a.running_var, b.running_var, rtol=1e-3, atol=1e-4)
        differ += not torch.equal(a.running_var, b.running_var)
    assert differ > 0  # the channels-last kernel did run


def test_recalibration_pass_gives_every_bn_layer_its_forward_input(tiny_supernet, synth_root):
    """actor.recalibration_pass, the pass BN recalibration runs: the same BN statistics as the training forward,
    without the CAR head (GroupNorm only) and the contrastive loss."""
    from asearch.search.bn import batchnorm_layers

    clear_worker_cache()
    ctx = _fitness(tiny_supernet, synth_root).context()
    g = ctx.space.random(5)
    calls = []
    hook = ctx.model.head.register_forward_hook(lambda *a: calls.append(1))
    stats = {}
    for name, run in (("forward", ctx.actor.forward_pass), ("recalibration", ctx.actor.recalibration_pass)):
        recalibrate_bn(ctx.model, ctx.recalibration_batches(), lambda b: run(b, g))
        stats[name] = [torch.cat([m.running_mean, m.running_var]).clone() for m in batchnorm_layers(ctx.model)]
    hook.remove()
    assert len(calls) == 2  # the 2 batches of the training forward only
    assert all(torch.equal(a, b) for a, b in zip(stats["forward"], stats["recalibration"]))


def _fitness(supernet, synth_root, **kw):
    cfg = FitnessConfig(validation=ValidationConfig(root=str(synth_root), videos=2, frames=6),
                        bn=BNConfig(batches=2, batch_size=3), **kw)
    return TrackingFitness(supernet, cfg, device="cpu")


def test_tracking_fitness_is_deterministic(tiny_supernet, synth_root):
    clear_worker_cache()
    fit = _fitness(tiny_supernet, synth_root)
    ctx = fit.context()
    assert fit.context() is ctx and _fitness(tiny_supernet, synth_root).context() is ctx  # built once per process
    assert ctx.bn_batches is not None and len(ctx.bn_batches) == 1 and len(ctx.bn_batches[0]) == 2
    assert ctx.bn_batches[0][0]["template"].dtype == torch.uint8 and ctx.bn_batches[0][0]["template"].shape[0] == 3
    assert [len(v) for v in ctx.videos] == [6, 6]
    a, b = ctx.space.random(0), ctx.space.random(1)
    ra = fit(a)
    assert 0.0 <= ra["suc"] <= 1.0 and ra["bn_seconds"] > 0 and ra["track_seconds"] > 0
    rb = fit(b)
    assert fit(a)["suc"] == ra["suc"]  # scoring b in between leaves no trace (BN reset per candidate)
    assert ctx._tracker is not None and ctx._tracker.genome == a  # one tracker for every candidate
    clear_worker_cache()
    assert _fitness(tiny_supernet, synth_root)(b)["suc"] == rb["suc"]  # a fresh worker scores b the same
    seq = ctx.score(a, batched=False)  # one video at a time (float sums differ with the batch size: no equality)
    assert 0.0 <= seq["suc"] <= 1.0
    # BN statistics now belong to genome a: the supernet's stored (random-path) statistics were replaced
    stored = torch.load(tiny_supernet, weights_only=True)["model"]
    key = next(k for k in stored if k.endswith("running_mean") and k.startswith("backbone.")
               and not torch.equal(stored[k], ctx.model.state_dict()[k]))
    assert key
    import hashlib

    from asearch.data.registry import build_dataset

    names = build_dataset("synthetic", root=synth_root, split="val").names
    chosen = [names[0], names[-1]]  # select: spread over the split, 2 videos: the first and the last
    assert [v.name for v in ctx.videos] == chosen
    assert fit.protocol_record() == {"protocol": "lasot", "dataset": "synthetic", "split": "val", "videos": 2,
                                     "frames": 6, "bn_batches": 2, "select": "spread",
                                     "videos_sha256": hashlib.sha256("\n".join(chosen).encode()).hexdigest(),
                                     "bn_batch_size": fit.config.bn.batch_size, "bn_seed": fit.config.bn.seed,
                                     "mode": "ope", "repeats": 1}


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
    blocks = lambda m: [x for x in m.modules() if hasattr(x, "keep_layout")]  # noqa: E731
    assert blocks(fast.model) and all(b.keep_layout for b in blocks(fast.model))  # channel split keeps the layout
    assert not any(b.keep_layout for b in blocks(plain.model))
    g = fast.space.random(3)
    fast.score(g), plain.score(g)  # both recalibrate BN for g
    batch = next(iter(fast.recalibration_batches()))
    with torch.no_grad():
        a = fast.model(batch["template"], batch["search"], genome=g)
        b = plain.model(batch["template"], batch["search"], genome=g)
    for k in ("cls", "cen", "loc"):
        assert torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-3), k
    assert fast._tracker.channels_last_input and not plain._tracker.channels_last_input
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
