"""Seeded sharded sampler, CSV logger, and a real 2-process gloo DDP run of the toy SPOS model."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asearch.errors import DataError
from asearch.training import CsvLogger, SeededSampler, get_rank, get_world_size, init_distributed, is_main_process


def test_seeded_sampler_shards_and_resumes():
    a = SeededSampler(5, seed=1, rank=0, world_size=2)
    b = SeededSampler(5, seed=1, rank=1, world_size=2)
    assert len(a) == len(b) == 3
    order = a.epoch_order() + b.epoch_order()
    assert set(order) == set(range(5)) and len(order) == 6  # padded by wrapping around to a multiple of 2
    again = SeededSampler(5, seed=1, rank=0, world_size=2)
    assert list(again) == list(a)
    again.set_start(1)
    again.set_epoch(1)  # a new epoch restarts from its beginning
    assert len(again) == 3
    a.set_start(2)
    assert list(a) == a.epoch_order()[2:] and len(a) == 1
    plain = SeededSampler(5, shuffle=False, rank=1, world_size=2, drop_last=True)
    assert list(plain) == [1, 3]
    shuffled_epochs = {tuple(SeededSampler(8, seed=1, epoch=e, rank=0, world_size=1)) for e in range(4)}
    assert len(shuffled_epochs) == 4


def test_single_process_defaults(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed(device="cpu")
    assert (info.rank, info.world_size, info.distributed, info.device.type) == (0, 1, False, "cpu")
    assert get_rank() == 0 and get_world_size() == 1 and is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    from asearch.errors import ConfigError
    with pytest.raises(ConfigError, match="MASTER_ADDR is not set; launch with torchrun"):
        init_distributed(device="cpu")


def test_csv_logger_widens_and_truncates(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLogger(path)
    log.log({"step": 1, "loss": 0.5})
    log.log({"step": 2, "loss": 0.25, "mse": 0.125})  # a new column rewrites the header once
    log.log({"step": 3, "loss": 0.1})
    assert path.read_text().splitlines() == ["step,loss,mse", "1,0.5,", "2,0.25,0.125", "3,0.1,"]
    CsvLogger(path, resume_step=2).log({"step": 3, "loss": 0.2})
    assert path.read_text().splitlines() == ["step,loss,mse", "1,0.5,", "2,0.25,0.125", "3,0.2,"]
    CsvLogger(path)  # a new run starts a new file
    assert path.read_text().splitlines() == ["step"]
    path.write_text("step,loss\nx,1\n")
    with pytest.raises(DataError, match=r"log.csv, field step: line 2: step 'x' is not a number"):
        CsvLogger(path, resume_step=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_ddp_workers(out: Path, mode: str = "train", timeout: float = 90.0) -> None:
    """Two gloo ranks of ``ddp_worker.py OUT MODE`` on a free port; fails (killing both) past ``timeout``."""
    here = Path(__file__).resolve().parent
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2",
               OMP_NUM_THREADS="1", PYTHONPATH=str(here) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, str(here / "ddp_worker.py"), str(out), mode],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"DDP workers ({mode}) did not finish in {timeout:.0f} s")
    assert all(p.returncode == 0 for p in procs), "\n".join(outputs)


def test_ddp_two_cpu_processes_same_paths_and_weights(tmp_path):
    _run_ddp_workers(tmp_path)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["world_size"] == 2 and len(r0["genomes"]) == 3
    assert r0["genomes"] == r1["genomes"]  # the same path on every rank at every step, without communication
    w0, w1 = (torch.load(tmp_path / f"weights{r}.pt") for r in range(2))
    for k in w0["final"]:
        assert torch.equal(w0["start"][k], w1["start"][k]), k  # DDP broadcast rank 0's init
        assert torch.allclose(w0["final"][k], w1["final"][k], atol=1e-6), k
    # exactly the on-path parameters reach the optimizer with a gradient (None elsewhere, not zeros)
    for genome, names in zip(r0["genomes"], r0["with_grad"]):
        off = {f"choices.{i}.{1 - c}." for i, c in enumerate(genome)}
        expected = sorted(n for n in w0["final"] if not any(n.startswith(o) for o in off))
        assert names == expected
    for i in range(3):  # a choice drawn at no step keeps rank 0's initial weights bit for bit
        for c in range(2):
            if all(g[i] != c for g in r0["genomes"]):
                key = f"choices.{i}.{c}.weight"
                assert torch.equal(w0["final"][key], w0["start"][key])
    # only rank 0 wrote logs and checkpoints, in one folder
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.pt", "step_00000002.pt",
                                                                        "step_00000003.pt"]
    ckpt = torch.load(run / "checkpoints" / "latest.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert len((run / "train_log.csv").read_text().splitlines()) == 4


def test_ddp_nonfinite_loss_on_one_rank_stops_both(tmp_path):
    _run_ddp_workers(tmp_path, "nan")  # no hang: both ranks return within the timeout
    errors = [(tmp_path / f"error{r}.txt").read_text() for r in range(2)]
    assert errors[0] == errors[1]  # the same error on every rank
    assert errors[0].startswith("step 1: the loss is not finite on rank(s) 1 of 2 (losses by rank: [")
    assert "nan]" in errors[0] and "every rank stops" in errors[0]
    assert [(tmp_path / f"steps{r}.txt").read_text() for r in range(2)] == ["1", "1"]  # only step 0 updated


def test_ddp_contrastive_gather_equals_whole_batch(tmp_path):
    from ddp_worker import gather_batch

    from supernets.contrastive import ContrastiveAlignment

    _run_ddp_workers(tmp_path, "gather")
    x_v, x_l, mask, proj_v, proj_l = gather_batch()
    align = ContrastiveAlignment(gather=True).train()  # no process group here: nothing to gather
    loss = align(proj_v(x_v), proj_l(x_l), mask)
    loss.backward()
    expected = [p.grad.flatten().tolist() for p in list(proj_v.parameters()) + list(proj_l.parameters())
                + [align.logit_scale]]
    for r in range(2):
        got = json.loads((tmp_path / f"gather{r}.json").read_text())
        assert got["loss"] == pytest.approx(float(loss.detach()), abs=1e-6)  # every rank: the loss of the whole batch
        for g, e in zip(got["grads"], expected):
            assert g == pytest.approx(e, abs=1e-6)  # DDP-averaged gradients = one process on the whole batch
    local = ContrastiveAlignment(gather=False)(proj_v(x_v[:4]), proj_l(x_l[:4]), mask[:4])
    assert abs(float(local.detach()) - float(loss.detach())) > 1e-3  # the check is not vacuous: local negatives differ
