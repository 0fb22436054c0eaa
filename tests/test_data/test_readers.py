"""Dataset readers on tiny fake datasets in each native layout: quirks, splits, attribute files, errors."""
import json
import warnings

import numpy as np
import pytest
import torch

from asearch.data import (
    COCODataset, GOT10kDataset, LaSOTDataset, LaSOTExtDataset, OTB99LangDataset, TNL2KDataset, TrackingNetDataset,
    build_dataset, load_attribute_words, save_attribute_words,
)
from asearch.data.attributes import LASOT_ATTRIBUTES, TNL2K_ATTRIBUTES, read_attribute_flags
from asearch.data.datasets import lasot_test_names, natural_key, read_boxes
from asearch.errors import ConfigError, DataError, DataWarning


def _lasot(root, split="test", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a partial copy of the test set warns
        return LaSOTDataset(root, split=split, **kw)


# --------------------------------------------------------------------------------------------------- shared parsers
def test_read_boxes_accepts_commas_spaces_tabs_and_crlf(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_bytes(b"1,2,3,4\r\n5 6 7 8\r\n9\t10\t11\t12\r\n-3, -4, 5, 6\r\n\r\n")
    np.testing.assert_array_equal(read_boxes(p), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [-3, -4, 5, 6]])


@pytest.mark.parametrize("rows, message", [
    ("1,2,3,4\n1,2,nan,4\n", "line 2: NaN"),
    ("1,2,3,4\n1,2,x,4\n", "line 2: non-numeric"),
    ("1,2,3\n", "line 1: expected 4 values"),
    ("1,2,3,4\n\n1,2,3,4\n", "line 2: empty row"),
])
def test_read_boxes_errors_name_file_and_line(tmp_path, rows, message):
    p = tmp_path / "groundtruth.txt"
    p.write_text(rows)
    with pytest.raises(DataError, match=message) as err:
        read_boxes(p)
    assert str(p) in str(err.value) and err.value.field == "groundtruth"


def test_natural_key_orders_digit_runs_by_value():
    names = ["img10.jpg", "img2.png", "img1.jpg", "IMG3.jpg"]
    assert sorted(names, key=natural_key) == ["img1.jpg", "img2.png", "IMG3.jpg", "img10.jpg"]


# ----------------------------------------------------------------------------------------------------------- LaSOT
def test_lasot_official_test_list():
    names = lasot_test_names()
    assert len(names) == 280 and len(set(names)) == 280
    classes = {n.rsplit("-", 1)[0] for n in names}
    assert len(classes) == 70 and all(sum(n.startswith(c + "-") for n in names) == 4 for c in classes)
    assert {"airplane-1", "bird-2", "volleyball-19", "rubicCube-14"} <= set(names)


def test_lasot_sequence_visibility_language_frames(lasot_root):
    with pytest.warns(UserWarning, match="278 of the 280 LaSOT test videos are missing"):
        ds = LaSOTDataset(lasot_root, split="test")
    assert ds.names == ["airplane-1", "bird-2"]  # official order
    assert len(ds) == 2 and ds.has_language and ds.attribute_names == LASOT_ATTRIBUTES
    seq = ds["airplane-1"]
    assert seq is ds[0] and seq.dataset == "lasot" and seq.category == "airplane"
    np.testing.assert_array_equal(seq.boxes[1], [11, 21, 30, 40])
    # visible = not (full_occlusion or out_of_view): rows 0,1,0 and 0,0,1
    assert seq.visible.tolist() == [True, False, False]
    assert seq.sentence == "a red plane in the sky" and seq.attributes is None and seq.attribute_flags is None
    assert seq.frames[0].endswith("img/00000001.jpg")
    assert seq.frame(2)[0, 0].tolist() == [22, 12, 2]  # BGR (2, 12, 22) written, RGB read
    assert _lasot(lasot_root, "train").names == ["airplane-2"]
    assert _lasot(lasot_root, "train")[0].sentence == "a white plane"
    assert sorted(_lasot(lasot_root, "all").names) == ["airplane-1", "airplane-2", "bird-2"]
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        _lasot(lasot_root, "val")


def test_lasot_attribute_flags(lasot_root, tmp_path):
    flags = tmp_path / "att"
    flags.mkdir()
    (flags / "airplane-1.txt").write_text("1,0,0,0,0,0,0,0,0,1,0,0,0,1\n")
    ds = _lasot(lasot_root, flags_dir=flags)
    got = ds["airplane-1"].attribute_flags
    assert [k for k, v in got.items() if v] == ["IV", "FOC", "ARC"] and len(got) == 14
    assert ds["bird-2"].attribute_flags is None  # no file for it: optional
    (flags / "bad.txt").write_text("1,0,1\n")
    with pytest.raises(DataError, match="expected 14 attribute flags"):
        read_attribute_flags(flags / "bad.txt")


def test_lasot_held_out_list_is_package_data_of_training_videos():
    """70 held-out videos, one per class, none in the official test list (so all in LaSOT's training set), shipped
    with the package: setup.cfg's package_data for asearch.data.datasets covers the file."""
    import configparser
    import fnmatch
    from pathlib import Path

    import asearch.data.datasets as datasets_pkg
    from asearch.data.datasets.base import SPLIT_DIR

    held = LaSOTDataset.held_out_names()
    test = lasot_test_names()
    assert len(held) == 70 == len(set(held)) and not set(held) & set(test)
    classes = sorted({n.rsplit("-", 1)[0] for n in test})
    assert sorted(n.rsplit("-", 1)[0] for n in held) == classes  # one per class
    assert held[:3] == ["airplane-2", "basketball-2", "bear-1"]  # lowest-numbered training video of each class
    assert (SPLIT_DIR / LaSOTDataset.HELD_OUT_FILE).parent == Path(datasets_pkg.__file__).parent / "splits"
    setup_cfg = Path(datasets_pkg.__file__).parents[3] / "setup.cfg"
    if not setup_cfg.is_file():
        pytest.skip("not a source checkout")
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)
    patterns = cfg["options.package_data"]["asearch.data.datasets"].split()
    assert any(fnmatch.fnmatch("splits/lasot_heldout.txt", p) for p in patterns)


