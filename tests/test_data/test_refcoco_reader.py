"""The RefCOCO-style referring-expression reader (asearch/data/datasets/refcoco.py) and its restricted unpickler
(asearch/data/safe_pickle.py): hand-written refs + instances.json + tiny images in the refer layout, the boxes and
sentences it gives, split selection, the grounding items made from it, the refusal of a pickle that would run code,
the errors and warnings of bad input, and two steps of ``asearch retrain`` of the tiny grounding recipe on it."""
import json
import math
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from asearch.config import experiments_dir
from asearch.data.datasets.refcoco import RefCOCODataset, split_matches
from asearch.data.registry import build_dataset
from asearch.data.safe_pickle import load_plain_pickle
from asearch.errors import ConfigError, DataError, DataWarning

# image id -> (file name, width, height); the target of each annotation is a white rectangle on black
IMAGES = {1: ("COCO_train2014_000000000001.jpg", 40, 30), 2: ("COCO_train2014_000000000002.jpg", 32, 48)}
ANNS = [{"id": 100, "image_id": 1, "bbox": [8.0, 6.0, 12.0, 9.0], "category_id": 1},
        {"id": 101, "image_id": 2, "bbox": [4, 20, 16, 24], "category_id": 2},
        {"id": 102, "image_id": 2, "bbox": [20.0, 2.0, 8.0, 8.0], "category_id": 1}]


def _refs():
    return [
        {"ref_id": 10, "ann_id": 100, "image_id": 1, "split": "train", "category_id": 1, "sent_ids": [0, 1],
         "file_name": "COCO_train2014_000000000001_100.jpg",
         "sentences": [{"sent": "left white box", "raw": "Left white box.", "tokens": ["left", "white", "box"],
                        "sent_id": 0},
                       {"sent": "the  bright\tone ", "raw": "The bright one", "tokens": [], "sent_id": 1}]},
        {"ref_id": 11, "ann_id": 101, "image_id": 2, "split": "testA", "category_id": 2, "sent_ids": [2],
         "sentences": [{"sent": "tall person", "raw": "tall person", "sent_id": 2}]},
        {"ref_id": 12, "ann_id": 102, "image_id": 2, "split": "val", "category_id": 1, "sent_ids": [3],
         "sentences": [{"raw": "Small Square", "sent_id": 3}]},
    ]


