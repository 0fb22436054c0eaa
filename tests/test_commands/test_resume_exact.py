"""Issue 16: a paused or killed training run, resumed, ends bit-identical to the unbroken run.

The real tiny VLT_SCAR supernet (SPOS paths) and a tiny VLT_SCAR retraining run on a 12-video synthetic benchmark
through the command line. Each epoch is 10 steps (40 pairs, batch 4); checkpoints every 5 steps and log rows every
2, so the pause at step 7 is neither a periodic checkpoint nor a log step, and the resumed run crosses the epoch
boundaries at steps 10 and 20. The final weights, optimizer state and ``train_log.csv`` (all but the wall-clock
``sec_per_step`` column) must equal the unbroken run's exactly (``torch.equal``, no tolerance).

What used to break it: the language features were encoded in batches of whatever texts were new at that moment, so
a resumed run (empty cache) padded other batches and got other last bits; and the log row after a resume averaged
only the steps since the resume.
"""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asearch.cli import main
from asearch.config import experiments_dir

TINY_SUPERNET = str(experiments_dir() / "vlt_scar" / "tiny_supernet.yaml")
TINY_RETRAIN = str(experiments_dir() / "vlt_scar" / "tiny_retrain.yaml")
STEPS = 22
PAUSE = 7  # not a multiple of checkpoint_every (5) nor of log_every (2)
GENOME = "[[1,0,3,2,1,0,3,2,1,0,3,2,1,0,3,2,1,0,3,2],[2,3,0,1,2,3,0,1,2,3,0,1,2,3,0,1,2,3,0,1],[0,1,2,3],[3,3,0,0]]"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from asearch.data.synthetic import generate_benchmark

    return generate_benchmark(tmp_path_factory.mktemp("synth12"), videos=12, frames=12, size=96, seed=11,
                              distractors=1)


def _args(root) -> list:
    out = []
    for item in (f"data.datasets.0.root={root}", f"train.steps={STEPS}", "data.pairs_per_epoch=40",
                 "train.batch_size=4", "train.warmup_steps=3", "train.log_every=2", "train.checkpoint_every=5",
                 "train.keep_checkpoints=1", "train.device=cpu"):
        out += ["--set", item]
    return out + ["--no-progress"]


def _log_rows(path: Path) -> list:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "sec_per_step"} for row in csv.DictReader(fh)]


def _assert_same_run(a_dir: Path, b_dir: Path) -> None:
    from asearch.training.trainer import load_checkpoint

    a = load_checkpoint(a_dir / "checkpoints" / "latest.pt")
    b = load_checkpoint(b_dir / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == STEPS and a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    differ = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert not differ, f"{len(differ)} of {len(a['model'])} tensors differ, e.g. {differ[:3]}"
    opt_a, opt_b = a["optimizer"], b["optimizer"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    assert opt_a["state"].keys() == opt_b["state"].keys() and opt_a["state"]
    for pid, state in opt_a["state"].items():
        for key, value in state.items():
            other = opt_b["state"][pid][key]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other, (pid, key)
    assert a["scheduler"] == b["scheduler"]
    rows_a, rows_b = _log_rows(a_dir / "train_log.csv"), _log_rows(b_dir / "train_log.csv")
    assert [r["step"] for r in rows_a] == [str(s) for s in range(2, STEPS + 1, 2)]
    assert rows_a == rows_b


@pytest.fixture(scope="module")
def unbroken_pretrain(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "whole"
    assert main(["pretrain", "--config", TINY_SUPERNET, "--out", str(out)] + _args(bench)) == 0
    return out


def test_paused_pretraining_resumes_bit_identical(bench, unbroken_pretrain, tmp_path):
    args = ["pretrain", "--config", TINY_SUPERNET, "--out", str(tmp_path / "paused")] + _args(bench)
    assert main(args + ["--stop-after", str(PAUSE)]) == 0
    assert main(args + ["--resume"]) == 0
    _assert_same_run(unbroken_pretrain, tmp_path / "paused")


def test_paused_retraining_resumes_bit_identical(bench, tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text(GENOME)
    args = ["retrain", "--config", TINY_RETRAIN, "--arch", str(arch)] + _args(bench)
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    paused = args + ["--out", str(tmp_path / "paused")]
    assert main(paused + ["--stop-after", str(PAUSE)]) == 0
    assert main(paused + ["--resume"]) == 0
    _assert_same_run(tmp_path / "whole", tmp_path / "paused")


def test_killed_pretraining_resumes_from_its_last_checkpoint_bit_identical(bench, unbroken_pretrain, tmp_path):
    """``kill -9`` once the log has a row past the step-10 checkpoint (before the step-15 one); the resumed run
    starts at the last checkpoint, redoes the lost steps and ends where the unbroken run ends."""
    from asearch.training.trainer import load_checkpoint

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "asearch", "pretrain", "--config", TINY_SUPERNET, "--out", str(out)] + _args(bench)
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    log_path = out / "train_log.csv"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if log_path.is_file() and any(int(r["step"]) >= 12 for r in _log_rows(log_path)):
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    logged = max(int(r["step"]) for r in _log_rows(log_path))
    saved = load_checkpoint(out / "checkpoints" / "latest.pt")["step"]
    assert saved % 5 == 0 and saved < logged < STEPS, (saved, logged)  # killed between checkpoints, work lost
    assert main(["pretrain", "--config", TINY_SUPERNET, "--out", str(out), "--resume"] + _args(bench)) == 0
    _assert_same_run(unbroken_pretrain, out)