def test_lasot_held_out_option_excludes_or_selects_the_list(tmp_path, write_lasot_video):
    """Train split of airplane-1 (test), airplane-2 and bird-1 (held out), airplane-3 (train): exclude drops the
    held-out ones (pretraining), only keeps just them (search validation), keep changes nothing."""
    root = tmp_path / "lasot"
    for name in ("airplane-1", "airplane-2", "airplane-3", "bird-1"):
        write_lasot_video(root, name, ["1,1,4,4", "1,1,4,4"])
    assert _lasot(root, split="train").names == ["airplane-2", "airplane-3", "bird-1"]
    assert _lasot(root, split="train", held_out="keep").names == ["airplane-2", "airplane-3", "bird-1"]
    assert build_dataset("lasot", root=root, split="train", held_out="exclude").names == ["airplane-3"]
    with pytest.warns(DataWarning, match="68 of the 70 held-out videos are not in split 'train'"):
        only = LaSOTDataset(root, split="train", held_out="only")
    assert only.names == ["airplane-2", "bird-1"]
    assert _lasot(root, split="test", held_out="exclude").names == ["airplane-1"]  # not in the list: kept
    with pytest.raises(DataError, match=r"lasot_heldout.txt, field held_out: none of the 70 held-out videos"):
        _lasot(root, split="test", held_out="only")
    with pytest.raises(ConfigError, match="option held_out must be one of keep, exclude, only, got 'drop'"):
        _lasot(root, split="train", held_out="drop")
    with pytest.raises(ConfigError, match="dataset 'lasot_ext' ships no held-out validation list"):
        LaSOTExtDataset(root, split="test", held_out="exclude")