def _write(root: Path, refs=None, anns=None, fmt: str = "p", dataset: str = "refcoco", split_by: str = "unc") -> Path:
    """The refer layout under ``root``: ``<dataset>/refs(<split_by>).<fmt>``, ``<dataset>/instances.json`` and
    the images in ``images/mscoco/images/train2014``."""
    import cv2

    ann_dir = root / dataset
    img_dir = root / "images" / "mscoco" / "images" / "train2014"
    ann_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    anns = ANNS if anns is None else anns
    for image_id, (name, w, h) in IMAGES.items():
        image = np.zeros((h, w, 3), np.uint8)
        for ann in ANNS:
            if ann["image_id"] == image_id:
                x, y, bw, bh = (int(v) for v in ann["bbox"])
                image[y:y + bh, x:x + bw] = 255
        assert cv2.imwrite(str(img_dir / name), image)
    instances = {"images": [{"id": i, "file_name": n, "width": w, "height": h} for i, (n, w, h) in IMAGES.items()],
                 "annotations": anns, "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "person"}]}
    (ann_dir / "instances.json").write_text(json.dumps(instances))
    refs = _refs() if refs is None else refs
    path = ann_dir / f"refs({split_by}).{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(refs))
    else:
        path.write_bytes(pickle.dumps(refs, protocol=2))   # the released files are Python 2 pickles
    return root


@pytest.fixture
def refer_root(tmp_path):
    return _write(tmp_path / "refer")


def test_samples_have_the_annotation_box_and_each_sentence(refer_root):
    ds = build_dataset("refcoco", root=refer_root, split="train", dataset="refcoco", split_by="unc")
    assert ds.names == ["ref10_0", "ref10_1"] and ds.has_language
    seq = ds["ref10_1"]
    assert seq.sentence == "the bright one"                       # white space folded
    assert ds["ref10_0"].sentence == "left white box"              # 'sent', not 'raw'
    assert seq.boxes.tolist() == [[8.0, 6.0, 12.0, 9.0]] and seq.visible.tolist() == [True]
    assert seq.category == "box" and seq.meta["ann_id"] == 100 and seq.meta["split"] == "train"
    image = seq.frame(0)
    assert image.shape == (30, 40, 3)
    ys, xs = np.nonzero(image.mean(2) > 127)                      # the box is where the target is
    assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == (8, 6, 12, 9)
    val = build_dataset("refcoco", root=refer_root, split="val")
    assert val.names == ["ref12_0"] and val[0].sentence == "Small Square"   # no 'sent': 'raw'


@pytest.mark.parametrize("split, names", [("train", ["ref10_0", "ref10_1"]), ("val", ["ref12_0"]),
                                          ("test", ["ref11_0"]), ("testA", ["ref11_0"]),
                                          ("all", ["ref10_0", "ref10_1", "ref11_0", "ref12_0"])])
def test_split_selects_refs_as_the_refer_api(refer_root, split, names):
    assert build_dataset("refcoco", root=refer_root, split=split).names == names


def test_split_rule_of_the_refer_api():
    assert split_matches("testA", "testAB") and split_matches("testB", "testAB") and not split_matches("testA", "testB")
    assert split_matches("test", "testB") and not split_matches("train", "trainval")


def test_an_empty_split_names_the_splits_present(refer_root):
    with pytest.raises(DataError, match=r"split 'testB'.*splits in the file: testA, train, val"):
        build_dataset("refcoco", root=refer_root, split="testB")


def test_a_json_export_reads_as_the_pickle(tmp_path):
    pkl = build_dataset("refcoco", root=_write(tmp_path / "a"), split="all")
    js = build_dataset("refcoco", root=_write(tmp_path / "b", fmt="json"), split="all")
    assert pkl.names == js.names
    assert all(pkl[n].sentence == js[n].sentence and (pkl[n].boxes == js[n].boxes).all() for n in pkl.names)


def test_refcocog_umd_and_the_explicit_folders(tmp_path):
    root = _write(tmp_path / "refer", dataset="refcocog", split_by="umd")
    assert len(build_dataset("refcoco", root=root, split="all", dataset="refcocog")) == 4   # umd is its default
    moved = tmp_path / "elsewhere"
    (root / "refcocog").rename(moved)
    ds = build_dataset("refcoco", root=root, split="train", refs_file=moved / "refs(umd).p",
                       image_dir=root / "images" / "mscoco" / "images" / "train2014")
    assert ds.names == ["ref10_0", "ref10_1"]                     # instances.json read beside refs_file
    with pytest.raises(ConfigError, match="option dataset must be one of refcoco, refcoco\\+, refcocog"):
        build_dataset("refcoco", root=root, dataset="refclef")
    with pytest.raises(ConfigError, match="unknown option 'splitBy'"):
        build_dataset("refcoco", root=root, splitBy="umd")


def test_grounding_items_put_the_box_in_the_letterboxed_square(refer_root):
    from types import SimpleNamespace

    from asearch.data.grounding import build_grounding_dataset

    ds = build_dataset("refcoco", root=refer_root, split="train")
    items = build_grounding_dataset([ds], [1.0], {"frame": "first"}, SimpleNamespace(image_size=20),
                                    SimpleNamespace(missing="zero"), seed=0, length=4)
    for i in range(4):
        item = items[i]
        # 40x30 image -> scale 0.5: the 12x9 box at (8, 6) is 6x4.5 at (4, 3) of the 20x20 square
        assert item["box"].tolist() == pytest.approx([7 / 20, 5.25 / 20, 6 / 20, 4.5 / 20], abs=1e-6)
        assert item["sentence"] in ("left white box", "the bright one") and item["frame"] == 0
        assert item["image"].shape == (3, 20, 20) and item["video"] in ("ref10_0", "ref10_1")


class _RunsACommand:
    """Unpickling this would run ``touch <marker>`` through os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    refs = _refs()
    refs[0]["sentences"][0]["sent"] = _RunsACommand(marker)
    root = _write(tmp_path / "refer", refs=refs)
    with pytest.raises(DataError, match=r"refs\(unc\)\.p.*refused to unpickle.*global '(posix|os|nt)\.system'"):
        build_dataset("refcoco", root=root, split="train")
    assert not marker.exists()


@pytest.mark.parametrize("payload, what", [({1, 2}, "builtins.set"), (b"raw bytes", "builtins.bytes"),
                                           (np.zeros(2), "global 'numpy")])
def test_the_unpickler_allows_plain_data_only(tmp_path, payload, what):
    path = tmp_path / "x.p"
    path.write_bytes(pickle.dumps([{"a": (1, 2.5, True, None, "s")}, payload], protocol=4))
    with pytest.raises(DataError, match=f"{path.name}.*{what}"):
        load_plain_pickle(path)
    path.write_bytes(pickle.dumps([{"a": (1, 2.5, True, None, "s")}], protocol=0))
    assert load_plain_pickle(path) == [{"a": (1, 2.5, True, None, "s")}]
    # Python 2 pickles: str (SHORT_BINSTRING) decoded as UTF-8, long (LONG1); __builtin__.unicode allowed, set not
    path.write_bytes(b"\x80\x02]q\x00(U\x03abcq\x01U\x02\xc3\xa9q\x02\x8a\x01\x05e.")
    assert load_plain_pickle(path) == ["abc", "\u00e9", 5]
    path.write_bytes(b"\x80\x02c__builtin__\nunicode\nq\x00U\x01xq\x01\x85q\x02Rq\x03.")
    assert load_plain_pickle(path) == "x"
    path.write_bytes(b"\x80\x02c__builtin__\nset\nq\x00]q\x01K\x01a\x85q\x02Rq\x03.")
    with pytest.raises(DataError, match="global '__builtin__.set'"):
        load_plain_pickle(path)
    path.write_bytes(b"\x80\x02U\x02\xff\xfeq\x00.")                 # a Python 2 str that is not UTF-8
    with pytest.raises(DataError, match="not UTF-8"):
        load_plain_pickle(path)
    path.write_bytes(b"\x80\x02]q\x00(K\x01")                    # truncated
    with pytest.raises(DataError, match="not a readable pickle"):
        load_plain_pickle(path)


def test_missing_folders_and_files_say_what_to_put_where(tmp_path, monkeypatch):
    root = tmp_path / "refer"
    root.mkdir()
    with pytest.raises(DataError, match=r"field annotation_dir: annotation folder not found: put refs\(unc\)\.p "
                                        r"and instances\.json of refcoco"):
        build_dataset("refcoco", root=root)
    (root / "refcoco").mkdir()
    with pytest.raises(DataError, match=r"field split_by: no refs file .*refs\(google\)\.p, refs\(google\)\.json"):
        build_dataset("refcoco", root=root, split_by="google")
    _write(root)
    (root / "refcoco" / "instances.json").unlink()
    with pytest.raises(DataError, match=r"instances\.json.*field instances: instances\.json not found"):
        build_dataset("refcoco", root=root)
    with pytest.raises(DataError, match=r"field image_dir: image folder not found: put the COCO train2014 images"):
        build_dataset("refcoco", root=root, image_dir=tmp_path / "nowhere")
    monkeypatch.delenv("ASEARCH_REFCOCO_ROOT", raising=False)
    with pytest.raises(ConfigError, match="ASEARCH_REFCOCO_ROOT.*Expected layout: root/<dataset>/refs"):
        build_dataset("refcoco")


def _bad(tmp_path, ref_edit=None, ann_edit=None):
    refs, anns = _refs(), [dict(a) for a in ANNS]
    if ref_edit:
        ref_edit(refs)
    if ann_edit:
        ann_edit(anns)
    return _write(tmp_path / "refer", refs=refs, anns=anns)


@pytest.mark.parametrize("ref_edit, ann_edit, match", [
    (lambda r: r[0].update(ann_id=999), None, r"refs\(unc\)\.p, field refs\[0\]\.ann_id: ann_id 999 is not"),
    (lambda r: r[0].update(image_id=2), None, r"field refs\[0\]\.image_id: annotation 100 is on image 1"),
    (lambda r: r[1].pop("sentences"), None, r"field refs\[1\]\.sentences: a ref needs the key 'sentences'"),
    (lambda r: r[2].update(ann_id=[102]), None, r"field refs\[2\]\.ann_id: an id must be an integer or a string"),
    (lambda r: r[2].update(ann_id=100), None, r"field refs\[2\]\.image_id: annotation 100 is on image 1"),
    (lambda r: r[1].update(ref_id=10), None, r"field refs\[1\]\.ref_id: ref_id 10 already used by refs\[0\]"),
    (lambda r: r[0]["sentences"].append({"tokens": []}), None, r"field refs\[0\]\.sentences\[2\]: .*'sent' or 'raw'"),
    (None, lambda a: a[0].update(bbox=[8.0, math.nan, 12.0, 9.0]), r"instances\.json, field annotations\[0\]\.bbox: "
                                                                   r"NaN or infinite"),
    (None, lambda a: a[0].update(bbox=[8.0, 6.0, -12.0, 9.0]), r"field annotations\[0\]\.bbox: negative value"),
    (None, lambda a: a[0].update(bbox=[8.0, 6.0, 12.0]), r"field annotations\[0\]\.bbox: bbox must be 4 numbers"),
])
def test_bad_input_names_the_file_and_the_field(tmp_path, ref_edit, ann_edit, match):
    """Every ref is checked, also those of other splits (refs[1] is testA, refs[2] val: the split read is train)."""
    root = _bad(tmp_path, ref_edit, ann_edit)
    with pytest.raises(DataError, match=match):
        build_dataset("refcoco", root=root, split="train")


def test_refs_without_sentences_or_with_an_empty_box_warn_and_are_skipped(tmp_path):
    def edit(refs):
        refs[1]["sentences"] = []
        refs[2]["sentences"] = [{"sent": "  ", "raw": ""}]

    root = _bad(tmp_path, edit, lambda a: a[0].update(bbox=[8.0, 6.0, 0.0, 9.0]))
    with pytest.warns(DataWarning) as caught:
        with pytest.raises(DataError, match="no usable referring expression in split 'all'"):
            build_dataset("refcoco", root=root, split="all")
    text = " | ".join(str(w.message) for w in caught)
    assert "2 ref(s) of split 'all' with no sentence" in text and "first: ref_id 11" in text
    assert "1 ref(s) of split 'all' with a box of zero width or height" in text
    root = _bad(tmp_path / "b", lambda r: r[1].update(sentences=[]))
    with pytest.warns(DataWarning, match="1 ref\\(s\\) of split 'all' with no sentence"):
        assert build_dataset("refcoco", root=root, split="all").names == ["ref10_0", "ref10_1", "ref12_0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                             # the train split holds no such ref: no warning
        assert len(build_dataset("refcoco", root=root, split="train")) == 2


def test_the_example_recipe_names_the_reader_with_its_options():
    import inspect

    from asearch.training.recipes import load_experiment

    cfg = load_experiment(experiments_dir() / "grounding" / "refcoco.yaml")
    (spec,) = cfg.data.datasets
    assert spec.name == "refcoco" and spec.split == "train" and cfg.data.sampler["frame"] == "first"
    assert set(spec.options) <= set(inspect.signature(RefCOCODataset.__init__).parameters)
    assert cfg.model["name"] == "grounding" and cfg.model["text"]["max_length"] == 20


def test_asearch_retrain_trains_the_tiny_grounding_model_on_referring_data(refer_root, tmp_path):
    import torch

    from asearch.cli import main

    torch.set_num_threads(1)
    out = tmp_path / "run"
    sets = ["data.datasets.0.name=refcoco", f"data.datasets.0.root={refer_root}", "data.datasets.0.split=train",
            "data.datasets.0.options.dataset=refcoco", "data.datasets.0.options.split_by=unc",
            "train.steps=2", "train.batch_size=2", "train.device=cpu", "data.pairs_per_epoch=4"]
    assert main(["retrain", "--config", str(experiments_dir() / "grounding" / "tiny.yaml"), "--out", str(out),
                 "--no-progress", *[a for kv in sets for a in ("--set", kv)]]) == 0
    ckpt = torch.load(out / "checkpoints" / "latest.pt", map_location="cpu", weights_only=False)
    assert ckpt["step"] == 2
