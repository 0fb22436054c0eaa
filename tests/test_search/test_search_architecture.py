"""Architecture JSON: round trip, every field validated with a message naming it, official CAND inputs."""
import copy
import json

import pytest
import yaml

import asearch
from asearch.errors import ArchitectureError
from asearch.search.architecture import (Architecture, ValidationRecord, architecture_from_dict, load_architecture,
                                         load_genome, save_architecture, sha256_file)
from search_spaces import Genome, build_space

SHA = "ab" * 32


def _arch(space_name="vlt", seed=3):
    space = build_space(space_name)
    arch = Architecture(genome=space.random(seed), space=space, supernet_sha256=SHA, seed=7,
                        validation=ValidationRecord(suc=0.4321, protocol="lasot", dataset="synthetic", split="val",
                                                    videos=20, frames=11, bn_batches=200, select="spread",
                                                    videos_sha256="cd" * 32, bn_batch_size=16, bn_seed=5))
    return arch.with_cost()


@pytest.mark.parametrize("space_name", ["vlt", "vlt_symmetric", "vlt_ost"])
def test_round_trip(tmp_path, space_name):
    arch = _arch(space_name)
    path = save_architecture(arch, tmp_path / "arch.json")
    back = asearch.load_architecture(path)  # the stable entry point forwards here
    assert back.genome == arch.genome
    assert back.to_dict() == arch.to_dict()
    data = json.loads(path.read_text())
    assert data["format_version"] == 1 and data["space"]["name"] == space_name
    assert data["genome"]["official"] == arch.genome.to_official()
    assert data["input_sizes"] == {"template": arch.space.template_size, "search": arch.space.search_size}
    assert data["flops"] == arch.space.cost(arch.genome)["flops"] > 0
    assert data["validation"]["suc"] == pytest.approx(0.4321)
    assert {k: data["validation"][k] for k in ("select", "videos_sha256", "bn_batch_size", "bn_seed")} == {
        "select": "spread", "videos_sha256": "cd" * 32, "bn_batch_size": 16, "bn_seed": 5}
    if space_name == "vlt":
        assert len(data["genome"]["labels"]) == 48 and data["genome"]["labels"]["mixer.search.s4"] in range(4)


def test_record_of_an_earlier_version_without_the_protocol_extras_loads(tmp_path):
    doc = _doc()
    for key in ("select", "videos_sha256", "bn_batch_size", "bn_seed"):
        del doc["validation"][key]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    back = load_architecture(tmp_path / "old.json").validation
    assert back.select is None and back.videos_sha256 is None and back.bn_seed is None and back.bn_batches == 200


def test_full_video_frames_and_null_validation(tmp_path):
    arch = _arch()
    arch.validation.frames = None
    back = load_architecture(save_architecture(arch, tmp_path / "a.json"))
    assert back.validation.frames is None
    arch.validation = None
    arch.supernet_sha256 = None
    assert load_architecture(save_architecture(arch, tmp_path / "b.json")).validation is None


def _doc():
    return _arch().to_dict()


