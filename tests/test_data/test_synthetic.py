"""The synthetic VL tracking benchmark: layout, determinism, annotations that match the pixels, and the property that
the language carries information the first-frame template does not."""
import json
import time

import numpy as np
import pytest
import torch

from asearch.data.synthetic import (
    COLORS, SHAPES, UNLIT, SyntheticConfig, generate_benchmark, lighting, position_word, shape_mask, synthesize_video,
)
from asearch.errors import ConfigError


def color_mask(image: np.ndarray, color: str, tol: float = 0.1) -> np.ndarray:
    """Pixels whose chromaticity (r, g, b) / (r + g + b) is within ``tol`` of the named colour's (any shade)."""
    img = image.astype(np.float64)
    s = img.sum(axis=-1, keepdims=True)
    ref = np.asarray(COLORS[color], np.float64)
    ref = ref / ref.sum()
    return (np.linalg.norm(img / np.maximum(s, 1) - ref, axis=-1) < tol) & (s[..., 0] > 60)


def box_mask(mask: np.ndarray, box, out: int = 24) -> np.ndarray:
    """The part of ``mask`` inside the float box ``x, y, w, h``, resampled to ``out``×``out`` (shape silhouette)."""
    import cv2

    x, y, w, h = box
    x1, y1 = int(round(x)), int(round(y))
    x2, y2 = int(round(x + w)) + 1, int(round(y + h)) + 1
    crop = mask[y1:y2, x1:x2].astype(np.float32)
    return cv2.resize(crop, (out, out), interpolation=cv2.INTER_AREA) > 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def bench20(tmp_path_factory):
    """The default benchmark size of the brief: 20 videos x 60 frames of 128x128 (timed, printed)."""
    out = tmp_path_factory.mktemp("synth20")
    start = time.perf_counter()
    generate_benchmark(out, videos=20, frames=60, size=128, seed=0)
    print(f"\ngenerated 20 videos x 60 frames (128x128) in {time.perf_counter() - start:.2f} s")
    return out


def test_layout_of_twenty_videos(bench20):
    meta = json.loads((bench20 / "meta.json").read_text())
    assert meta["config"]["seed"] == 0 and meta["format_version"] == 1 and meta["toolkit_version"]
    names = list(meta["videos"])
    assert len(names) == 20
    attrs = json.loads((bench20 / "attributes.json").read_text())
    assert sorted(attrs) == sorted(names)
    assert torch.load(bench20 / "attributes.pth") == attrs          # the released VLT form: a pickled dict
    splits = {s: (bench20 / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [12, 4, 4]   # 60/20/20 %
    assert sorted(sum(splits.values(), [])) == sorted(names)
    for name in names:
        category = name.rsplit("-", 1)[0]
        assert category in SHAPES
        folder = bench20 / category / name
        imgs = sorted((folder / "img").iterdir())
        assert [p.name for p in imgs[:2]] == ["00000001.jpg", "00000002.jpg"] and len(imgs) == 60
        rows = (folder / "groundtruth.txt").read_text().splitlines()
        assert len(rows) == 60 and all(len(r.split(",")) == 4 and all(v.isdigit() for v in r.split(",")) for r in rows)
        for flag in ("full_occlusion.txt", "out_of_view.txt"):
            lines = (folder / flag).read_text().splitlines()
            assert len(lines) == 1 and len(lines[0].split(",")) == 60 and set(lines[0].split(",")) <= {"0", "1"}
        sentence = (folder / "nlp.txt").read_text().splitlines()
        assert len(sentence) == 1
        major, root, color, pos = attrs[name].split(",")
        assert (major, root) == (category, "shape") and color in COLORS
        assert color in sentence[0]                                     # the sentence names the true colour
        assert pos in ("center", "top", "bottom", "left", "right", "top-left", "top-right", "bottom-left",
                       "bottom-right")
        assert meta["videos"][name]["color"] == color
    # the events of the brief actually happen somewhere in the benchmark
    assert sum(v["out_of_view_frames"] for v in meta["videos"].values()) > 0
    assert sum(v["full_occlusion_frames"] for v in meta["videos"].values()) > 0
    assert any(o["kind"] == "partial" for v in meta["videos"].values() for o in v["occluders"])


def test_same_seed_same_files_and_other_seed_differs(tmp_path):
    kw = dict(videos=3, frames=26, size=64)
    a = generate_benchmark(tmp_path / "a", seed=5, **kw)
    b = generate_benchmark(tmp_path / "b", seed=5, **kw)
    c = generate_benchmark(tmp_path / "c", seed=6, **kw)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix != ".pth")
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.suffix != ".pth")
    assert files_a == files_b and len(files_a) > 3 * 26
    for rel in files_a:                              # annotations, sentences, splits, meta and JPEGs: byte-identical
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    gt = lambda root: sorted((p.parent.name, p.read_text()) for p in root.rglob("groundtruth.txt"))
    assert gt(a) != gt(c)


