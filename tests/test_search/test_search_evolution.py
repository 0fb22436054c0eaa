"""Evolution engine: determinism, SPOS operators, dedup, cost limits, random mode, outputs, resume."""
import csv
import itertools
import json

import pytest

from asearch.errors import ConfigError
from asearch.search.architecture import load_architecture
from asearch.search.evolution import EvolutionConfig, EvolutionSearch, SearchError, run_local, select_topk
from asearch.search.state import CandidateRecord, Journal, load_state
from search_spaces import build_space


def gene_fitness(genome):
    """A cheap deterministic fitness: share of genes equal to 3 (so evolution has something to climb)."""
    return {"suc": sum(v == 3 for v in genome.genes) / len(genome.genes)}


def small_cfg(**kw):
    base = dict(population=8, generations=3, topk=3, mutations=3, crossovers=3)
    base.update(kw)
    return EvolutionConfig(**base)


def run(tmp_path, name, space=None, cfg=None, seed=0, fitness=gene_fitness, resume=False, plot=False):
    engine = EvolutionSearch(space or build_space("vlt"), cfg or small_cfg(), tmp_path / name, seed=seed,
                             progress=False, plot=plot).start(resume=resume)
    return run_local(engine, fitness)


def rows(path, drop=("seconds",)):
    with open(path) as fh:
        return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(fh)]


def test_same_seed_same_search(tmp_path):
    a = run(tmp_path, "a", seed=5)
    b = run(tmp_path, "b", seed=5)
    c = run(tmp_path, "c", seed=6)
    assert rows(tmp_path / "a/candidates.csv") == rows(tmp_path / "b/candidates.csv")
    assert rows(tmp_path / "a/candidates.csv") != rows(tmp_path / "c/candidates.csv")
    recs = a.state.records
    assert len(recs) == 24 and [r.generation for r in recs] == [0] * 8 + [1] * 8 + [2] * 8
    # generation 0 is random; later ones: 3 mutations, 3 crossovers, 2 random (SPOS order)
    assert [r.origin for r in recs if r.generation == 0] == ["random"] * 8
    assert [r.origin for r in recs if r.generation == 1] == ["mutation"] * 3 + ["crossover"] * 3 + ["random"] * 2
    assert b.best().suc == max(r.suc for r in recs)


def test_outputs(tmp_path):
    engine = run(tmp_path, "o", seed=1, plot=True)
    out = tmp_path / "o"
    header = open(out / "candidates.csv").readline().strip().split(",")
    assert header == ["generation", "index", "origin", "mode", "suc", "flops", "params", "seconds", "genome"]
    for g in range(3):
        top = json.loads((out / f"topk_gen{g}.json").read_text())
        assert top["generation"] == g and len(top["topk"]) == 3
        sucs = [t["suc"] for t in top["topk"]]
        assert sucs == sorted(sucs, reverse=True)
    assert (out / "search_progress.png").read_bytes()[:4] == b"\x89PNG"
    best = load_architecture(out / "best.json")
    assert best.genome == engine.best().genome and best.seed == 1
    assert best.flops == build_space("vlt").cost(best.genome)["flops"]
    assert load_state(out).done


def test_mutation_touches_search_mixer_genes(tmp_path):
    # mutation only (no crossover), every gene redrawn: children must differ from parents in the search mixers too
    cfg = small_cfg(population=12, generations=2, topk=2, mutations=12, crossovers=0, mutation_prob=1.0)
    engine = run(tmp_path, "m", cfg=cfg)
    parents = [r.genome for r in select_topk([r for r in engine.state.records if r.generation == 0], 2)]
    children = [r.genome for r in engine.state.records if r.generation == 1 and r.origin == "mutation"]
    assert len(children) == 12
    assert any(all(c.search_mixer != p.search_mixer for p in parents) for c in children)
    assert any(all(c.template_mixer != p.template_mixer for p in parents) for c in children)


def test_mutation_probability_zero_gives_no_mutants(tmp_path):
    # every mutant equals its parent (already scored) -> rejected; the generation is filled with random genomes
    cfg = small_cfg(mutation_prob=0.0, crossovers=0)
    engine = run(tmp_path, "z", cfg=cfg)
    assert [r.origin for r in engine.state.records if r.generation == 1] == ["random"] * 8


def test_crossover_genes_come_from_two_topk_parents(tmp_path):
    cfg = small_cfg(population=10, generations=2, topk=3, mutations=0, crossovers=10)
    engine = run(tmp_path, "x", cfg=cfg)
    parents = [r.genome for r in select_topk([r for r in engine.state.records if r.generation == 0], 3)]
    children = [r.genome for r in engine.state.records if r.generation == 1 and r.origin == "crossover"]
    assert children
    for child in children:
        assert any(all(c in (a, b) for c, a, b in zip(child.genes, p1.genes, p2.genes))
                   for p1, p2 in itertools.combinations(parents, 2))


def test_no_duplicates_in_a_tiny_space(tmp_path):
    # 4 mixer genes only (2 stages, ost): 256 genomes; 6 generations x 30 would repeat without dedup
    space = build_space("vlt_ost", stage_repeats=(2, 2), stage_channels=(8, 16))
    assert space.num_genes == 4
    cfg = EvolutionConfig(population=30, generations=6, topk=5, mutations=10, crossovers=10)
    engine = run(tmp_path, "d", space=space, cfg=cfg)
    genomes = [r.genome for r in engine.state.records]
    assert len(genomes) == len(set(genomes)) >= 150


