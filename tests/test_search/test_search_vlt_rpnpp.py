"""VLT_RPN++ end to end through the CLI (issue 20): a tiny supernet is pretrained (`asearch pretrain`), searched
(`asearch search`, candidates scored in-process), exported (`asearch export`) and retrained (`asearch retrain`)."""
import csv
import json

import numpy as np
import pytest
import torch

from asearch.cli import main
from asearch.config import experiments_dir, load_config
from asearch.search.architecture import load_architecture, sha256_file
from asearch.search.evolution import SearchConfig


def _log(out_dir) -> list:
    """The rows of a run's train_log.csv."""
    with open(out_dir / "train_log.csv") as fh:
        return list(csv.DictReader(fh))


def test_vlt_rpnpp_search_yaml_is_vlt_scars():
    """experiments/vlt_rpnpp/search.yaml: VLT_SCAR's paper search settings (_base_), the same search space."""
    rpn = load_config(SearchConfig, experiments_dir() / "vlt_rpnpp" / "search.yaml")
    scar = load_config(SearchConfig, experiments_dir() / "vlt_scar" / "search.yaml")
    assert rpn == scar
    assert (rpn.evolution.population, rpn.evolution.generations, rpn.fitness.validation.videos,
            rpn.fitness.bn.batches) == (50, 20, 20, 200)


def test_tiny_vlt_rpnpp_pretrain_search_export_retrain(tmp_path, capsys):
    from asearch.data.synthetic import generate_benchmark
    from asearch.search.fitness import FitnessContext
    from trackers.inference.rpn import RPNTracker
    from trackers.models.rpn import VLTRPNPP
    from trackers.registry import load_model

    torch.set_num_threads(1)
    root = generate_benchmark(tmp_path / "synth", videos=8, frames=5, size=64, seed=0, distractors=0)
    cfg_dir = experiments_dir() / "vlt_rpnpp"
    train = ["--set", f"data.datasets.0.root={root}", "--set", "train.steps=3", "--set", "train.batch_size=2",
             "--set", "train.warmup_steps=0", "--set", "train.log_every=1", "--set", "train.checkpoint_every=0",
             "--set", "train.device=cpu", "--no-progress"]

    # 1. pretrain: a supernet checkpoint (no genome) that rebuilds a VLT_RPN++ model
    pre = tmp_path / "pre"
    assert main(["pretrain", "--config", str(cfg_dir / "tiny_supernet.yaml"), "--out", str(pre)] + train) == 0
    assert [int(r["step"]) for r in _log(pre)] == [1, 2, 3]
    supernet = pre / "checkpoints" / "latest.pt"
    model, cfg = load_model(supernet)
    assert isinstance(model, VLTRPNPP) and model.needs_genome and cfg.genome is None

    # 2. search: 1 generation of 3 candidates, 2 validation videos of 5 frames, in-process (--local)
    search = tmp_path / "search"
    assert main(["search", "--config", str(experiments_dir() / "vlt_scar" / "tiny_search.yaml"),
                 "--supernet", str(supernet), "--out", str(search), "--local", "--no-progress",
                 "--set", f"fitness.validation.root={root}", "--set", "fitness.validation.frames=5",
                 "--set", "evolution.generations=1", "--set", "evolution.population=3", "--set", "evolution.topk=2",
                 "--set", "evolution.mutations=0", "--set", "evolution.crossovers=0"]) == 0
    with open(search / "candidates.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and len({r["genome"] for r in rows}) == 3
    assert all(0.0 <= float(r["suc"]) <= 1.0 and int(r["flops"]) > 0 for r in rows)
    best = load_architecture(search / "best.json")
    assert best.validation.suc == max(float(r["suc"]) for r in rows)
    assert best.supernet_sha256 == sha256_file(supernet) and best.space.template_size == 63

    # the fitness tracks a VLT_RPN++ supernet with the RPN tracker, with the checkpoint's tracker section
    search_cfg = load_config(SearchConfig, experiments_dir() / "vlt_scar" / "tiny_search.yaml",
                             overrides=[f"fitness.validation.root={root}", "fitness.validation.frames=5"])
    ctx = FitnessContext(supernet, search_cfg.fitness, device="cpu")
    again = ctx.score(best.genome)
    assert isinstance(ctx._tracker, RPNTracker) and ctx.tracker_cfg.topk == 5
    assert again["suc"] == pytest.approx(best.validation.suc, abs=1e-6)

    # 3. export: the genome of best.json, with the weights the subnet inherits
    arch_path, weights = tmp_path / "arch.json", tmp_path / "subnet.pt"
    assert main(["export", "--search", str(search), "--supernet", str(supernet), "--out", str(arch_path),
                 "--weights", str(weights)]) == 0
    arch = load_architecture(arch_path)
    assert json.loads(arch_path.read_text())["genome"] == json.loads((search / "best.json").read_text())["genome"]
    assert arch.genome == best.genome

    # 4. retrain the exported architecture in tiny_retrain.yaml, from the inherited weights
    re = tmp_path / "re"
    capsys.readouterr()
    assert main(["retrain", "--config", str(cfg_dir / "tiny_retrain.yaml"), "--arch", str(arch_path),
                 "--weights", str(weights), "--out", str(re)] + train) == 0
    log = _log(re)
    assert [int(r["step"]) for r in log] == [1, 2, 3] and np.all(np.isfinite([float(r["loss"]) for r in log]))
    assert "inherited vlt_rpnpp head weights (--weights)" in capsys.readouterr().err
    fixed, fixed_cfg = load_model(re / "checkpoints" / "latest.pt")
    assert isinstance(fixed, VLTRPNPP) and not fixed.needs_genome
    assert [list(g) for g in fixed_cfg.genome] == arch.genome.to_official()
