"""Search validation is not training data: held-out LaSOT videos by default, a warning when a supernet's recorded
training data holds a validation video (`asearch search` through build_search, `asearch rank` through
RankRun.start).

The tiny LaSOT train split: airplane-2 and bird-1 are on the held-out list (package data), airplane-3 is not,
airplane-1 is an official test video.
"""
import logging
import warnings

import pytest
import torch

from asearch.config import experiments_dir, from_dict, load_config, load_yaml
from asearch.errors import DataWarning
from asearch.search.evolution import SearchConfig
from asearch.search.fitness import ValidationConfig, validation_names
from asearch.search.overlap import check_validation_overlap, training_overlap
from asearch.training.recipes import ExperimentConfig


@pytest.fixture(scope="module")
def lasot_train_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("overlap") / "lasot"
    for name in ("airplane-1", "airplane-2", "airplane-3", "bird-1"):
        video = root / name.rsplit("-", 1)[0] / name
        (video / "img").mkdir(parents=True)
        for i in (1, 2):
            (video / "img" / f"{i:08d}.jpg").write_bytes(b"")
        (video / "groundtruth.txt").write_text("1,1,4,4\n1,1,4,4\n")
    return root


def _validation(root, held_out="only", videos=2):
    options = {} if held_out == "keep" else {"held_out": held_out}
    return ValidationConfig(dataset="lasot", root=str(root), split="train", videos=videos, frames=2,
                            select="first", options=options)


def _data(*sources):
    return {"datasets": [dict(s) for s in sources]}


_PARTIAL = ".*held-out videos are not in split"  # the reader's warning for a partial LaSOT copy such as this one


@pytest.fixture(autouse=True)
def _quiet_partial_list():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PARTIAL)
        yield


class _no_overlap_warning(warnings.catch_warnings):
    """Any DataWarning but the partial-copy one is an error inside the block."""

    def __enter__(self):
        out = super().__enter__()
        warnings.simplefilter("error", DataWarning)
        warnings.filterwarnings("ignore", message=_PARTIAL)
        return out


def test_training_overlap_by_dataset_split_and_held_out(lasot_train_root, tmp_path):
    held = _validation(lasot_train_root)
    assert validation_names(held) == ["airplane-2", "bird-1"]
    lasot = {"name": "lasot", "root": "/elsewhere", "split": "train"}
    assert training_overlap(held, _data(lasot)) == ["airplane-2", "bird-1"]  # trained on the whole train split
    assert training_overlap(held, _data({**lasot, "options": {"held_out": "exclude"}})) == []
    assert training_overlap(held, _data({**lasot, "split": "test"}, {"name": "got10k", "split": "train"})) == []
    assert training_overlap(held, _data({**lasot, "name": "LaSOT"})) == ["airplane-2", "bird-1"]  # registry name
    assert training_overlap(held, None) == [] and training_overlap(held, {"datasets": []}) == []
    # validation over the whole train split, training without the held-out list: airplane-3 is shared
    whole = _validation(lasot_train_root, held_out="keep", videos=3)
    assert training_overlap(whole, _data({**lasot, "options": {"held_out": "exclude"}})) == ["airplane-3"]
    # a readable split_file narrows the training videos
    split_file = tmp_path / "train_subset.txt"
    split_file.write_text("bird-1\nairplane-3\n")
    assert training_overlap(held, _data({**lasot, "options": {"split_file": str(split_file)}})) == ["bird-1"]


def _checkpoint(path, data):
    torch.save({"config": {"data": data}}, path)
    return path


def test_check_warns_and_logs_for_an_overlapping_checkpoint(lasot_train_root, tmp_path, caplog):
    ckpt = _checkpoint(tmp_path / "trained_on_all.pt", _data({"name": "lasot", "split": "train"}))
    with caplog.at_level(logging.WARNING, logger="asearch.search"):
        with pytest.warns(DataWarning, match=r"2 of the validation videos \(lasot split 'train': airplane-2, bird-1\) "
                                             r"are in the training data of the supernet .*trained_on_all.pt"):
            assert check_validation_overlap(ckpt, _validation(lasot_train_root)) == ["airplane-2", "bird-1"]
    assert any("airplane-2, bird-1" in r.getMessage() for r in caplog.records)


def test_paper_defaults_hold_the_validation_videos_out(lasot_train_root, tmp_path, caplog):
    """search.yaml scores LaSOT's held-out videos; the VLT training configs exclude them: no warning."""
    search = load_config(SearchConfig, experiments_dir() / "vlt_scar" / "search.yaml")
    assert search.fitness.validation.options == {"held_out": "only"}
    validation = from_dict(ValidationConfig, {**vars(search.fitness.validation), "root": str(lasot_train_root),
                                              "videos": 2}, source="test")
    for family, name in (("vlt_scar", "supernet.yaml"), ("vlt_scar", "retrain.yaml"), ("vlt_tt", "retrain.yaml"),
                         ("vlt_ost", "supernet.yaml"), ("vlt_ost", "retrain.yaml")):
        exp = from_dict(ExperimentConfig, load_yaml(experiments_dir() / family / name), source=name)
        data = {"datasets": [vars(d) for d in exp.data.datasets]}
        assert [d["options"] for d in data["datasets"] if d["name"] == "lasot"] == [{"held_out": "exclude"}], family
        ckpt = _checkpoint(tmp_path / f"{family}_{name}.pt", data)
        caplog.clear()
        with _no_overlap_warning():
            assert check_validation_overlap(ckpt, validation) == []
        assert not caplog.records


def _start_search(root, ckpt, out):
    from asearch.commands.search import build_search

    cfg = load_config(SearchConfig, experiments_dir() / "vlt_scar" / "tiny_search.yaml", _lasot_validation(root))
    build_search(cfg, ckpt, out, progress=False)


def _start_rank(root, ckpt, out):
    from asearch.search.rank import RankConfig, RankRun

    rank_yaml = experiments_dir() / "demo" / "rank.yaml"
    cfg = load_config(RankConfig, rank_yaml, _lasot_validation(root))
    RankRun(cfg, ckpt, out, config_path=rank_yaml, progress=False).start(resume=False)


def _lasot_validation(root):
    return ["fitness.validation.dataset=lasot", f"fitness.validation.root={root}", "fitness.validation.split=train",
            "fitness.validation.videos=2", "fitness.validation.options={held_out: only}"]


@pytest.mark.parametrize("start", [_start_search, _start_rank], ids=["search", "rank"])
def test_search_and_rank_warn_when_they_start(start, lasot_train_root, tiny_supernet, tmp_path):
    """build_search (what `asearch search` runs) and RankRun.start (the first thing `asearch rank` does) check the
    checkpoint's recorded data against the fitness's validation videos."""
    stored = torch.load(tiny_supernet, map_location="cpu", weights_only=True)
    stored["config"]["data"] = _data({"name": "lasot", "split": "train"})
    ckpt = tmp_path / "supernet_lasot.pt"
    torch.save(stored, ckpt)
    with pytest.warns(DataWarning, match="airplane-2, bird-1"):
        start(lasot_train_root, ckpt, tmp_path / "run")
    stored["config"]["data"] = _data({"name": "lasot", "split": "train", "options": {"held_out": "exclude"}})
    torch.save(stored, ckpt)
    with _no_overlap_warning():
        start(lasot_train_root, ckpt, tmp_path / "run_clean")