def _set(path, value):
    def edit(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


_DELETE = object()

BAD = [
    (_set(["format"], "other"), "format: must be 'asearch-architecture'"),
    (_set(["format_version"], 0), "format_version: must be a positive integer"),
    (_set(["format_version"], 99), "format_version: 99 is newer"),
    (_set(["surprise"], 1), "surprise: unknown field"),
    (_set(["space", "name"], "resnet"), "space.name: unknown search space 'resnet'"),
    (_set(["space", "version"], 1), "space.version: must be a version string"),
    (_set(["space", "version"], "9.9"), "space.version: '9.9' is not the version"),
    (_set(["space", "config", "variant"], "wide"), "space.config.variant: 'wide' is not one of"),
    (_set(["space", "config", "width_mult"], -1.0), "width_mult"),
    (_set(["genome", "labels", "search.s3.b7"], 5), "genome.labels['search.s3.b7']: value 5 not in 0..3"),
    (_set(["genome", "labels", "mixer.search.s2"], "1"), "genome.labels['mixer.search.s2']: value '1' not in 0..3"),
    (_set(["genome", "labels", "template.s1.b0"], _DELETE), "genome.labels['template.s1.b0']: missing"),
    (_set(["genome", "labels", "template.s9.b0"], 1), "genome.labels['template.s9.b0']: not a label"),
    (_set(["genome", "official"], [[0] * 20, [0] * 20, [0] * 4]), "genome.official: "),
    (_set(["genome", "official"], _DELETE), "genome.official: missing"),
    (_set(["genome", "extra"], 1), "genome.extra: unknown field"),
    (_set(["input_sizes", "template"], "127"), "input_sizes.template: must be a positive integer"),
    (_set(["input_sizes", "search"], 256), "input_sizes.search: 256 disagrees with space.config.search_size"),
    (_set(["flops"], -5), "flops: must be a non-negative integer"),
    (_set(["flops"], 1.5), "flops: must be a non-negative integer"),
    (_set(["params"], None), "params: must be a non-negative integer"),
    # the space's exact cost is checked on load
    (lambda d: d.update(flops=d["flops"] + 1), "disagrees with the exact flops of this genome in space 'vlt'"),
    (lambda d: d.update(params=d["params"] - 1), "disagrees with the exact params of this genome"),
    (_set(["validation", "suc"], 43.2), "validation.suc: must be a number in [0, 1]"),
    (_set(["validation", "protocol"], ""), "validation.protocol: must be a non-empty string"),
    (_set(["validation", "dataset"], 3), "validation.dataset: must be a non-empty string"),
    (_set(["validation", "split"], _DELETE), "validation.split: missing"),
    (_set(["validation", "videos"], 0), "validation.videos: must be at least 1"),
    (_set(["validation", "frames"], 1), "validation.frames: must be at least 2"),
    (_set(["validation", "bn_batches"], -1), "validation.bn_batches: must be a non-negative integer"),
    (_set(["validation", "speed"], 1), "validation.speed: unknown field"),
    (_set(["validation", "videos_sha256"], "xyz"), "validation.videos_sha256: must be 64 lowercase hex digits"),
    (_set(["validation", "bn_batch_size"], 0), "validation.bn_batch_size: must be at least 1"),
    (_set(["validation", "bn_seed"], -2), "validation.bn_seed: must be a non-negative integer"),
    (_set(["validation"], _DELETE), "validation: missing"),
    (_set(["supernet_sha256"], "xyz"), "supernet_sha256: must be 64 lowercase hex digits"),
    (_set(["seed"], -1), "seed: must be a non-negative integer"),
    (_set(["toolkit_version"], None), "toolkit_version: must be a non-empty string"),
]


@pytest.mark.parametrize("edit,message", BAD)
def test_bad_field_is_named(tmp_path, edit, message):
    doc = _doc()
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ArchitectureError) as info:
        load_architecture(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_official_disagreeing_with_labels():
    doc = _doc()
    doc["genome"]["official"][3][0] = (doc["genome"]["official"][3][0] + 1) % 4
    with pytest.raises(ArchitectureError, match=r"genome.official: disagrees with genome.labels in part 'search_mixer'"):
        architecture_from_dict(doc, "x.json")


def test_symmetric_space_mirror_checked():
    space = build_space("vlt_symmetric")
    doc = Architecture(genome=space.random(1), space=space).with_cost().to_dict()
    doc["genome"]["official"][1][0] = (doc["genome"]["official"][1][0] + 1) % 4
    with pytest.raises(ArchitectureError, match="genome.official"):
        architecture_from_dict(doc, "sym.json")


def test_not_json_and_missing_file(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        load_architecture(tmp_path / "a.json")
    with pytest.raises(ArchitectureError, match="not found"):
        load_architecture(tmp_path / "missing.json")


OFFICIAL = [[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3],
            [3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 2, 3, 0],
            [1, 2, 3, 0], [2, 2, 1, 1]]


def test_official_cand_yaml(tmp_path):
    path = tmp_path / "vlt_scar.yaml"
    path.write_text(yaml.safe_dump({"MODEL": {"NAME": "VLT_SCAR", "BACKBONE": {"CAND": OFFICIAL}}}))
    arch = load_architecture(path)
    assert arch.genome.to_official() == OFFICIAL
    assert arch.space.name == "vlt" and arch.flops is None and arch.validation is None
    assert arch.labels()["search.s1.b0"] == 3 and arch.labels()["mixer.search.s4"] == 1


def test_official_bare_lists_flat_and_ost(tmp_path):
    (tmp_path / "cand.json").write_text(json.dumps(OFFICIAL))
    assert load_architecture(tmp_path / "cand.json").genome.to_official() == OFFICIAL
    flat = [v for part in OFFICIAL for v in part]
    (tmp_path / "flat.json").write_text(json.dumps(flat))
    assert load_architecture(tmp_path / "flat.json").genome == Genome.from_official(OFFICIAL)
    assert load_genome(json.dumps(OFFICIAL)) == Genome.from_official(OFFICIAL)
    ost = load_genome("[[], [], [1, 2, 3, 0], [0, 0, 1, 1]]")
    assert ost.template == () and ost.search_mixer == (0, 0, 1, 1)


def test_released_architectures_by_name():
    """``official:vlt_scar`` / ``official:vlt_tt`` are the genomes of the released VLT configs (CAND of
    experiments/VLT_SCAR.yaml and VLT_TT.yaml); an unknown name lists the known ones."""
    scar = [[2, 2, 2, 0, 3, 1, 3, 3, 3, 0, 2, 3, 0, 2, 2, 2, 2, 3, 2, 1],
            [1, 3, 0, 2, 1, 2, 2, 3, 1, 2, 3, 0, 3, 1, 2, 3, 3, 3, 2, 0], [3, 0, 3, 0], [3, 0, 3, 0]]
    tt = [[3, 3, 2, 2, 3, 3, 0, 0, 2, 3, 3, 2, 2, 2, 0, 3, 2, 1, 1, 3],
          [2, 1, 0, 3, 3, 1, 2, 0, 0, 0, 1, 1, 3, 3, 3, 0, 2, 1, 3, 2], [3, 0, 3, 0], [3, 0, 3, 0]]
    arch = load_architecture("official:vlt_scar")
    assert arch.genome.to_official() == scar and arch.space.name == "vlt" and arch.validation is None
    assert load_genome("official:vlt_tt") == Genome.from_official(tt)
    with pytest.raises(ArchitectureError, match="no released architecture 'siamcar'.*official:vlt_scar"):
        load_architecture("official:siamcar")


def test_official_bad_cand(tmp_path):
    bad = copy.deepcopy(OFFICIAL)
    bad[2][1] = 4
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"CAND": bad}))
    with pytest.raises(ArchitectureError, match=r"bad.yaml: CAND: .*template_mixer\[1\].*4"):
        load_architecture(path)
    (tmp_path / "none.yaml").write_text("MODEL: {NAME: x}\n")
    with pytest.raises(ArchitectureError, match="no 'CAND' key"):
        load_architecture(tmp_path / "none.yaml")


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