def test_lasot_missing_flag_files_fall_back_to_box_size(tmp_path, write_lasot_video):
    folder = write_lasot_video(tmp_path, "cat-1", ["1,1,4,4", "0,0,0,0"])
    (folder / "full_occlusion.txt").unlink()
    (folder / "out_of_view.txt").unlink()
    assert _lasot(tmp_path, "test")["cat-1"].visible.tolist() == [True, False]


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / "groundtruth.txt").write_text("1,2,3,4\nnan,2,3,4\n1,2,3,4\n"), "line 2: NaN"),
    (lambda f: (f / "groundtruth.txt").write_text("1,2,3,4\n1,2,3,4\n"), "3 frames .* but 2 boxes"),
    (lambda f: (f / "groundtruth.txt").write_text("1,2,3,4,5\n1,2,3,4\n1,2,3,4\n"), "expected 4 values"),
    (lambda f: (f / "full_occlusion.txt").write_text("0,1"), "2 flags but 3 boxes"),
    (lambda f: (f / "out_of_view.txt").write_text("0,2,0"), "flags must be 0 or 1"),
    (lambda f: (f / "nlp.txt").write_bytes(b"a red \xff\xfe plane\n"), "not UTF-8 text \\(byte 6"),
])
def test_lasot_bad_input_names_file(lasot_root, breakage, message):
    folder = lasot_root / "airplane" / "airplane-1"
    breakage(folder)
    ds = _lasot(lasot_root)
    with pytest.raises(DataError, match=message) as err:
        ds["airplane-1"]
    assert str(folder) in str(err.value)


@pytest.mark.parametrize("what", ["empty", "missing"])
def test_lasot_empty_or_missing_language_file_warns_once_and_gives_no_language(lasot_root, what):
    from asearch.data.datasets import base
    from asearch.errors import DataWarning

    folder = lasot_root / "airplane" / "airplane-1"
    if what == "empty":
        (folder / "nlp.txt").write_text("  \n\n")
    else:
        (folder / "nlp.txt").unlink()
    base._WARNED_LANGUAGE.clear()
    with pytest.warns(DataWarning, match=f"the language file is {what}") as caught:
        seq = _lasot(lasot_root)["airplane-1"]
    assert seq.sentence is None and not seq.has_language
    assert len(caught) == 1 and str(folder / "nlp.txt") in str(caught[0].message)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same file again: no second warning
        assert _lasot(lasot_root)["airplane-1"].sentence is None
    assert _lasot(lasot_root)["bird-2"].sentence  # the other videos keep theirs


def test_lasot_missing_img_folder(lasot_root):
    import shutil

    shutil.rmtree(lasot_root / "bird" / "bird-2" / "img")
    with pytest.raises(DataError, match="image folder not found") as err:
        _lasot(lasot_root)["bird-2"]
    assert err.value.field == "img" and err.value.path.endswith("img")


def test_lasot_ext_is_test_only(tmp_path, write_lasot_video):
    write_lasot_video(tmp_path, "atv-1", ["1,1,2,2"])
    write_lasot_video(tmp_path, "wingsuit-3", ["1,1,2,2"])
    ds = LaSOTExtDataset(tmp_path)
    assert ds.names == ["atv-1", "wingsuit-3"] and ds.name == "lasot_ext" and ds[1].dataset == "lasot_ext"
    with pytest.raises(ConfigError, match="test-only"):
        LaSOTExtDataset(tmp_path, split="train")


# ------------------------------------------------------------------------------------------- attribute-word files
WORDS = {"airplane-1": "plane,vehicle,white,right", "bird-2": ["bird", "animal", " black ", "center"]}


@pytest.mark.parametrize("fmt", ["pth", "csv", "json"])
def test_attribute_files_in_three_forms_fill_sequences(lasot_root, tmp_path, fmt):
    path = tmp_path / f"attr.{fmt}"
    if fmt == "pth":  # the released form: a dict video -> "major,root,color,position" saved with torch.save
        torch.save({"airplane-1": "plane,vehicle,white,right", "bird-2": "bird,animal,black,center"}, path)
    elif fmt == "csv":
        path.write_text("video,major,root,color,position\nairplane-1,plane,vehicle,white,right\n"
                        "bird-2,bird,animal,black,center\n")
    else:
        path.write_text(json.dumps(WORDS))
    ds = _lasot(lasot_root, attributes=path)
    assert ds["airplane-1"].attributes == ["plane", "vehicle", "white", "right"]
    assert ds["bird-2"].attributes == ["bird", "animal", "black", "center"]
    assert _lasot(lasot_root, "train", attributes=path)[0].attributes is None  # not annotated