def test_position_word_thirds():
    assert position_word(10, 10, 128, 128) == "top-left"
    assert position_word(64, 10, 128, 128) == "top"
    assert position_word(120, 64, 128, 128) == "right"
    assert position_word(64, 64, 128, 128) == "center"
    assert position_word(10, 120, 128, 128) == "bottom-left"


def test_shapes_fill_their_box():
    """Every shape spans its whole box, so the ground truth box does not depend on the current shape."""
    for shape in SHAPES:
        m = shape_mask(shape, 20.0, 20.0, 30.0, 20.0, 0, 0, 40, 40) > 0.5
        ys, xs = np.nonzero(m)
        assert xs.min() in (5, 6) and xs.max() in (34, 35), shape
        assert ys.min() in (10, 11) and ys.max() in (29, 30), shape


def test_annotations_match_pixels():
    cfg = SyntheticConfig(frames=40, size=96, full_occlusion_prob=1.0, out_of_view_prob=1.0)
    seen_oov = seen_occ = 0
    for index in range(4):
        v = synthesize_video(cfg, index)
        assert v.visible[0]
        for t in range(cfg.frames):
            mask = color_mask(v.frames[t], v.color)
            x, y, w, h = v.boxes[t]
            if v.out_of_view[t]:
                seen_oov += 1
                assert (x, y, w, h) == (0, 0, 0, 0)
                tx, ty, tw, th = v.true_boxes[t]
                inside = max(0, min(tx + tw, 95) - max(tx, 0)) * max(0, min(ty + th, 95) - max(ty, 0))
                assert inside < 0.05 * tw * th                        # (almost) entirely outside the frame
            elif v.full_occlusion[t]:
                seen_occ += 1
                assert mask[y:y + h + 1, x:x + w + 1].sum() == 0      # hidden behind the occluder patch
            else:
                assert w > 0 and h > 0
    assert seen_oov > 0 and seen_occ > 0
    # a clean frame 0: the target-coloured pixels lie in the box
    v = synthesize_video(cfg, 0)
    mask = color_mask(v.frames[0], v.color)
    x, y, w, h = v.boxes[0]
    assert mask[y:y + h + 1, x:x + w + 1].sum() >= 0.95 * mask.sum() > 0


def test_language_carries_what_the_template_does_not():
    """Target: the shape at the end differs from frame 0 while the colour stays the named one; distractors: the
    first-frame look (shape, texture) of the target in other colours."""
    cfg = SyntheticConfig(out_of_view_prob=0.0, full_occlusion_prob=0.0, partial_occlusion_prob=0.0)
    checked_distractors = 0
    for index in range(6):
        v = synthesize_video(cfg, index)
        assert v.attributes[2] == v.color and v.color in v.sentence
        assert v.shapes[-1] != v.shapes[0]
        first = color_mask(v.frames[0], v.color)
        last = color_mask(v.frames[-1], v.color)
        assert first.sum() > 20 and last.sum() > 20                   # the colour word stays true at both ends
        sil0, sil1 = box_mask(first, v.true_boxes[0]), box_mask(last, v.true_boxes[-1])
        assert iou(sil0, sil1) < 0.9, (v.shapes[0], v.shapes[-1])     # the appearance really changed
        for d in v.distractors:
            assert d["color"] != v.color
            assert (d["shape"], d["texture"]) == (v.shapes[0], v.textures[0])
            dbox = d["boxes"][0]
            others = [v.true_boxes[0]] + [e["boxes"][0] for e in v.distractors if e is not d]
            overlaps = any(abs((dbox[0] + dbox[2] / 2) - (o[0] + o[2] / 2)) < (dbox[2] + o[2]) / 2 + 2 and
                           abs((dbox[1] + dbox[3] / 2) - (o[1] + o[3] / 2)) < (dbox[3] + o[3]) / 2 + 2 for o in others)
            if overlaps or dbox[0] < 1 or dbox[1] < 1 or dbox[0] + dbox[2] > 126 or dbox[1] + dbox[3] > 126:
                continue
            dsil = box_mask(color_mask(v.frames[0], str(d["color"])), dbox)
            assert iou(dsil, sil0) > 0.75                             # same silhouette as the template
            checked_distractors += 1
    assert checked_distractors >= 3


