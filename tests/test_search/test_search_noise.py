"""The fitness's noise controls: ``fitness.repeats`` (independent BN batches, mean and std) and
``fitness.mode: open_loop`` (teacher-forced crops), against hand-computed cases."""
import numpy as np
import pytest
import torch
from torch import nn

from asearch.errors import ConfigError, DataError
from asearch.evaluation import ope
from asearch.search.fitness import (BNConfig, FitnessConfig, TrackingFitness, ValidationConfig, ValidationVideo,
                                    clear_worker_cache, track_lockstep, track_open_loop)
from asearch.search.validation import _last_known_boxes
from trackers.inference.base import BatchedTracker


class _NullModel(nn.Module):
    """A model whose output carries nothing: the tracker below decides the box alone."""

    template_size = 8
    search_size = 8

    def template(self, z, **kw):
        return {"z": z}

    def track(self, x, state):
        return {"x": x}


class _ShiftTracker(BatchedTracker):
    """Predicts the box of its state moved 2 px to the right (the output is known in advance)."""

    def prepare_video(self, image, box):
        crop, tbox, _ = self.template_crop(image, box, lambda w, h: max(w, h))
        return crop, tbox, {"center": np.array([box[0] + box[2] / 2, box[1] + box[3] / 2]), "size": box[2:4].copy()}

    def search_crop(self, image, video):
        return np.zeros((8, 8, 3), np.float32), {}

    def postprocess(self, outputs, crops, videos):
        out = []
        for v in videos:
            v["center"] = v["center"] + np.array([2.0, 0.0])
            (cx, cy), (w, h) = v["center"], v["size"]
            out.append({"box": [cx - w / 2, cy - h / 2, w, h], "score": 1.0})
        return out


def _moving_video(frames=5, step=5.0):
    """A 10×10 box moving ``step`` px to the right each frame on a 64×64 image."""
    boxes = np.array([[10 + step * t, 20, 10, 10] for t in range(frames)], dtype=np.float64)
    image = np.zeros((64, 64, 3), np.uint8)
    return ValidationVideo("moving", None, boxes, np.ones(frames, bool), [image] * frames)


def test_open_loop_suc_of_a_known_model_equals_the_hand_computed_value():
    video = _moving_video()
    tracker = _ShiftTracker(_NullModel(), device="cpu")
    # open loop: frame t is predicted from the ground truth of frame t-1 moved 2 px, 3 px off the truth (5 px step):
    # IoU 7·10 / (2·100 - 70) = 7/13 in frames 1-4; frame 0 is the ground truth (IoU 1).
    preds = track_open_loop(tracker, [video])[0]
    np.testing.assert_allclose(preds[1:], video.boxes[:-1] + [2, 0, 0, 0])
    # lasot protocol: 21 thresholds 0, 0.05, ..., 1 with IoU > t; IoU 1 passes 20 of them, 7/13 passes 11 (t <= 0.5)
    suc = ope([preds], [video.boxes], [video.visible], protocol="lasot")["suc"]
    assert suc == pytest.approx((20 + 4 * 11) / (5 * 21), abs=1e-12)
    # closed loop, the same model drifts: 3, 6, 9, 12 px off -> IoU 7/13, 4/16, 1/19, 0 -> 11, 5, 2, 0 thresholds
    closed = track_lockstep(tracker, [video])[0]
    suc_closed = ope([closed], [video.boxes], [video.visible], protocol="lasot")["suc"]
    assert suc_closed == pytest.approx((20 + 11 + 5 + 2 + 0) / (5 * 21), abs=1e-12)


def test_open_loop_keeps_the_last_known_box_where_the_target_is_absent():
    boxes = np.array([[0, 0, 4, 4], [1, 0, 4, 4], [np.nan] * 4, [0, 0, 0, 0], [3, 0, 4, 4]], dtype=np.float64)
    np.testing.assert_array_equal(_last_known_boxes(boxes),
                                  [[0, 0, 4, 4], [1, 0, 4, 4], [1, 0, 4, 4], [1, 0, 4, 4], [3, 0, 4, 4]])
    tracker = _ShiftTracker(_NullModel(), device="cpu")
    tracker.initialize(np.zeros((16, 16, 3), np.uint8), [0, 0, 4, 4])
    with pytest.raises(DataError, match="set_boxes: a box must be finite"):
        tracker.set_boxes([[np.nan, 0, 4, 4]])
    with pytest.raises(DataError, match="1 videos"):
        tracker.set_boxes([[0, 0, 4, 4], [0, 0, 4, 4]])