@pytest.mark.parametrize("fmt, content, message", [
    ("pth", {"airplane-1": "plane,vehicle,white"}, "video 'airplane-1'.*expected 4 attribute words"),
    ("pth", {"car-3": 5}, "video 'car-3'.*must be a string"),
    ("pth", ["not", "a", "dict"], "must hold a mapping"),
    ("csv", "cat-1,cat,animal,black,left\ncat-2,cat,animal,left\n", "video 'cat-2'.*line 2: expected 5 columns"),
    ("csv", "cat-1,cat,animal,,left\n", "video 'cat-1'.*'color' is empty"),
    ("json", {"dog-4": ["dog", "animal", "brown", "left", "extra"]}, "video 'dog-4'.*got 5"),
    ("json", "{not json", "not valid JSON"),
])
def test_malformed_attribute_files_name_file_and_video(tmp_path, fmt, content, message):
    path = tmp_path / f"a.{fmt}"
    if fmt == "pth":
        torch.save(content, path)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=message) as err:
        load_attribute_words(path)
    assert str(path) in str(err.value)


class NotAllowed:
    """An arbitrary class: torch.load(weights_only=True) must refuse to unpickle it."""


def test_attribute_words_round_trip_and_unsafe_pickle(tmp_path):
    words = {"a-1": ["cat", "animal", "gray", "left"], "b-2": ["car", "vehicle", "red", "top"]}
    for suffix in ("json", "csv", "pth"):
        path = save_attribute_words(words, tmp_path / f"w.{suffix}")
        assert load_attribute_words(path) == words
    assert torch.load(tmp_path / "w.pth", weights_only=True)["a-1"] == "cat,animal,gray,left"
    torch.save({"a-1": NotAllowed()}, tmp_path / "evil.pth")
    with pytest.raises(DataError, match="weights_only=True"):
        load_attribute_words(tmp_path / "evil.pth")


# ------------------------------------------------------------------------------------------------------ split files
def test_split_file_replaces_builtin_split(lasot_root, tmp_path):
    split = tmp_path / "mine.txt"
    split.write_text("# my videos\nbird-2\n\nairplane-2\n")
    ds = _lasot(lasot_root, split_file=split)
    assert ds.names == ["bird-2", "airplane-2"]
    split.write_text("bird-2\nnope-7\n")
    with pytest.raises(DataError, match="video 'nope-7' is not in the dataset") as err:
        _lasot(lasot_root, split_file=split)
    assert str(split) in str(err.value)
    split.write_text("bird-2\nbird-2\n")
    with pytest.raises(DataError, match="line 2: video 'bird-2' already listed at line 1"):
        _lasot(lasot_root, split_file=split)


# ----------------------------------------------------------------------------------------------------------- TNL2K
def test_tnl2k_quirks(tmp_path, write_frames):
    video = tmp_path / "TNL2K_test_subset" / "Bike_video_1"
    write_frames(video / "imgs", ["frame1.png", "frame2.jpg", "frame10.jpg"])
    (video / "groundtruth.txt").write_text("-5,-3,20,30\n0,0,0,0\n4,4,10,10\n")
    (video / "language.txt").write_text("the bike in red\n")
    empty = tmp_path / "TNL2K_test_subset" / "advSamp_1"
    write_frames(empty / "imgs", ["00001.jpg"])
    (empty / "groundtruth.txt").write_text("1,1,2,2\n")
    (empty / "language.txt").write_text("")
    ds = TNL2KDataset(tmp_path, split="test")
    assert ds.names == ["advSamp_1", "Bike_video_1"]
    seq = ds["Bike_video_1"]
    assert [f.rsplit("/", 1)[1] for f in seq.frames] == ["frame1.png", "frame2.jpg", "frame10.jpg"]
    np.testing.assert_array_equal(seq.boxes[0], [-5, -3, 20, 30])  # negative x/y kept
    assert seq.visible.tolist() == [True, False, True]  # 0,0,0,0 = absent
    assert seq.sentence == "the bike in red"
    with pytest.warns(DataWarning, match="advSamp_1/language.txt: the language file is empty"):
        assert ds["advSamp_1"].sentence is None  # an empty language file: no language, one warning
    with pytest.raises(DataError, match="no folder for split 'train'"):
        TNL2KDataset(tmp_path, split="train")