def test_lighting_ramp_by_hand():
    # unlit_frames 3, fade_frames 3: 0, 0, 0, then 1/4, 2/4, 3/4, then 1
    assert [lighting(t, 3, 3) for t in range(8)] == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1]
    assert all(lighting(t, 0, 6) == 1.0 for t in range(5))


def test_unlit_opening_hides_the_colour_from_the_template_only():
    """With ``unlit_frames``, frame 0 shows the target (and the distractors) in the neutral UNLIT grey: no pixel of
    the target's colour anywhere; once the light is on, the frames are those of the same video generated lit."""
    cfg = SyntheticConfig(unlit_frames=5, fade_frames=4, out_of_view_prob=0.0, full_occlusion_prob=0.0,
                          partial_occlusion_prob=0.0, noise=0.0)
    lit = SyntheticConfig(**{**cfg.__dict__, "unlit_frames": 0})
    for index in range(3):
        v, w = synthesize_video(cfg, index), synthesize_video(lit, index)
        assert v.sentence == w.sentence and v.color in v.sentence      # same scene, same language
        np.testing.assert_array_equal(v.boxes, w.boxes)
        assert color_mask(w.frames[0], v.color).sum() > 20
        assert color_mask(v.frames[0], v.color).sum() == 0                 # the template frame has no target colour
        x, y, bw, bh = v.true_boxes[0]
        inside = shape_mask(v.shapes[0], x + bw / 2, y + bh / 2, bw, bh, 0, 0, cfg.size, cfg.size) > 0.95
        chroma = lambda img: img.astype(int).max(axis=-1) - img.astype(int).min(axis=-1)  # noqa: E731
        assert chroma(v.frames[0])[inside].max() <= 3                      # neutral grey (UNLIT and its dark shade)
        assert chroma(w.frames[0])[inside].mean() > 60                     # lit: saturated colour
        assert abs(v.frames[0][inside].max() - UNLIT[0]) <= 3
        for t in range(cfg.unlit_frames + cfg.fade_frames, cfg.frames):  # lights on: identical to the lit video
            np.testing.assert_array_equal(v.frames[t], w.frames[t])
    with pytest.raises(ConfigError, match="'unlit_frames'"):
        SyntheticConfig(unlit_frames=-1).validate()


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="'size'"):
        SyntheticConfig(size=16).validate()
    with pytest.raises(ConfigError, match="'distractors'"):
        generate_benchmark(tmp_path / "x", videos=1, frames=4, distractors=99)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        generate_benchmark(tmp_path / "busy", videos=1, frames=4)
    out = generate_benchmark(tmp_path / "b", videos=2, frames=4, size=48)
    with pytest.raises(ConfigError, match="overwrite"):
        generate_benchmark(out, videos=2, frames=4, size=48)
    generate_benchmark(out, videos=1, frames=4, size=48, seed=1, overwrite=True)
    assert len(json.loads((out / "meta.json").read_text())["videos"]) == 1
    assert len(list(out.glob("*/*-*"))) == 1                          # the old videos are gone


def test_cli_synth_and_info(tmp_path, capsys):
    from asearch.cli import main

    out = tmp_path / "bench"
    rc = main(["data", "synth", "--out", str(out), "--videos", "5", "--frames", "5", "--size", "48", "--seed", "2",
               "--distractors", "1", "--no-progress", "--set", "noise=1.5"])
    assert rc == 0
    text = capsys.readouterr().out
    assert str(out) in text and "5 videos x 5 frames" in text
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["distractors"] == 1 and meta["config"]["noise"] == 1.5 and meta["config"]["seed"] == 2
    pytest.importorskip("asearch.data.registry")
    rc = main(["data", "info", "--dataset", "synthetic", "--root", str(out), "--split", "train", "--json"])
    assert rc == 0
    counts = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert counts["videos"] == 3 and counts["frames"] == 15 and counts["with_sentence"] == 3


def test_interrupted_run_is_cleared_by_the_next(tmp_path):
    def stop(done, total, name):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_benchmark(tmp_path / "b", videos=4, frames=4, size=48, progress=stop)
    assert not (tmp_path / "b" / "meta.json").exists() and len(list((tmp_path / "b").glob("*/*-*"))) == 2
    out = generate_benchmark(tmp_path / "b", videos=3, frames=4, size=48, seed=1)   # no overwrite needed
    assert len(list(out.glob("*/*-*"))) == 3 and sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
