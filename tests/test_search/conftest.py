"""A tiny VLT_SCAR supernet checkpoint (width 0.25, crops 63/127, no language) and a tiny synthetic benchmark."""
import pytest
import torch

from asearch.config import experiments_dir, load_yaml


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """6 synthetic videos of 8 frames at 64 px (splits 0.6/0.2/0.2: 3 train, 1-2 val)."""
    from asearch.data.synthetic import generate_benchmark

    root = tmp_path_factory.mktemp("search_synth") / "synth"
    generate_benchmark(root, videos=8, frames=8, size=64, seed=0, distractors=1)
    return root


@pytest.fixture(scope="session")
def tiny_supernet(tmp_path_factory, synth_root):
    """Path of a trainer-style checkpoint: model weights, full config (model, tracker, language, data), build_info."""
    from trackers.registry import build_info, build_model

    tiny = load_yaml(experiments_dir() / "vlt_scar" / "tiny.yaml")
    torch.manual_seed(0)
    model = build_model(tiny["model"], pretrained=False)
    config = {"model": tiny["model"], "tracker": tiny["tracker"], "language": {"enabled": False},
              "data": {"datasets": [{"name": "synthetic", "root": str(synth_root), "split": "train"}]}}
    path = tmp_path_factory.mktemp("search_ckpt") / "supernet.pt"
    torch.save({"model": model.state_dict(), "config": config, "build_info": build_info(tiny["model"])}, path)
    return path