def _tnl2k_flags(on):
    """A TNL2K attribute file as the official toolkit ships it: 17 values, one per line, CRLF."""
    return "".join(("1" if a in on else "0") + "\r\n" for a in TNL2K_ATTRIBUTES)


def test_tnl2k_attribute_flags(tmp_path, write_frames):
    """TNL2K's 17 flags come from flags_dir/<video>_attribute.txt in the toolkit's order CM, ROT, ..., TC, MS."""
    assert len(TNL2K_ATTRIBUTES) == 17 and TNL2K_ATTRIBUTES[:3] == ("CM", "ROT", "DEF")
    assert TNL2K_ATTRIBUTES[-3:] == ("AS", "TC", "MS")
    for name in ("Bike_video_1", "advSamp_1"):
        video = tmp_path / "TNL2K_test_subset" / name
        write_frames(video / "imgs", ["00001.jpg", "00002.jpg"])
        (video / "groundtruth.txt").write_text("1,1,4,4\n1,1,4,4\n")
        (video / "language.txt").write_text("the target")
    att = tmp_path / "annos" / "att"
    att.mkdir(parents=True)
    # line 1 = CM, line 4 = FOC, line 15 = AS (adversarial samples), line 17 = MS
    (att / "Bike_video_1_attribute.txt").write_text("1\r\n0\r\n0\r\n1\r\n" + "0\r\n" * 10 + "1\r\n0\r\n1\r\n")
    ds = build_dataset("tnl2k", root=tmp_path, split="test", flags_dir=att)
    assert ds.attribute_names == TNL2K_ATTRIBUTES
    flags = ds["Bike_video_1"].attribute_flags
    assert list(flags) == list(TNL2K_ATTRIBUTES)
    assert [k for k, v in flags.items() if v] == ["CM", "FOC", "AS", "MS"]
    assert ds["advSamp_1"].attribute_flags is None  # no file for it: optional, as in LaSOT
    assert TNL2KDataset(tmp_path, split="test")["Bike_video_1"].attribute_flags is None  # no flags_dir
    # the 18-value files of a Python port (a leading "ALL" 1) and bad values fail naming the file
    (att / "advSamp_1_attribute.txt").write_text("1\n" + _tnl2k_flags({"CM"}))
    with pytest.raises(DataError, match=r"advSamp_1_attribute.txt.*expected 17 attribute flags .*got 18"):
        TNL2KDataset(tmp_path, split="test", flags_dir=att)["advSamp_1"]
    (att / "advSamp_1_attribute.txt").write_text(_tnl2k_flags({"CM"}).replace("0", "2", 1))
    with pytest.raises(DataError, match=r"advSamp_1_attribute.txt.*flag 'ROT' must be 0 or 1"):
        TNL2KDataset(tmp_path, split="test", flags_dir=att)["advSamp_1"]
    with pytest.raises(DataError, match="attribute flag folder not found"):
        TNL2KDataset(tmp_path, split="test", flags_dir=tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------------ OTB99-Lang
def _otb(root, write_frames):
    v = root / "OTB_videos"
    write_frames(v / "Biker" / "img", ["0001.jpg", "0002.jpg"])
    (v / "Biker" / "groundtruth_rect.txt").write_text("1,2,3,4\n5,6,7,8\n")
    write_frames(v / "Car4" / "img", ["0001.jpg", "0002.jpg"])
    (v / "Car4" / "groundtruth_rect.txt").write_text("1\t2\t3\t4\n5 6  7 8\n")
    write_frames(v / "David" / "img", ["0299.jpg", "0300.jpg", "0301.jpg"])  # annotated from frame 300
    (v / "David" / "groundtruth_rect.txt").write_text("1,1,5,5\n2,2,5,5\n")
    write_frames(v / "Jogging" / "img", ["0001.jpg", "0002.jpg"])
    (v / "Jogging" / "groundtruth_rect.1.txt").write_text("1,1,2,2\n1,1,2,2\n")
    (v / "Jogging" / "groundtruth_rect.2.txt").write_text("3,3,2,2\n4,4,2,2\n")
    write_frames(v / "Human4" / "img", ["0001.jpg", "0002.jpg"])
    (v / "Human4" / "groundtruth_rect.2.txt").write_text("7,7,3,3\n8,8,3,3\n")  # the only annotation
    for split, videos in (("train", ["Biker", "David"]), ("test", ["Car4", "Jogging-1"])):
        q = root / f"OTB_query_{split}"
        q.mkdir(parents=True)
        for name in videos:
            (q / f"{name}.txt").write_text(f"the target of {name}\n")


def test_otb99_lang_layout_separators_and_splits(tmp_path, write_frames):
    _otb(tmp_path, write_frames)
    test = OTB99LangDataset(tmp_path, split="test")
    assert test.names == ["Car4", "Jogging-1"]
    np.testing.assert_array_equal(test["Car4"].boxes, [[1, 2, 3, 4], [5, 6, 7, 8]])  # tab / space separated
    assert test["Car4"].sentence == "the target of Car4" and test["Car4"].visible.all()
    assert len(test["Jogging-1"]) == 2
    train = OTB99LangDataset(tmp_path, split="train")
    assert train.names == ["Biker", "David"]
    assert [f.rsplit("/", 1)[1] for f in train["David"].frames] == ["0300.jpg", "0301.jpg"]
    assert len(OTB99LangDataset(tmp_path, split="all")) == 4
    # every video folder, as a split file sees them: the two targets of Jogging apart, Human4 under its own name
    everything = OTB99LangDataset(tmp_path, split=None)
    assert everything.names == ["Biker", "Car4", "David", "Human4", "Jogging-1", "Jogging-2"]
    np.testing.assert_array_equal(everything["Human4"].boxes, [[7, 7, 3, 3], [8, 8, 3, 3]])
    np.testing.assert_array_equal(everything["Jogging-2"].boxes, [[3, 3, 2, 2], [4, 4, 2, 2]])
    assert everything["Jogging-2"].frames == everything["Jogging-1"].frames
    (tmp_path / "OTB_query_test" / "Car4.txt").write_text("")
    with pytest.warns(DataWarning, match="language file is empty"):
        assert OTB99LangDataset(tmp_path, split="test")["Car4"].sentence is None


# --------------------------------------------------------------------------------------------------------- GOT-10k
META = "[METAINFO]\nurl: https://example.org/v?a=1\nobject_class: dove\nmotion_class: walking\n" \
       "major_class: bird\nroot_class: animal\nmotion_adverb: slowly\n"


def _got(root, write_frames):
    v = root / "train" / "GOT-10k_Train_000001"
    write_frames(v, ["00000001.jpg", "00000002.jpg", "00000003.jpg"])
    (v / "groundtruth.txt").write_text("1,2,3,4\n1,2,3,4\n1,2,3,4\n")
    (v / "absence.label").write_text("0\n1\n0\n")
    (v / "cover.label").write_text("8\n0\n0\n")
    (v / "meta_info.ini").write_text(META)
    (root / "train" / "list.txt").write_text("GOT-10k_Train_000001\n")
    t = root / "test" / "GOT-10k_Test_000001"
    write_frames(t, ["00000001.jpg", "00000002.jpg"])
    (t / "groundtruth.txt").write_text("5,5,10,10\n")
    return v


def test_got10k_meta_labels_and_first_frame_only_test(tmp_path, write_frames):
    video = _got(tmp_path, write_frames)
    seq = GOT10kDataset(tmp_path, split="train")[0]
    assert seq.sentence == "dove walking bird animal"
    assert seq.attributes == ["bird", "animal", "none", "none"] and seq.category == "dove"
    assert seq.visible.tolist() == [True, False, False]  # absent at 2, cover 0 at 2 and 3
    assert seq.meta["cover"].tolist() == [8, 0, 0]
    test = GOT10kDataset(tmp_path, split="test")["GOT-10k_Test_000001"]
    assert test.meta["first_frame_only"] and np.isnan(test.boxes[1]).all() and test.boxes[0, 2] == 10
    attr = tmp_path / "a.json"
    attr.write_text(json.dumps({"GOT-10k_Train_000001": "pigeon,bird,gray,center"}))
    assert GOT10kDataset(tmp_path, "train", attributes=attr)[0].attributes == ["pigeon", "bird", "gray", "center"]
    (video / "cover.label").write_text("8\n0\n")
    with pytest.raises(DataError, match="2 labels but 3 frames"):
        GOT10kDataset(tmp_path, split="train")[0]
    (video / "cover.label").write_text("8\n0\n0\n")
    # one missing key: that field is None, the others are read, one warning names the file and the key
    (video / "meta_info.ini").write_text(META.replace("object_class: dove\n", ""))
    with pytest.warns(DataWarning, match=r"meta_info.ini: key\(s\) object_class missing"):
        seq = GOT10kDataset(tmp_path, split="train")[0]
    assert seq.category is None and seq.sentence == "walking bird animal"
    assert seq.attributes == ["bird", "animal", "none", "none"]
    (video / "meta_info.ini").write_text(META.replace("root_class: animal\n", ""))
    with pytest.warns(DataWarning, match="root_class"):
        seq = GOT10kDataset(tmp_path, split="train")[0]
    assert seq.category == "dove" and seq.attributes == ["bird", "none", "none", "none"]


# ----------------------------------------------------------------------------------------------------- TrackingNet
def test_trackingnet_zero_based_frames_crlf_and_chunks(tmp_path, write_frames):
    for chunk, video in (("TRAIN_0", "vidA_0"), ("TRAIN_1", "vidB_0")):
        write_frames(tmp_path / chunk / "frames" / video, [f"{i}.jpg" for i in range(11)], size=4)
        (tmp_path / chunk / "anno").mkdir(parents=True)
        (tmp_path / chunk / "anno" / f"{video}.txt").write_bytes(b"".join(
            f"{i}, {i}.5 ,3,4\r\n".encode() for i in range(11)))
    write_frames(tmp_path / "TEST" / "frames" / "vidC", ["0.jpg", "1.jpg"], size=4)
    (tmp_path / "TEST" / "anno").mkdir(parents=True)
    (tmp_path / "TEST" / "anno" / "vidC.txt").write_text("1,1,2,2\n")
    train = TrackingNetDataset(tmp_path, split="train")
    assert train.names == ["vidA_0", "vidB_0"] and not train.has_language
    seq = train["vidA_0"]
    assert [f.rsplit("/", 1)[1] for f in seq.frames][-3:] == ["8.jpg", "9.jpg", "10.jpg"]
    np.testing.assert_array_equal(seq.boxes[10], [10, 10.5, 3, 4])
    assert TrackingNetDataset(tmp_path, split="train", chunks=[1]).names == ["vidB_0"]
    assert TrackingNetDataset(tmp_path, split="TRAIN_0").names == ["vidA_0"]
    test = TrackingNetDataset(tmp_path, split="test")["vidC"]
    assert len(test) == 2 and np.isnan(test.boxes[1]).all()
    with pytest.raises(DataError, match="annotation folder of split 'train'"):
        TrackingNetDataset(tmp_path, split="train", chunks=[5])


# ------------------------------------------------------------------------------------------------------------ COCO
def _coco(root, annotations, write_frames):
    write_frames(root / "val2017", ["000000000001.jpg"])
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    data = {"images": [{"id": 1, "file_name": "000000000001.jpg"}],
            "categories": [{"id": 18, "name": "dog"}], "annotations": annotations}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))


