"""benchmarks/paper_pipeline.py: its fake LaSOT / TNL2K are read by the toolkit's readers, and the README's
"pipeline at scale" block is exactly the script's commands (issue 19)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipeline(load_benchmark_script):
    yield from load_benchmark_script("paper_pipeline")


def test_fake_lasot_is_read_by_the_lasot_reader(pipeline, tmp_path):
    from asearch.data.datasets.base import read_boxes
    from asearch.data.registry import build_dataset

    root = tmp_path / "LaSOT"
    sentences = pipeline.write_fake_lasot(root, frames=3, size=64)
    assert (root / "airplane" / "airplane-1" / "img" / "00000001.jpg").is_file()
    with pytest.warns(UserWarning, match="LaSOT test videos are missing"):
        test = build_dataset("lasot", root=root, split="test")
    assert [s.name for s in test] == ["airplane-1", "basketball-1"]  # in the official test list
    assert len(build_dataset("lasot", root=root, split="train")) == 6
    assert [s.name for s in build_dataset("lasot", root=root, split="train", held_out="exclude")] == [
        "airplane-3", "airplane-4", "basketball-3", "basketball-4"]
    with pytest.warns(UserWarning, match="held-out"):
        held = build_dataset("lasot", root=root, split="train", held_out="only")
    assert [s.name for s in held] == ["airplane-2", "basketball-2"]  # the search's validation videos
    seq = test[0]
    assert seq.sentence == sentences["airplane-1"] and seq.sentence
    assert len(seq.frames) == 3 and seq.visible.all() and seq.category == "airplane"
    np.testing.assert_array_equal(seq.boxes, read_boxes(root / "airplane" / "airplane-1" / "groundtruth.txt"))
    assert (seq.boxes[:, 2:] > 0).all()


def test_fake_tnl2k_is_read_by_the_tnl2k_reader(pipeline, tmp_path):
    from asearch.data.registry import build_dataset

    root = tmp_path / "TNL2K"
    sentences = pipeline.write_fake_tnl2k(root, frames=3, size=64)
    train, test = build_dataset("tnl2k", root=root, split="train"), build_dataset("tnl2k", root=root, split="test")
    assert sorted(s.name for s in train) == sorted(pipeline.TNL2K_VIDEOS["TNL2K_train_subset"])
    assert len(test) == 2
    by_name = {s.name: s for s in list(train) + list(test)}
    assert {n: s.sentence for n, s in by_name.items()} == sentences
    assert sum(s is None for s in sentences.values()) == 1  # one empty language.txt, as TNL2K has
    seq = by_name["Bullet_video_08"]
    assert seq.boxes.shape == (3, 4) and seq.visible.all() and len(seq.frames) == 3


def _readme_block() -> str:
    text = (REPO / "README.md").read_text()
    section = text[text.index("### The pipeline at scale"):]
    m = re.search(r"```bash\n(.*?)```", section, re.S)
    assert m, "README: no bash block under '### The pipeline at scale'"
    return m.group(1)


def test_readme_pipeline_at_scale_is_the_scripts_commands(pipeline):
    assert _readme_block() == pipeline.render()


def test_commands_use_the_paper_configs_and_only_budget_overrides(pipeline):
    allowed = re.compile(r"(train\.(steps|batch_size|num_workers|warmup_steps)|evolution\.(population|generations|"
                         r"topk|mutations|crossovers)|fitness\.validation\.(videos|frames)|fitness\.bn\.(batches|"
                         r"batch_size|fuse)|ray\.(workers|cpus_per_trial|threads_per_trial))=\d+$|"
                         r"language\.encoder=default$|data\.skip_missing=true$")
    for cmd in pipeline.COMMANDS:
        args = list(cmd.args)
        sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
        assert all(allowed.match(s) for s in sets), (cmd.stage, sets)
        if "--config" in args:
            config = args[args.index("--config") + 1]
            assert config.startswith(f"experiments/{cmd.family}/") and "tiny" not in config
            assert (REPO / config).is_file()
    stages = [c.stage for c in pipeline.COMMANDS if c.family == "vlt_ost"]
    assert stages[:4] == ["pretrain", "search", "export", "retrain"] and "evaluate lasot" in stages


def test_help_runs(pipeline, capsys):
    with pytest.raises(SystemExit) as err:
        pipeline.main(["--help"])
    assert err.value.code == 0 and "--family" in capsys.readouterr().out


def test_a_rerun_skips_the_stages_that_succeeded(pipeline, tmp_path, capsys):
    for d in ("LaSOT", "TNL2K"):
        (tmp_path / d).mkdir()
    for cmd in pipeline.COMMANDS:
        if cmd.family == "vlt_scar":
            cmd.marker(tmp_path / "runs").parent.mkdir(parents=True, exist_ok=True)
            cmd.marker(tmp_path / "runs").write_text("1.0\n")
    assert pipeline.main(["--out", str(tmp_path), "--family", "vlt_scar"]) == 0
    rows = [r for r in (tmp_path / "table.md").read_text().splitlines() if r.startswith("| vlt_scar")]
    assert len(rows) == 8 and all("done before" in r for r in rows)
    assert "| vlt_scar | search | `asearch search --config experiments/vlt_scar/search.yaml ...` |" in rows[1]