def test_real_trackers_crop_around_the_forced_box():
    """SiamCAR / TransT keep centre and size, OSTrack a box: set_boxes moves each family's next crop."""
    from trackers.inference.ostrack import OSTrackTracker

    tracker = OSTrackTracker.__new__(OSTrackTracker)
    video = {"box": np.array([0.0, 0.0, 5.0, 5.0])}
    tracker.set_video_box(video, np.array([10.0, 12.0, 4.0, 6.0]))
    np.testing.assert_array_equal(video["box"], [10, 12, 4, 6])
    base = _ShiftTracker(_NullModel(), device="cpu")
    state = {}
    base.set_video_box(state, np.array([10.0, 12.0, 4.0, 6.0]))
    np.testing.assert_array_equal(state["center"], [12, 15])
    np.testing.assert_array_equal(state["size"], [4, 6])


def _fitness(supernet, synth_root, **kw):
    bn = kw.pop("bn", BNConfig(batches=2, batch_size=3))
    cfg = FitnessConfig(validation=ValidationConfig(root=str(synth_root), videos=2, frames=6), bn=bn, **kw)
    return TrackingFitness(supernet, cfg, device="cpu")


def test_repeats_average_independent_bn_batches(tiny_supernet, synth_root):
    clear_worker_cache()
    three = _fitness(tiny_supernet, synth_root, repeats=3)
    ctx = three.context()
    assert len(ctx.bn_batches) == 3 and all(len(b) == 2 for b in ctx.bn_batches)
    # repeat r draws its pairs with seed bn.seed + r: repeat 0 is the single-repeat batches, the others differ
    one = _fitness(tiny_supernet, synth_root).context()
    assert torch.equal(ctx.bn_batches[0][0]["search"], one.bn_batches[0][0]["search"])
    assert not torch.equal(ctx.bn_batches[1][0]["search"], ctx.bn_batches[0][0]["search"])
    genome = ctx.space.random(3)
    singles = [_fitness(tiny_supernet, synth_root, bn=BNConfig(batches=2, batch_size=3, seed=r))(genome)["suc"]
               for r in range(3)]
    res = three(genome)
    assert res["suc"] == pytest.approx(np.mean(singles), abs=1e-12)
    assert res["suc_std"] == pytest.approx(np.std(singles, ddof=1), abs=1e-12)
    assert _fitness(tiny_supernet, synth_root)(genome)["suc"] == singles[0]  # R = 1 is the single score
    assert _fitness(tiny_supernet, synth_root)(genome)["suc_std"] == 0.0
    assert three.protocol_record()["repeats"] == 3


def test_open_loop_fitness_scores_with_the_same_protocol(tiny_supernet, synth_root):
    clear_worker_cache()
    fit = _fitness(tiny_supernet, synth_root, mode="open_loop")
    genome = fit.context().space.random(4)
    a = fit(genome)
    assert 0.0 <= a["suc"] <= 1.0 and fit(genome)["suc"] == a["suc"]
    assert fit.protocol_record()["mode"] == "open_loop"
    ctx = fit.context()
    tracker = ctx._tracker
    tracker.set_genome(genome)
    with torch.inference_mode():
        preds = track_open_loop(tracker, ctx.videos)
    assert [len(p) for p in preds] == [len(v) for v in ctx.videos]


@pytest.mark.parametrize("kw, message", [
    ({"mode": "closed"}, "fitness.mode: 'closed' is not one of"),
    ({"repeats": 0}, "fitness.repeats: must be >= 1"),
    ({"repeats": 2, "bn": BNConfig(batches=0)}, "fitness.repeats > 1 needs fitness.bn.batches > 0"),
])
def test_bad_noise_settings_name_the_key(kw, message):
    with pytest.raises(ConfigError, match=message):
        FitnessConfig(**kw)