def test_coco_objects_are_one_frame_sequences(tmp_path, write_frames):
    _coco(tmp_path, [
        {"id": 7, "image_id": 1, "category_id": 18, "bbox": [1, 2, 3, 4], "iscrowd": 0},
        {"id": 8, "image_id": 1, "category_id": 18, "bbox": [0, 0, 5, 5], "iscrowd": 1},  # crowd: skipped
        {"id": 9, "image_id": 1, "category_id": 18, "bbox": [0, 0, 0, 5], "iscrowd": 0},  # zero width: skipped
    ], write_frames)
    ds = COCODataset(tmp_path, split="val")
    assert ds.names == ["000000000001_7"] and not ds.has_language
    seq = ds[0]
    assert len(seq) == 1 and seq.category == "dog" and seq.boxes.tolist() == [[1, 2, 3, 4]] and seq.visible.all()
    assert seq.frame(0).shape == (8, 8, 3)
    _coco(tmp_path, [{"id": 7, "image_id": 1, "category_id": 18, "bbox": [1, "x", 3, 4]}], write_frames)
    with pytest.raises(DataError, match="non-numeric bbox") as err:
        COCODataset(tmp_path, split="val")
    assert err.value.field == "annotations[0].bbox"
    with pytest.raises(DataError, match="no annotation file for split 'train'"):
        COCODataset(tmp_path, split="train")


