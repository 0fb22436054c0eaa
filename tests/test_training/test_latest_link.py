"""latest.pt is a hard link to the newest step checkpoint (no second copy on disk); resume stays exact."""
import os

import pytest
import torch

from asearch.io import atomic_link
from asearch.training import TrainConfig, Trainer, build_optimizer, build_scheduler, load_checkpoint
from toy_training import ToyDataset, ToyPathActor, ToyPathModel, toy_factory


def make_run(tmp_path, name, steps=5, resume=False, fail_at=-1, **cfg_kw):
    kw = dict(steps=steps, batch_size=3, num_workers=0, lr=0.05, momentum=0.9, schedule="cosine",
              warmup_steps=1, checkpoint_every=2, keep_checkpoints=2, log_every=1, seed=3, device="cpu")
    kw.update(cfg_kw)
    cfg = TrainConfig(**kw)
    torch.manual_seed(0)
    model = ToyPathModel()
    opt = build_optimizer(model, cfg)
    trainer = Trainer(model, ToyPathActor(model, seed=cfg.seed, fail_at=fail_at),
                      toy_factory(ToyDataset(10), cfg.batch_size, cfg.seed), opt, build_scheduler(opt, cfg), cfg,
                      tmp_path / name, device="cpu", config_dict={}, resume=resume, progress=False)
    return trainer, model


def test_latest_is_the_newest_step_file_not_a_copy(tmp_path):
    trainer, _ = make_run(tmp_path, "run")
    trainer.train()
    ckpt_dir = tmp_path / "run" / "checkpoints"
    latest, newest = ckpt_dir / "latest.pt", ckpt_dir / "step_00000005.pt"
    assert os.path.samefile(latest, newest) and os.stat(latest).st_nlink == 2
    inodes = {os.stat(p).st_ino for p in ckpt_dir.iterdir()}
    assert len(inodes) == len(list(ckpt_dir.glob("step_*.pt")))  # no file besides the step files
    assert load_checkpoint(latest)["step"] == 5


def test_only_latest_kept_survives_pruning(tmp_path):
    trainer, _ = make_run(tmp_path, "run", steps=3, keep_checkpoints=0)
    trainer.train()
    ckpt_dir = tmp_path / "run" / "checkpoints"
    assert [p.name for p in ckpt_dir.iterdir()] == ["latest.pt"]
    assert load_checkpoint(ckpt_dir / "latest.pt")["step"] == 3 and os.stat(ckpt_dir / "latest.pt").st_nlink == 1


def test_resume_from_the_link_is_exact(tmp_path):
    full, full_model = make_run(tmp_path, "full", checkpoint_every=3)
    full.train()
    crashing, _ = make_run(tmp_path, "crash", checkpoint_every=3, fail_at=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.train()
    resumed, model = make_run(tmp_path, "crash", checkpoint_every=3, resume=True)
    resumed.train()
    for a, b in zip(full_model.parameters(), model.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    ckpt_dir = tmp_path / "crash" / "checkpoints"
    assert os.path.samefile(ckpt_dir / "latest.pt", ckpt_dir / "step_00000005.pt")
    assert load_checkpoint(ckpt_dir / "step_00000003.pt")["step"] == 3  # the linked old step file untouched


def test_copy_where_hard_links_fail(tmp_path, monkeypatch):
    src = tmp_path / "a.pt"
    src.write_bytes(b"x" * 10)
    assert atomic_link(src, tmp_path / "l.pt") == "link"

    def no_link(*_args):
        raise OSError("no hard links on this file system")

    monkeypatch.setattr(os, "link", no_link)
    assert atomic_link(src, tmp_path / "l.pt") == "copy"
    assert (tmp_path / "l.pt").read_bytes() == src.read_bytes() and not os.path.samefile(src, tmp_path / "l.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "l.pt"]  # no temp file left


def test_plain_progress_lines_every_log_every_steps(tmp_path, capsys, monkeypatch):
    from asearch.training.logging import plain_progress

    trainer, _ = make_run(tmp_path, "plain", steps=4, log_every=2, checkpoint_every=0)
    trainer.train()  # progress=False: a plain line per log row
    lines = [t for t in capsys.readouterr().out.splitlines() if t.startswith("train step")]
    assert [t.split()[2] for t in lines] == ["2/4", "4/4"] and all("loss" in t and "s/step" in t for t in lines)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert plain_progress(False) and not plain_progress(True)
