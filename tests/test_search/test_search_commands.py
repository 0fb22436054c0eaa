"""`asearch search` (in-process backend) and `asearch export` end to end on the tiny supernet."""
import csv
import json

import pytest
import torch

from asearch.cli import main
from asearch.config import experiments_dir, load_config
from asearch.search.architecture import load_architecture, sha256_file
from asearch.search.evolution import SearchConfig


def test_search_yamls_load():
    paper = load_config(SearchConfig, experiments_dir() / "vlt_scar" / "search.yaml")
    assert (paper.evolution.population, paper.evolution.generations, paper.evolution.topk,
            paper.evolution.mutations, paper.evolution.crossovers, paper.evolution.mutation_prob) == \
        (50, 20, 10, 25, 25, 0.1)
    assert (paper.fitness.validation.videos, paper.fitness.validation.frames, paper.fitness.bn.batches) == (20, 11, 200)
    load_config(SearchConfig, experiments_dir() / "vlt_scar" / "tiny_search.yaml")


@pytest.fixture(scope="module")
def search_run(tmp_path_factory, tiny_supernet, synth_root):
    out = tmp_path_factory.mktemp("search_cli") / "run"
    args = ["search", "--config", str(experiments_dir() / "vlt_scar" / "tiny_search.yaml"),
            "--supernet", str(tiny_supernet), "--out", str(out), "--local", "--no-progress",
            "--set", f"fitness.validation.root={synth_root}", "--set", "fitness.validation.frames=5",
            "--set", "evolution.generations=2", "--set", "evolution.population=3", "--set", "evolution.topk=2",
            "--set", "evolution.mutations=1", "--set", "evolution.crossovers=1"]
    assert main(args) == 0
    return out, args


def test_search_outputs(search_run, tiny_supernet, capsys):
    out, args = search_run
    with open(out / "candidates.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and [r["generation"] for r in rows] == ["0"] * 3 + ["1"] * 3
    assert {"bn_seconds", "track_seconds", "prec"} <= set(rows[0])
    assert all(0.0 <= float(r["suc"]) <= 1.0 and int(r["flops"]) > 0 for r in rows)
    best = load_architecture(out / "best.json")
    assert best.validation.suc == max(float(r["suc"]) for r in rows)
    assert (best.validation.dataset, best.validation.split, best.validation.videos, best.validation.frames,
            best.validation.protocol, best.validation.bn_batches) == ("synthetic", "val", 2, 5, "lasot", 2)
    assert best.supernet_sha256 == sha256_file(tiny_supernet)
    assert best.space.width_mult == 0.25 and best.space.template_size == 63
    assert (out / "topk_gen1.json").is_file() and (out / "search_progress.png").is_file()
    # a finished search resumes to nothing; a fresh start in the same folder is refused
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert main(args) == 2
    assert "already holds a search" in capsys.readouterr().err


def test_export_from_search_with_weights(search_run, tiny_supernet, tmp_path):
    from supernets import load_subnet

    out, _ = search_run
    arch_path, weights = tmp_path / "arch.json", tmp_path / "subnet.pt"
    assert main(["export", "--search", str(out), "--supernet", str(tiny_supernet), "--out", str(arch_path),
                 "--weights", str(weights)]) == 0
    arch = load_architecture(arch_path)
    assert arch.to_dict() == load_architecture(out / "best.json").to_dict()
    subnet = load_subnet(weights)
    assert subnet.genome == arch.genome
    # the supernet's neck and head travel with the subnet (retrain.inherit: all)
    from supernets import load_subnet_file
    from trackers.registry import load_model

    _, (family, parts) = load_subnet_file(weights)
    supernet, _ = load_model(tiny_supernet)
    expected = {k: v for k, v in supernet.state_dict().items() if not k.startswith("backbone.")}
    assert family == "vlt_scar" and set(parts) == set(expected) and any(k.startswith("head.") for k in parts)
    assert all(torch.equal(parts[k], expected[k]) for k in parts)


def test_export_genome(tiny_supernet, tmp_path, capsys):
    genome = [[1] * 20, [2] * 20, [3, 3, 3, 3], [0, 1, 2, 3]]
    path = tmp_path / "g.json"
    assert main(["export", "--genome", json.dumps(genome), "--supernet", str(tiny_supernet), "--out", str(path)]) == 0
    arch = load_architecture(path)
    assert arch.genome.to_official() == genome and arch.validation is None and arch.flops > 0
    assert arch.flops == arch.space.cost(arch.genome)["flops"]
    capsys.readouterr()
    assert main(["export", "--genome", json.dumps(genome), "--out", str(path)]) == 2
    assert "--genome needs --supernet" in capsys.readouterr().err
    bad = [[1] * 20, [2] * 20, [3, 3, 3, 7], [0, 1, 2, 3]]
    assert main(["export", "--genome", json.dumps(bad), "--supernet", str(tiny_supernet), "--out", str(path)]) == 2
    assert "template_mixer[3]" in capsys.readouterr().err


def test_search_reevaluates_its_topk(tmp_path, tiny_supernet, synth_root, capsys):
    """final.reeval: the top 2 re-scored on other videos with 2 BN repeats; best.json is the re-evaluation's best
    and records both scores; a re-evaluation killed after one candidate resumes with the other one only."""
    out = tmp_path / "run"
    args = ["search", "--config", str(experiments_dir() / "vlt_scar" / "tiny_search.yaml"),
            "--supernet", str(tiny_supernet), "--out", str(out), "--local", "--no-progress",
            "--set", f"fitness.validation.root={synth_root}", "--set", "fitness.validation.frames=5",
            "--set", "evolution.generations=1", "--set", "evolution.population=3", "--set", "evolution.topk=3",
            "--set", "evolution.mutations=0", "--set", "evolution.crossovers=0",
            "--set", "final.reeval.topk=2", "--set", "final.reeval.repeats=2",
            "--set", f"final.reeval.validation={{root: {synth_root}, split: train, videos: 3, frames: 8}}"]
    assert main(args) == 0
    assert "re-evaluated the top 2" in capsys.readouterr().out
    data = json.loads((out / "reeval.json").read_text())
    assert data["protocol"]["split"] == "train" and data["protocol"]["repeats"] == 2
    results = data["results"]
    with open(out / "candidates.csv") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: -float(r["suc"]))
    assert [r["search_suc"] for r in results] == [float(r["suc"]) for r in rows[:2]]
    assert all(r["suc_std"] >= 0 for r in results)
    best = load_architecture(out / "best.json")
    chosen = max(results, key=lambda r: (r["suc"], -r["search_rank"]))
    assert best.genome.to_official() == chosen["genome"]
    assert best.reevaluation.suc == chosen["suc"] and best.reevaluation.repeats == 2
    assert best.reevaluation.videos == 3 and best.reevaluation.split == "train"
    assert best.validation.suc == chosen["search_suc"] and best.validation.split == "val"
    # kill after the first candidate: the second is scored again on --resume, the first is kept as it was
    data["results"] = results[:1]
    (out / "reeval.json").write_text(json.dumps(data))
    assert main(args + ["--resume"]) == 0
    again = json.loads((out / "reeval.json").read_text())["results"]
    assert again[0] == results[0] and again[1]["suc"] == results[1]["suc"]
    # a changed protocol does not mix with the stored scores
    assert main(args[:-1] + [f"final.reeval.validation={{root: {synth_root}, split: train, videos: 2, frames: 8}}",
                             "--resume"]) == 2
    assert "final.reeval.validation.videos" in capsys.readouterr().err