# -------------------------------------------------------------------------------------------------------- registry
def test_build_dataset_roots_from_env_and_errors(tmp_path, monkeypatch, lasot_root, write_frames):
    monkeypatch.delenv("ASEARCH_LASOT_ROOT", raising=False)
    with pytest.raises(ConfigError, match="ASEARCH_LASOT_ROOT.*Expected layout: root/<class>/<class>-<n>"):
        build_dataset("lasot")
    monkeypatch.setenv("ASEARCH_LASOT_ROOT", str(lasot_root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert build_dataset("LaSOT", split="train").names == ["airplane-2"]
        assert build_dataset("lasot", root=lasot_root, split="all", flags_dir=None).name == "lasot"
    with pytest.raises(ConfigError, match="unknown dataset 'vot'"):
        build_dataset("vot", root=tmp_path)
    with pytest.raises(ConfigError, match="unknown option 'chunks'"):
        build_dataset("lasot", root=lasot_root, chunks=[1])
    _coco(tmp_path / "coco", [{"id": 1, "image_id": 1, "category_id": 18, "bbox": [1, 2, 3, 4]}], write_frames)
    assert len(build_dataset("coco", root=tmp_path / "coco", split="val")) == 1


def test_synthetic_benchmark_layout(tmp_path, write_lasot_video):
    root = tmp_path / "synth"
    for name in ("circle-1", "circle-2", "square-1"):
        write_lasot_video(root, name, ["1,1,3,3", "2,2,3,3"], nlp=f"the {name.split('-')[0]}")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("circle-1\nsquare-1\n")
    (root / "splits" / "val.txt").write_text("circle-2\n")
    (root / "attributes.json").write_text(json.dumps({n: "circle,shape,red,left" for n in ("circle-1", "circle-2")}))
    train = build_dataset("synthetic", root=root, split="train")
    assert train.names == ["circle-1", "square-1"] and train.has_language
    assert train[0].attributes == ["circle", "shape", "red", "left"] and train[1].attributes is None
    assert train[0].sentence == "the circle" and train[0].dataset == "synthetic"
    assert build_dataset("synthetic", root=root, split="val").names == ["circle-2"]
    with pytest.raises(DataError, match="no split file for split 'test'"):
        build_dataset("synthetic", root=root, split="test")
