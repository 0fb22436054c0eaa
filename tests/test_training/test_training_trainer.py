"""Trainer: SPOS off-path semantics, exact resume, checkpoints, logs and loud failures (toy model, CPU)."""
import csv

import pytest
import torch
from torch import nn

from asearch.errors import CheckpointError, ConfigError
from asearch.training import (
    CHECKPOINT_FORMAT,
    BaseActor,
    PathSampler,
    TrainConfig,
    Trainer,
    build_optimizer,
    build_scheduler,
    load_checkpoint,
    load_model_state,
)
from toy_training import ToyDataset, ToyPathActor, ToyPathModel, toy_factory


def make_run(tmp_path, name, steps=7, resume=False, fail_at=-1, **cfg_kw):
    """Fresh toy model + actor + trainer (same seeds every time)."""
    kw = dict(steps=steps, batch_size=3, num_workers=0, lr=0.05, momentum=0.9, weight_decay=0.01,
              schedule="cosine", warmup_steps=2, checkpoint_every=2, keep_checkpoints=2, log_every=1, seed=3,
              device="cpu", lr_mult={"backbone": 0.5})
    kw.update(cfg_kw)
    cfg = TrainConfig(**kw)
    torch.manual_seed(0)
    model = ToyPathModel()
    actor = ToyPathActor(model, seed=cfg.seed, fail_at=fail_at)
    opt = build_optimizer(model, cfg)
    trainer = Trainer(model, actor, toy_factory(ToyDataset(10), cfg.batch_size, cfg.seed), opt,
                      build_scheduler(opt, cfg), cfg, tmp_path / name, device="cpu",
                      config_dict={"model": {"hidden": 8}}, resume=resume, build_info={"factory": "toy"},
                      progress=False)
    return trainer, model, actor


