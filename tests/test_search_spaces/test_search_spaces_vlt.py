"""The VLT search space: nni declaration, validation errors, conversions, sampling, evolution operators, variants."""
import nni.mutable as nm
import numpy as np
import pytest

from asearch.errors import ArchitectureError, ConfigError
from search_spaces import Genome, VLTSpace, build_space, space_names


@pytest.fixture(scope="module")
def space():
    return build_space("vlt")


@pytest.fixture(scope="module")
def sym():
    return build_space("vlt_symmetric")


@pytest.fixture(scope="module")
def ost():
    return build_space("vlt_ost")


def all_same(v, n_backbone=20):
    return Genome((v,) * n_backbone, (v,) * n_backbone, (v,) * 4, (v,) * 4)


def test_registry_names_and_defaults(space, ost):
    assert space_names() == ["vlt", "vlt_ost", "vlt_symmetric"]
    assert (space.name, space.variant, space.template_size, space.search_size) == ("vlt", "asymmetric", 127, 255)
    assert (ost.name, ost.template_size, ost.search_size) == ("vlt_ost", 128, 256)
    assert space.stage_repeats == (4, 4, 8, 4) and space.stage_channels == (64, 160, 320, 640)


def test_declared_with_nni_categoricals(space):
    assert isinstance(space.mutable, nm.MutableDict)
    assert space.num_genes == 48 and len(space.labels) == 48
    for label, cat in space.mutable.items():
        assert isinstance(cat, nm.Categorical) and cat.label == label and list(cat.values) == [0, 1, 2, 3]
    labels = space.labels
    assert labels[0] == "template.s1.b0" and labels[19] == "template.s4.b3"
    assert labels[20] == "search.s1.b0" and labels[35] == "search.s3.b7"
    assert labels[40:44] == ["mixer.template.s1", "mixer.template.s2", "mixer.template.s3", "mixer.template.s4"]
    assert labels[-1] == "mixer.search.s4"


def test_nni_sample_is_accepted(space):
    sample = space.mutable.random(random_state=np.random.RandomState(0))
    genome = space.from_sample(sample)
    assert space.to_sample(genome) == sample


def test_bad_value_is_named(space):
    sample = space.to_sample(all_same(1))
    sample["search.s3.b5"] = 7
    with pytest.raises(ArchitectureError, match=r"search\.s3\.b5.*7"):
        space.validate(sample)
    sample["search.s3.b5"] = True
    with pytest.raises(ArchitectureError, match=r"search\.s3\.b5.*True"):
        space.validate(sample)
    sample["search.s3.b5"] = "2"
    with pytest.raises(ArchitectureError, match=r"search\.s3\.b5"):
        space.validate(sample)


def test_missing_and_unknown_labels_are_named(space):
    sample = space.to_sample(all_same(0))
    del sample["mixer.template.s2"]
    with pytest.raises(ArchitectureError, match=r"mixer\.template\.s2.*missing"):
        space.validate(sample)
    sample = space.to_sample(all_same(0))
    sample["template.s5.b0"] = 1
    with pytest.raises(ArchitectureError, match=r"template\.s5\.b0"):
        space.validate(sample)


def test_bad_genome_lengths_are_named(space):
    with pytest.raises(ArchitectureError, match="'template'.*19"):
        space.validate(Genome((0,) * 19, (0,) * 20, (0,) * 4, (0,) * 4))
    with pytest.raises(ArchitectureError, match="search_mixer"):
        space.from_official([[0] * 20, [0] * 20, [0] * 4, [0] * 3])
    with pytest.raises(ArchitectureError, match="4 lists"):
        space.from_official([[0] * 20, [0] * 20])
    with pytest.raises(ArchitectureError, match=r"mixer\.search\.s4.*9"):
        space.from_official([[0] * 20, [0] * 20, [0] * 4, [0, 0, 0, 9]])


def test_conversions_round_trip(space):
    g = space.random(11)
    official = space.to_official(g)
    assert [len(x) for x in official] == [20, 20, 4, 4]
    assert space.from_official(official) == g
    assert space.validate(official) == g
    sample = space.to_sample(g)
    assert sample["template.s2.b1"] == g.template[5] and sample["mixer.search.s3"] == g.search_mixer[2]
    assert space.from_sample(sample) == g
    assert space.validate({k: np.int64(v) for k, v in sample.items()}) == g
    assert Genome.from_json(g.to_json()) == g


