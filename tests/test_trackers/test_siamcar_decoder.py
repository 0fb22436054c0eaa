"""SiamCAR's two decoders (``tracker.decoder``) on hand-built maps whose answer is known, the released decoder's
parts (centerness normalisation, bicubic upsampling as cv2, the REGION_S / REGION_L mask), the config checks and the
per-benchmark YAMLs.

Hand-case geometry (:class:`FixedMaps`): M = 5 score cells, stride 4 -> the released decoder upsamples to
U = (5 - 1)·4 + 1 = 17 locations one crop pixel apart, from crop pixel 10 (the model's ``location_offset``); the
search crop is 37 px (centre 18), the template 63 px. The first box 20×20 at (90, 90) gives the template side
sqrt(40·40) = 40 (context 0.5), hence the crop scale s = 63 / 40 = 1.575.
"""
import math

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from asearch.errors import ArchitectureError, ConfigError
from trackers.inference.siamcar import (SiamCARTracker, TrackerConfig, normalise_centerness, released_region,
                                        size_penalty, upsample_bicubic)

S = 1.575          # crop scale of the hand case
P = 0.75           # target probability of the logits (0, log 3)


class FixedMaps(nn.Module):
    """Model-interface fake returning the same maps for every search crop (batch-replicated)."""

    def __init__(self, cen: torch.Tensor, stride: float = 4):
        super().__init__()
        self.uses_language = False
        self.template_size, self.search_size, self.stride = 63, 37, stride
        self.location_offset, self.score_size = 10.0, 5
        self.cen = cen.view(1, 1, 5, 5)
        self.anchor = nn.Parameter(torch.zeros(()))

    def template(self, template, language=None, genome=None, template_box=None, use_template_language=None):
        return {"kernels": [template.mean(dim=(2, 3))]}

    def track(self, search, state):
        b = search.shape[0]
        cls = torch.stack([torch.zeros(5, 5), torch.full((5, 5), math.log(3.0))]).expand(b, 2, 5, 5)
        return {"cls": cls, "cen": self.cen.expand(b, 1, 5, 5), "loc": torch.full((b, 4, 5, 5), 20.0)}


def one_step(cen: torch.Tensor, **cfg):
    hp = dict(penalty_k=0.0, window_influence=0.0, lr=1.0, min_size=1.0)
    hp.update(cfg)
    tracker = SiamCARTracker(FixedMaps(cen), TrackerConfig(**hp), device="cpu")
    image = np.full((200, 200, 3), 100, np.uint8)
    tracker.initialize(image, [90.0, 90.0, 20.0, 20.0])
    return tracker.track(image)


def centre(box):
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def test_released_decoder_single_peak_hand_case():
    """Centerness 1 at cell (row 1, col 3), 0 elsewhere: after min-max the same, so p = 0.75 at that cell only.
    cv2-style bicubic (half-pixel: destination x samples source (x + 0.5)·5/17 - 0.5) peaks at the destination
    nearest the source cell: row 1 -> 5 (source 1.118 vs 0.824 at 4), col 3 -> 11 (2.882 vs 3.176 at 12). Crop pixel
    (10 + 11, 10 + 5) = (21, 15): the centre moves by (+3, -3) crop px = (±3 / 1.575) image px. Distances are 20
    everywhere (kept exactly by the interpolation): size 40 crop px; lr' = 1 (penalty_k 0) · 0.75 · 1."""
    cen = torch.zeros(5, 5)
    cen[1, 3] = 1.0
    out = one_step(cen)
    assert centre(out["box"]) == pytest.approx((100 + 3 / S, 100 - 3 / S), abs=1e-4)
    side = 20 * (1 - P) + (40 / S) * P
    assert out["box"][2:] == pytest.approx([side, side], abs=1e-4)
    # both peaks sit 2/17 of a cell from the source cell: pscore = 0.75 · k(2/17)², with the cubic kernel
    # k(t) = 1.25|t|³ - 2.25|t|² + 1 (a = -0.75); cls is constant, so exact
    k = 1.25 * (2 / 17) ** 3 - 2.25 * (2 / 17) ** 2 + 1
    assert out["score"] == pytest.approx(P, abs=1e-6) and out["pscore"] == pytest.approx(P * k * k, abs=1e-6)