def test_off_path_weights_bit_identical_under_momentum_and_weight_decay():
    torch.manual_seed(0)
    model = ToyPathModel(genes=1)
    model.drop.p = 0.0

    class FixedPaths(ToyPathActor):
        def path(self, step):
            return [step % 2]  # step 0 runs choice 0, step 1 runs choice 1

    actor = FixedPaths(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    x, y = torch.randn(4, 4), torch.randn(4, 1)
    snap = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    c0, c1 = model.choices[0][0], model.choices[0][1]

    def one_step(step):
        opt.zero_grad(set_to_none=True)
        loss, _ = actor((x, y), step)
        loss.backward()
        # plain autograd leaves the off-path grads None; a zero grad (as DDP may leave) would still move them
        for p in actor.off_path_parameters():
            p.grad = torch.zeros_like(p)
        for p in actor.off_path_parameters():  # what the Trainer does
            p.grad = None
        opt.step()

    before0, before1 = snap(c0), snap(c1)
    one_step(0)
    assert all(torch.equal(a, b) for a, b in zip(before1, snap(c1)))  # choice 1 untouched
    assert not any(torch.equal(a, b) for a, b in zip(before0, snap(c0)))  # choice 0 trained
    mid0 = snap(c0)
    one_step(1)  # choice 0 now off path, though it has a momentum buffer and weight decay
    assert "momentum_buffer" in opt.state[c0.weight]
    assert all(torch.equal(a, b) for a, b in zip(mid0, snap(c0)))
    assert not any(torch.equal(a, b) for a, b in zip(before1, snap(c1)))


def test_trainer_drops_off_path_grads():
    """Inside the Trainer too: a choice never drawn keeps its exact initial weights despite weight decay."""

    class NeverOne(ToyPathActor):
        def path(self, step):
            return [0, 0]

    torch.manual_seed(0)
    model = ToyPathModel()
    actor = NeverOne(model)
    cfg = TrainConfig(steps=3, batch_size=2, lr=0.1, weight_decay=0.5, log_every=1, device="cpu", num_workers=0)
    unused = [p.detach().clone() for p in model.choices[1][1].parameters()]
    opt = build_optimizer(model, cfg)

    def zero_grad_everywhere(*a, **k):  # emulate DDP leaving zero (not None) grads on unused parameters
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
    model.head.register_full_backward_pre_hook(lambda *a: zero_grad_everywhere())

    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(model, actor, toy_factory(ToyDataset(6), 2, 0), opt, None, cfg, tmp, progress=False).train()
    assert all(torch.equal(a, b) for a, b in zip(unused, model.choices[1][1].parameters()))


def test_paths_are_seeded_per_step():
    s = PathSampler.uniform([2, 3, 4], seed=5)
    assert s.sample(7) == PathSampler.uniform([2, 3, 4], seed=5).sample(7)
    draws = [s.sample(t) for t in range(50)]
    assert all(0 <= g[0] < 2 and 0 <= g[1] < 3 and 0 <= g[2] < 4 for g in draws)
    assert len({tuple(g) for g in draws}) > 5
    assert [s.sample(t) for t in range(10)] != [PathSampler.uniform([2, 3, 4], seed=6).sample(t) for t in range(10)]


def _read_log(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_resume_after_kill_matches_unbroken_run(tmp_path):
    full, full_model, full_actor = make_run(tmp_path, "full")
    out = full.train()
    assert out["step"] == 7 and out["epoch"] == 2  # 10 samples, batch 3, drop_last: 3 batches per epoch

    killed, _, _ = make_run(tmp_path, "broken")
    killed.train(stop_after=5)  # dies after step 5; last checkpoint at step 4
    resumed, res_model, res_actor = make_run(tmp_path, "broken", resume=True)
    assert resumed.train()["step"] == 7

    for (name, a), b in zip(full_model.state_dict().items(), res_model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), name
    assert res_actor.genomes == full_actor.genomes[4:]  # the same paths for steps 4..6
    assert full.optimizer.state_dict()["state"][0]["momentum_buffer"].allclose(
        resumed.optimizer.state_dict()["state"][0]["momentum_buffer"], atol=1e-6)

    rows = _read_log(tmp_path / "broken" / "train_log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 8))  # step 5 of the killed run was dropped
    full_rows = _read_log(tmp_path / "full" / "train_log.csv")
    assert [float(r["loss"]) for r in rows] == pytest.approx([float(r["loss"]) for r in full_rows], abs=1e-6)
    assert {"step", "epoch", "lr", "loss", "mse", "sec_per_step"} <= set(rows[0])


def test_resume_after_exception(tmp_path):
    full, full_model, _ = make_run(tmp_path, "full", steps=5, checkpoint_every=3)
    full.train()
    crashing, _, _ = make_run(tmp_path, "crash", steps=5, checkpoint_every=3, fail_at=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.train()
    assert load_checkpoint(tmp_path / "crash" / "checkpoints" / "latest.pt")["step"] == 3
    resumed, model, _ = make_run(tmp_path, "crash", steps=5, checkpoint_every=3, resume=True)
    resumed.train()
    for a, b in zip(full_model.parameters(), model.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)


def test_checkpoint_contents_and_pruning(tmp_path):
    trainer, model, _ = make_run(tmp_path, "run", steps=7, checkpoint_every=2, keep_checkpoints=2)
    out = trainer.train()
    ckpt_dir = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["latest.pt", "step_00000006.pt", "step_00000007.pt"]
    assert out["checkpoint"] == ckpt_dir / "step_00000007.pt"
    ckpt = load_checkpoint(ckpt_dir / "latest.pt")
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["step"] == 7 and ckpt["epoch"] == 2
    assert ckpt["batch_in_epoch"] == 1 and ckpt["world_size"] == 1
    assert ckpt["config"] == {"model": {"hidden": 8}} and ckpt["build_info"] == {"factory": "toy"}
    assert ckpt["train"]["lr_mult"] == {"backbone": 0.5} and ckpt["asearch_version"]
    assert set(ckpt["rng"][0]) == {"python", "numpy", "torch", "cuda"}
    assert ckpt["scheduler"]["last_epoch"] == 7 and ckpt["scaler"] is None  # no AMP on CPU
    fresh = ToyPathModel()
    load_model_state(fresh, ckpt["model"])
    assert torch.equal(fresh.head.weight, model.head.weight)


def test_keep_zero_keeps_only_latest_and_refuses_reuse(tmp_path):
    trainer, _, _ = make_run(tmp_path, "run", steps=3, keep_checkpoints=0)
    trainer.train()
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["latest.pt"]
    with pytest.raises(CheckpointError, match="already holds a run .*resume it"):
        make_run(tmp_path, "run", steps=3)
    with pytest.raises(CheckpointError, match="checkpoint to resume from not found: .*nope.pt"):
        make_run(tmp_path, "other", resume=tmp_path / "nope.pt")


def test_load_model_state_names_the_bad_key(tmp_path):
    model = ToyPathModel()
    state = model.state_dict()
    state["head.weight"] = torch.zeros(1, 9)
    with pytest.raises(CheckpointError, match=r"ckpt.pt: key 'head.weight' has shape \(1, 9\)"):
        load_model_state(model, state, source="ckpt.pt")
    del state["head.weight"]
    with pytest.raises(CheckpointError, match="key 'head.weight' of the model is missing"):
        load_model_state(model, state, source="ckpt.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an asearch training checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


class LinearActor(BaseActor):
    """loss = scale * w (one scalar weight): gradient ``scale``, known by hand."""

    def __init__(self, model, scale):
        super().__init__(model)
        self.scale = scale

    def forward_pass(self, batch, path):
        return self.model.w.sum()

    def compute_losses(self, outputs, batch):
        return self.scale * outputs, {}


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))


def test_grad_clipping_by_hand(tmp_path):
    model = Scalar()
    cfg = TrainConfig(steps=1, batch_size=1, lr=0.1, momentum=0.0, weight_decay=0.0, schedule="constant",
                      grad_clip=1.0, num_workers=0, device="cpu", log_every=1)
    opt = build_optimizer(model, cfg)
    out = Trainer(model, LinearActor(model, 10.0), lambda e, s: [torch.zeros(1)] * 3, opt, None, cfg, tmp_path,
                  progress=False).train()
    assert out["stats"]["grad_norm"] == pytest.approx(10.0)  # norm before clipping
    assert model.w.item() == pytest.approx(1.0 - 0.1 * 1.0)  # clipped to norm 1


def test_non_finite_loss_fails_loudly(tmp_path):
    model = Scalar()
    cfg = TrainConfig(steps=2, batch_size=1, num_workers=0, device="cpu")
    opt = build_optimizer(model, cfg)
    trainer = Trainer(model, LinearActor(model, float("nan")), lambda e, s: [torch.zeros(1)] * 3, opt, None, cfg,
                      tmp_path, progress=False)
    with pytest.raises(FloatingPointError, match="step 0: the loss is nan"):
        trainer.train()


def test_empty_loader_and_missing_tensorboard(tmp_path):
    model = Scalar()
    cfg = TrainConfig(steps=2, batch_size=1, num_workers=0, device="cpu")
    opt = build_optimizer(model, cfg)
    trainer = Trainer(model, LinearActor(model, 1.0), lambda e, s: [], opt, None, cfg, tmp_path / "a", progress=False)
    from asearch.errors import DataError
    with pytest.raises(DataError, match="yields no batch for epoch 0"):
        trainer.train()
    from asearch.training.logging import tensorboard_available
    if not tensorboard_available():
        with pytest.raises(ConfigError, match="'tensorboard' package is not installed"):
            Trainer(model, LinearActor(model, 1.0), lambda e, s: [], opt, None,
                    TrainConfig(steps=1, tensorboard=True, device="cpu"), tmp_path / "b", progress=False)


def test_amp_choice_and_batch_moving():
    from asearch.training.trainer import move_to_device, resolve_amp
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_amp("fp16", cuda) == torch.float16 and resolve_amp("bf16", cuda) == torch.bfloat16
    assert resolve_amp("off", cuda) is None and resolve_amp("bf16", cpu) is None and resolve_amp("auto", cpu) is None
    batch = {"x": torch.ones(1), "pair": (torch.zeros(1), "text"), "ids": [1, 2]}
    moved = move_to_device(batch, cpu)
    assert moved["pair"][1] == "text" and moved["ids"] == [1, 2] and torch.equal(moved["x"], batch["x"])


def test_fair_step_sums_the_gradients_of_every_path_and_spares_parameters_off_all_of_them(tmp_path):
    """FairNAS step: with SGD (lr 1, weight decay 0.1) one update moves each parameter by minus the sum of its
    gradients over the step's paths on the same batch (computed here by hand) plus its decay, including a choice
    that only one of the paths runs (its gradient must survive the other path's off-path list); a choice off every
    path keeps its exact weights; the log row is the mean loss of the paths."""
    group = [[0, 0], [0, 1]]  # gene 0 runs choice 0 twice (choice 1 is off every path); gene 1 runs both

    class FairToy(ToyPathActor):
        def __init__(self, model):
            super().__init__(model)
            self.path_sampler = PathSampler(group=lambda seed: [list(g) for g in group], seed=0)

    torch.manual_seed(0)
    model = ToyPathModel()
    model.drop.p = 0.0
    data = ToyDataset(4, noise=0.0)
    x, y = data.x, data.y
    grads, losses = {}, []
    for path in group:  # by hand: the gradient of each path, summed
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x, path), y)
        loss.backward()
        losses.append(float(loss.detach()))
        for name, p in model.named_parameters():
            if p.grad is not None:
                grads[name] = grads.get(name, 0.0) + p.grad
    expected = {name: p.detach() - (grads[name] + 0.1 * p.detach()) if name in grads else p.detach().clone()
                for name, p in model.named_parameters()}
    assert not any(name.startswith("choices.0.1.") for name in grads)
    actor = FairToy(model)
    assert actor.path_sampler.paths_per_step == 2 and actor.paths(5) == group
    cfg = TrainConfig(steps=1, batch_size=4, lr=1.0, momentum=0.0, weight_decay=0.1, schedule="constant",
                      log_every=1, device="cpu", num_workers=0, checkpoint_every=0)
    opt = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=0.1)
    before_off = [p.detach().clone() for p in model.choices[0][1].parameters()]
    Trainer(model, actor, toy_factory(data, 4, 0), opt, None, cfg, tmp_path / "fair", progress=False).train()
    assert actor.genomes == group
    for name, p in model.named_parameters():
        assert torch.allclose(p.detach(), expected[name], atol=1e-6), name
    assert all(torch.equal(a, b) for a, b in zip(before_off, model.choices[0][1].parameters()))
    row = _read_log(tmp_path / "fair" / "train_log.csv")[-1]
    assert float(row["loss"]) == pytest.approx(sum(losses) / 2, rel=1e-5)


def test_fair_sampler_refuses_one_path_sample():
    s = PathSampler(group=lambda seed: [[seed % 2], [1 - seed % 2]], seed=1)
    assert s.paths(3) == s.paths(3) and sorted(g[0] for g in s.paths(3)) == [0, 1]
    with pytest.raises(ValueError, match="paths"):
        s.sample(0)
    with pytest.raises(ValueError, match="exactly one"):
        PathSampler()