def test_random_is_deterministic(space):
    assert space.random(3) == space.random(3)
    assert space.random(3) != space.random(4)
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    seq_a = [space.random(a) for _ in range(3)]
    seq_b = [space.random(b) for _ in range(3)]
    assert seq_a == seq_b and len(set(seq_a)) == 3
    values = {v for i in range(10) for v in space.random(i).genes}
    assert values == {0, 1, 2, 3}


def test_fair_paths_take_every_choice_once(space, sym, ost):
    for sp in (space, sym, ost):
        paths = sp.fair_paths(7)
        assert len(paths) == 4 and paths == sp.fair_paths(7) and paths != sp.fair_paths(8)
        samples = [sp.to_sample(g) for g in paths]
        for label in sp.labels:
            assert sorted(s[label] for s in samples) == [0, 1, 2, 3], label
    assert all(g.search == g.template for g in sym.fair_paths(1))  # the symmetric space still mirrors


def test_mutate_and_crossover(space):
    g = space.random(1)
    assert space.mutate(g, 0.0, 7) == g
    assert space.mutate(g, 1.0, 7) == space.mutate(g, 1.0, 7)
    assert space.mutate(g, 1.0, 7) != g
    with pytest.raises(ValueError, match="probability"):
        space.mutate(g, 1.5, 0)
    a, b = all_same(0), all_same(3)
    child = space.crossover(a, b, 2)
    assert set(child.genes) == {0, 3}
    assert child == space.crossover(a, b, 2)
    assert space.crossover(g, g, 9) == g


def test_symmetric_mirrors(sym):
    assert sym.num_genes == 28 and sym.genome_length == 48
    assert not any(lb.startswith("search.") for lb in sym.labels)
    g = sym.random(0)
    assert g.search == g.template and len(g) == 48
    assert len(sym.to_sample(g)) == 28
    assert sym.from_sample(sym.to_sample(g)) == g
    official = sym.to_official(g)
    assert official[1] == official[0]
    bad = [list(official[0]), list(official[0]), official[2], official[3]]
    bad[1][0] = (bad[0][0] + 1) % 4
    with pytest.raises(ArchitectureError, match=r"search\.s1\.b0.*template\.s1\.b0"):
        sym.from_official(bad)
    m = sym.mutate(g, 0.5, 3)
    assert m.search == m.template
    c = sym.crossover(g, sym.random(1), 4)
    assert c.search == c.template


def test_ost_has_mixers_only(ost):
    assert ost.num_genes == 8
    assert ost.labels == ["mixer.template.s1", "mixer.template.s2", "mixer.template.s3", "mixer.template.s4",
                          "mixer.search.s1", "mixer.search.s2", "mixer.search.s3", "mixer.search.s4"]
    g = ost.random(0)
    assert g.template == () and g.search == () and len(g) == 8
    assert ost.to_official(g)[:2] == [[], []]
    assert ost.from_official([[], [], [0, 1, 2, 3], [3, 2, 1, 0]]).search_mixer == (3, 2, 1, 0)
    with pytest.raises(ArchitectureError, match="'template'.*needs 0"):
        ost.from_official([[0] * 20, [0] * 20, [0] * 4, [0] * 4])


def test_space_dict_round_trip_and_errors(space, ost):
    d = space.to_dict()
    assert d["name"] == "vlt" and d["stage_repeats"] == [4, 4, 8, 4] and d["version"] == "1.0"
    assert VLTSpace.from_dict(d) == space
    assert VLTSpace.from_dict(ost.to_dict()) == ost
    with pytest.raises(ArchitectureError, match="unknown config key 'depth'"):
        VLTSpace.from_dict(dict(d, depth=3))
    with pytest.raises(ArchitectureError, match="version 1.0, got .0.1."):
        VLTSpace.from_dict(dict(d, version="0.1"))


def test_build_space_errors():
    with pytest.raises(ConfigError, match="unknown search space 'vlt2'"):
        build_space("vlt2")
    with pytest.raises(ConfigError, match="unknown field 'widht_mult'"):
        build_space("vlt", widht_mult=0.5)
    with pytest.raises(ConfigError, match="'variant'"):
        VLTSpace(variant="siamese")
    with pytest.raises(ConfigError, match="'stage_repeats'"):
        build_space("vlt", stage_repeats=(1, 4, 8, 4))
    small = build_space("vlt", stage_repeats=[2, 2, 3, 2], width_mult=0.5)
    assert small.num_genes == 2 * 9 + 8 and small.stage_repeats == (2, 2, 3, 2)