def test_argmax_decoder_on_the_same_maps_is_the_earlier_decoder():
    """The earlier decoder: sigmoid centerness, the argmax coarse cell (1, 3) = crop pixel (10 + 3·4, 10 + 1·4) =
    (22, 14), shifted by ((r - l) / 2, (b - t) / 2) = 0; size and lr' as above (penalty 1, cls 0.75)."""
    cen = torch.zeros(5, 5)
    cen[1, 3] = 1.0
    out = one_step(cen, decoder="argmax")
    assert centre(out["box"]) == pytest.approx((100 + 4 / S, 100 - 4 / S), abs=1e-4)
    side = 20 * (1 - P) + (40 / S) * P
    assert out["box"][2:] == pytest.approx([side, side], abs=1e-4)
    assert out["pscore"] == pytest.approx(P / (1 + math.exp(-1.0)), abs=1e-6)


def test_released_decoder_searches_only_the_coarse_region():
    """Centerness 1 in the corner cell (0, 0) and 0.5 at the centre cell (2, 2); window_influence 0.5 and the Hann
    window (0 at the border, 1 at the centre) put the windowed peak at the centre (0.5·0.375 + 0.5 = 0.6875 against
    0.375 in the corner): the region around upsampled (8, 8) excludes the corner, whose window-free score is twice
    the centre's, so the centre stays at crop pixel 18 (no motion). Without the region the corner would win."""
    cen = torch.zeros(5, 5)
    cen[0, 0], cen[2, 2] = 1.0, 0.5
    out = one_step(cen, window_influence=0.5)
    assert centre(out["box"]) == pytest.approx((100.0, 100.0), abs=1e-4)
    assert out["pscore"] == pytest.approx(0.5 * P, abs=1e-4)


def test_released_region_hand_case():
    """U = 17, M = 5, windowed peak at (8, 8): coarse cell round(8 / 3.4) = 2; its (l, t, r, b) = (4, 30, 100, 0)
    clip to [int(0.1·63), int(0.44·63)] = [6, 27] -> (6, 27, 27, 6), then to the room to the borders (8, 8, 9, 9)
    -> (6, 8, 9, 6), halved -> (3, 4, 4, 3): rows 8 - 4 .. 8 + 3, columns 8 - 3 .. 8 + 4."""
    hp_up = torch.zeros(1, 17, 17)
    hp_up[0, 8, 8] = 1.0
    loc = torch.zeros(1, 4, 5, 5)
    loc[0, :, 2, 2] = torch.tensor([4.0, 30.0, 100.0, 0.0])
    mask = released_region(hp_up, loc, template_size=63, region_s=0.1, region_l=0.44)[0]
    expected = torch.zeros(17, 17, dtype=torch.bool)
    expected[4:12, 5:13] = True
    assert torch.equal(mask, expected)


def test_upsampling_is_cv2_inter_cubic():
    """The released code upsamples with cv2.resize(..., INTER_CUBIC): the same values, at M = 25 -> 193 too."""
    rng = np.random.default_rng(0)
    for m, stride in ((5, 4), (25, 8)):
        u = (m - 1) * stride + 1
        x = rng.random((2, m, m)).astype(np.float32)
        ours = upsample_bicubic(torch.from_numpy(x).unsqueeze(1), u)[:, 0].numpy()
        for i in range(2):
            ref = cv2.resize(x[i], (u, u), interpolation=cv2.INTER_CUBIC)
            np.testing.assert_allclose(ours[i], ref, atol=1e-5)


def test_centerness_normalisation_and_flat_maps():
    cen = torch.tensor([[-2.0, 0.0], [1.0, 2.0]]).view(1, 1, 2, 2)
    assert normalise_centerness(cen).flatten().tolist() == pytest.approx([0.0, 0.5, 0.75, 1.0])
    flat = torch.full((2, 1, 3, 3), 5.0)           # 0/0 in the released code: ones here (no information)
    assert torch.equal(normalise_centerness(flat), torch.ones_like(flat))
    # the tracker on a flat centerness stays finite
    out = one_step(torch.full((5, 5), 3.0))
    assert all(math.isfinite(v) for v in out["box"])


def test_size_penalty_hand_values():
    w = torch.tensor([10.0])
    k = 0.04
    # sz(10, 10) / sz(5, 5) = 2 -> s_c = 2, r_c = 1
    assert float(size_penalty(w, w, torch.tensor([5.0]), torch.tensor([5.0]), k)) == pytest.approx(math.exp(-k))
    # the released lr penalty reads the new size at 1 / w_scale (image pixels): 10 / 2 = 5 -> no change
    assert float(size_penalty(w, w, torch.tensor([5.0]), torch.tensor([5.0]), k, w_scale=torch.tensor([2.0]))) == 1.0


