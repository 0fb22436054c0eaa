"""Every training run logs what each part was initialised from; null pretrained paths warn (trackers.init_report)."""
import logging

import pytest
import torch

from asearch.config import experiments_dir
from asearch.training.recipes import build_experiment, load_experiment
from trackers.init_report import collect_init, init_lines, note_init, null_pretrained_warnings
from trackers.registry import get_entry, model_config

TINY_SUPERNET = experiments_dir() / "vlt_scar" / "tiny_supernet.yaml"
TINY_SIAMCAR = experiments_dir() / "siamcar" / "tiny.yaml"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from asearch.data.synthetic import generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("synth"), videos=2, frames=8, size=96, seed=4, distractors=0)


def _small(bench):
    return [f"data.datasets.0.root={bench}", "train.device=cpu", "train.steps=1", "train.warmup_steps=0",
            "train.batch_size=2"]


def test_lines_name_the_file_or_random_init():
    model = torch.nn.Sequential()
    model.add_module("backbone", torch.nn.Linear(2, 2))
    model.add_module("head", torch.nn.Linear(2, 1))
    note_init(model.backbone, "ignored outside collect_init", "x.pt", 2)
    with collect_init() as notes:
        note_init(model.backbone, "ImageNet weights", "r50.pth", 2)
        note_init(torch.nn.Linear(1, 1), "a module not in the model", "y.pt", 1)
    assert init_lines(model, notes) == ["backbone: ImageNet weights r50.pth (2 tensors) [2 tensors in the part]",
                                        "head: random init (2 tensors)"]


@pytest.mark.parametrize("name, key, paper", [("vlt_scar", "spos_checkpoint", "SPOS ImageNet supernet"),
                                              ("siamcar", "resnet.pretrained", "ImageNet ResNet-50"),
                                              ("vlt_ost", "vit.pretrained", "MAE ViT-B")])
def test_null_paths_name_the_key_and_the_paper_file(name, key, paper):
    cfg = model_config({"name": name})
    (text,) = null_pretrained_warnings(cfg, get_entry(name).pretrained, source="paper.yaml")
    assert f"model.{key} is null" in text and "RANDOM INIT" in text and paper in text
    if name == "vlt_scar":  # the retrained subnet inherits the supernet's weights instead
        assert null_pretrained_warnings(cfg, get_entry(name).pretrained, inherited=True) == []


def test_pretrain_logs_its_initialisation(bench, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="asearch.training"):
        exp = build_experiment(load_experiment(TINY_SUPERNET, _small(bench)), "pretrain", out_dir=tmp_path / "a",
                               progress=False)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("model.spos_checkpoint is null" in t and "SPOS ImageNet supernet" in t for t in warned)
    (info,) = [r.getMessage() for r in caplog.records if "initialisation" in r.getMessage()]
    assert "backbone: random init" in info and "neck: random init" in info and "head: random init" in info
    assert any(t.startswith("backbone: random init") for t in exp.info["init"])


def test_pretrained_file_is_reported_with_its_key_count(tmp_path, caplog):
    from trackers.backbones.resnet import resnet50

    net = resnet50(0.25)  # a narrowed ResNet: its own state dict stands in for the ImageNet file
    path = tmp_path / "r50.pth"
    torch.save(net.state_dict(), path)
    cfg = model_config(dict(load_experiment(TINY_SIAMCAR).model, resnet={"width_mult": 0.25,
                                                                          "pretrained": str(path)}))
    from trackers.registry import build_model

    with collect_init() as notes:
        model = build_model(cfg)
    lines = dict(line.split(": ", 1) for line in init_lines(model, notes))
    assert lines["backbone"].startswith(f"ImageNet ResNet-50 weights {path} ({len(net.state_dict())} tensors)")
    assert lines["neck"].startswith("random init") and lines["head"].startswith("random init")
    assert null_pretrained_warnings(cfg, get_entry("siamcar").pretrained) == []


def test_cli_prints_log_records_and_warnings_on_one_line(capsys):
    import warnings

    from asearch.cli import configure_console

    configure_console()
    configure_console()  # once per process, however often called
    logging.getLogger("asearch.training").warning("careful")
    logging.getLogger("asearch.training").info("hello")
    err = capsys.readouterr().err
    assert "asearch: warning: careful\n" in err and "asearch: hello\n" in err and err.count("careful") == 1
    assert warnings.formatwarning("msg", UserWarning, "f.py", 3, "source()") == "asearch: warning: msg\n"