def test_space_exhausted_ends_early(tmp_path):
    space = build_space("vlt_ost", stage_repeats=(2,), stage_channels=(8,))  # 2 genes: 16 genomes
    cfg = EvolutionConfig(population=10, generations=5, topk=2, mutations=2, crossovers=2)
    engine = run(tmp_path, "e", space=space, cfg=cfg)
    assert engine.done and len({r.genome for r in engine.state.records}) == 16


def test_cost_limits(tmp_path):
    space = build_space("vlt")
    costs = sorted(space.cost(space.random(i))["flops"] for i in range(40))
    limit = costs[len(costs) // 2]
    params_limit = sorted(space.cost(space.random(i))["params"] for i in range(40))[30]
    engine = run(tmp_path, "l", cfg=small_cfg(max_flops=limit, max_params=params_limit))
    assert len(engine.state.records) == 24
    for r in engine.state.records:
        assert r.flops <= limit and r.params <= params_limit
        assert r.flops == space.cost(r.genome)["flops"]
    with pytest.raises(SearchError, match="first generation is empty"):
        run(tmp_path, "l2", cfg=small_cfg(max_flops=1))


def test_random_mode(tmp_path):
    engine = run(tmp_path, "r", cfg=small_cfg(mode="random"))
    assert {r.origin for r in engine.state.records} == {"random"}
    assert {r.mode for r in engine.state.records} == {"random"}
    assert len(engine.state.records) == 24


def test_config_validation():
    with pytest.raises(ConfigError, match="evolution.mode"):
        EvolutionConfig(mode="bayes")
    with pytest.raises(ConfigError, match="exceeds evolution.population"):
        EvolutionConfig(population=10, mutations=6, crossovers=6)
    with pytest.raises(ConfigError, match="mutation_prob"):
        EvolutionConfig(mutation_prob=1.5)


class Interrupt(Exception):
    pass


def test_resume_equivalence_scores_nothing_twice(tmp_path):
    cfg = small_cfg(generations=4)
    full = run(tmp_path, "full", cfg=cfg, seed=3)

    calls = []

    def killed(genome):  # dies in generation 2, after 3 of its candidates were scored
        if len(calls) == 8 * 2 + 3:
            raise Interrupt()
        calls.append(genome)
        return gene_fitness(genome)

    with pytest.raises(Interrupt):
        run(tmp_path, "part", cfg=cfg, seed=3, fitness=killed)
    state = load_state(tmp_path / "part")
    assert state.generation == 2 and len(state.records) == 16 and not state.done
    assert len(Journal(tmp_path / "part").read()) == 19

    resumed_calls = []

    def counting(genome):
        resumed_calls.append(genome)
        return gene_fitness(genome)

    run(tmp_path, "part", cfg=cfg, seed=3, fitness=counting, resume=True)
    assert len(resumed_calls) == 32 - 19  # nothing scored twice
    assert not set(resumed_calls) & set(calls)
    assert rows(tmp_path / "full/candidates.csv") == rows(tmp_path / "part/candidates.csv")
    assert json.loads((tmp_path / "full/topk_gen3.json").read_text()) == \
        json.loads((tmp_path / "part/topk_gen3.json").read_text())
    # a finished search resumes to nothing
    again = run(tmp_path, "part", cfg=cfg, seed=3, fitness=counting, resume=True)
    assert again.done and len(resumed_calls) == 13


def test_resume_refuses_changes_and_fresh_start_refuses_existing(tmp_path):
    run(tmp_path, "a", cfg=small_cfg(generations=1))
    with pytest.raises(ConfigError, match="config key 'evolution.population' differs"):
        run(tmp_path, "a", cfg=small_cfg(generations=1, population=9), resume=True)
    with pytest.raises(SearchError, match="already holds a search"):
        run(tmp_path, "a", cfg=small_cfg(generations=1))
    with pytest.raises(SearchError, match="no search state"):
        run(tmp_path, "nothing", resume=True)


def test_torn_journal_line_is_ignored(tmp_path):
    j = Journal(tmp_path)
    from search_spaces import Genome

    g = Genome.from_flat([0] * 48)
    j.append(CandidateRecord(g, 0, 0, "random", "evolution", 0.5, 1, 2, 0.1))
    with open(j.path, "a") as fh:
        fh.write('{"genome": [[0')
    assert len(j.read()) == 1 and j.read()[0].suc == 0.5


def test_plain_progress_line_per_candidate(tmp_path, capsys):
    """Without a progress bar (``--no-progress``, or stdout not a terminal) every scored candidate prints one line
    (issue 19: quiet long runs); its count runs to generations x population."""
    run(tmp_path, "plain", seed=2)
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("search (evolution) candidate")]
    assert len(lines) == 24
    assert lines[0].startswith("search (evolution) candidate 1/24 generation 0 SUC ")
    assert lines[-1].startswith("search (evolution) candidate 24/24 generation 2 SUC ")