def test_decoder_config_errors():
    assert TrackerConfig().decoder == "released"
    assert (TrackerConfig().region_s, TrackerConfig().region_l) == (0.1, 0.44)
    with pytest.raises(ConfigError, match="tracker.decoder"):
        TrackerConfig(decoder="nearest")
    with pytest.raises(ConfigError, match="score_upsample"):
        TrackerConfig(score_upsample=2)                  # the released decoder has its own upsampling
    TrackerConfig(decoder="argmax", score_upsample=2)
    with pytest.raises(ConfigError, match="region_s"):
        TrackerConfig(region_s=0.5, region_l=0.1)
    with pytest.raises(ArchitectureError, match="integer stride"):
        SiamCARTracker(FixedMaps(torch.zeros(5, 5), stride=4.5), device="cpu")


# VLT_SCAR's released test hyperparameters (SOTS, branch SOT, experiments/VLT_SCAR.yaml): penalty_k, lr,
# window_influence per benchmark (OTB99-Lang uses the OTB2015 entry)
RELEASED = {"lasot": (0.04, 0.33, 0.3), "tnl2k": (0.04, 0.33, 0.3), "otb99_lang": (0.2, 0.35, 0.45),
            "got10k": (0.06, 0.7, 0.1), "trackingnet": (0.04, 0.33, 0.3)}


@pytest.mark.parametrize("dataset", sorted(RELEASED))
def test_per_benchmark_track_yaml(dataset):
    from asearch.commands.track import load_track_config
    from asearch.config import experiments_dir, from_dict

    path = experiments_dir() / "vlt_scar" / f"track_{dataset}.yaml"
    tc = load_track_config(str(path))
    cfg = from_dict(TrackerConfig, tc.tracker, str(path))
    assert (cfg.penalty_k, cfg.lr, cfg.window_influence) == RELEASED[dataset]
    assert (cfg.decoder, cfg.region_s, cfg.region_l, cfg.context_amount) == ("released", 0.1, 0.44, 0.5)


def test_default_track_yaml_is_the_released_lasot_setting():
    from asearch.commands.track import load_track_config
    from asearch.config import experiments_dir

    tc = load_track_config(str(experiments_dir() / "vlt_scar" / "track.yaml"))
    assert (tc.tracker["penalty_k"], tc.tracker["lr"], tc.tracker["window_influence"]) == RELEASED["lasot"]
    d = TrackerConfig()
    assert (d.penalty_k, d.lr, d.window_influence) == RELEASED["lasot"]


def test_released_decoder_batch_equals_each_video_on_a_real_tiny_model(fake_featurizer):
    """The released decoder on the maps of the tiny real VLT_SCAR supernet (63/127 crops, M = 10, stride 8 ->
    U = 73) for three videos at once decodes each video as alone (exactly: same maps, same picks)."""
    from search_spaces.vlt import VLTSpace
    from trackers.registry import build_model

    torch.manual_seed(0)
    model = build_model({"name": "vlt_scar", "template_size": 63, "search_size": 127, "neck": {"channels": 32},
                         "head": {"num_convs": 2, "gn_groups": 8},
                         "supernet": {"width_mult": 0.25, "language_dim": 8}}).eval()
    tracker = SiamCARTracker(model, featurizer=fake_featurizer, genome=VLTSpace().random(2), device="cpu")
    assert tracker.up_size == (model.score_size - 1) * 8 + 1
    seen = []
    decode = tracker._decode_released
    tracker._decode_released = lambda *maps: seen.append(maps) or decode(*maps)
    rng = np.random.default_rng(0)
    frames = [[rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(2)] for _ in range(3)]
    tracker.initialize_batch([f[0] for f in frames], [[30.0, 28.0, 20.0, 24.0], [40.0, 35.0, 18.0, 16.0],
                                                      [20.0, 50.0, 30.0, 20.0]])
    tracker.track_batch([f[1] for f in frames])
    maps = seen[0]
    batched = decode(*maps)
    for i in range(3):
        alone = decode(*(m[i:i + 1] for m in maps))
        torch.testing.assert_close(alone[0], batched[i], rtol=0, atol=1e-6)
