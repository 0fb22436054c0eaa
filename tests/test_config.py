"""Strict typed configs: defaults, YAML, _base_, overrides, unknown keys."""
from dataclasses import dataclass, field
from typing import List, Optional

import pytest

from asearch.config import apply_overrides, dataset_root, from_dict, load_config, to_dict
from asearch.errors import ConfigError


@dataclass
class Optim:
    lr: float = 0.1
    steps: int = 10


@dataclass
class Cfg:
    name: str = "x"
    optim: Optim = field(default_factory=Optim)
    sizes: List[int] = field(default_factory=lambda: [127, 255])
    root: Optional[str] = None
    amp: bool = False


def test_defaults_yaml_base_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("optim:\n  lr: 0.5\n  steps: 3\nname: base\n")
    (tmp_path / "top.yaml").write_text("_base_: base.yaml\noptim:\n  steps: 7\n")
    cfg = load_config(Cfg, tmp_path / "top.yaml", ["amp=true", "sizes=[64,128]", "optim.lr=2e-3"])
    assert cfg.name == "base" and cfg.optim.steps == 7 and cfg.optim.lr == pytest.approx(2e-3)
    assert cfg.amp is True and cfg.sizes == [64, 128] and cfg.root is None
    assert to_dict(cfg)["optim"] == {"lr": 0.002, "steps": 7}


def test_unknown_key_is_named(tmp_path):
    (tmp_path / "bad.yaml").write_text("optim:\n  lrr: 0.5\n")
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load_config(Cfg, tmp_path / "bad.yaml")


def test_bad_type_is_named():
    with pytest.raises(ConfigError, match=r"optim\.steps"):
        from_dict(Cfg, {"optim": {"steps": "many"}})
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}


def test_dataset_root_message(monkeypatch, tmp_path):
    monkeypatch.delenv("ASEARCH_LASOT_ROOT", raising=False)
    with pytest.raises(ConfigError, match="ASEARCH_LASOT_ROOT"):
        dataset_root("lasot", None, layout="<root>/<class>/<video>/img/")
    monkeypatch.setenv("ASEARCH_LASOT_ROOT", str(tmp_path))
    assert dataset_root("lasot") == tmp_path
