"""One rank of the 2-process DDP tests: ``python ddp_worker.py OUT_DIR [MODE]`` under torchrun-style RANK/WORLD_SIZE
env. MODE ``train`` (default): 3 SPOS steps of the toy model; ``nan``: rank 1 alone sees a NaN loss at step 1;
``gather``: the contrastive loss with global negatives on this rank's rows of a fixed batch."""
import json
import sys
from pathlib import Path

import torch

from asearch.training import (TrainConfig, Trainer, build_optimizer, build_scheduler, cleanup_distributed,
                              init_distributed)
from toy_training import ToyDataset, ToyPathActor, ToyPathModel, toy_factory


class NanOnRank1(ToyPathActor):
    """The toy actor whose loss is NaN on rank 1 at step 1 (finite everywhere else)."""

    def __init__(self, model: ToyPathModel, rank: int, seed: int = 0):
        super().__init__(model, seed=seed)
        self.rank = rank

    def compute_losses(self, outputs, batch):
        loss, stats = super().compute_losses(outputs, batch)
        if self.rank == 1 and len(self.genomes) == 2:  # the second step (step 1)
            loss = loss * float("nan")
        return loss, stats


def gather_batch(seed: int = 0):
    """The fixed whole batch of the gather check: 6 pairs of 5-d features, pair 2 masked out, and 2 projections."""
    gen = torch.Generator().manual_seed(seed)
    x_v, x_l = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    mask = torch.tensor([True, True, False, True, True, True])
    torch.manual_seed(seed)
    proj_v, proj_l = torch.nn.Linear(5, 4), torch.nn.Linear(5, 4)
    return x_v, x_l, mask, proj_v, proj_l


def gather_check(out: Path, rank: int, world: int) -> None:
    """Rank 0 holds rows 0..3, rank 1 rows 4..5 (unequal shares); the gradients are averaged as DDP does."""
    import torch.distributed as dist

    from supernets.contrastive import ContrastiveAlignment

    x_v, x_l, mask, proj_v, proj_l = gather_batch()
    align = ContrastiveAlignment(gather=True).train()
    rows = slice(0, 4) if rank == 0 else slice(4, 6)
    loss = align(proj_v(x_v[rows]), proj_l(x_l[rows]), mask[rows])
    loss.backward()
    params = list(proj_v.parameters()) + list(proj_l.parameters()) + [align.logit_scale]
    grads = []
    for p in params:
        dist.all_reduce(p.grad)
        grads.append((p.grad / world).flatten().tolist())
    (out / f"gather{rank}.json").write_text(json.dumps({"loss": float(loss), "grads": grads}))


def main(out: Path, mode: str = "train") -> None:
    info = init_distributed(device="cpu")
    if mode == "gather":
        gather_check(out, info.rank, info.world_size)
        cleanup_distributed()
        return
    torch.manual_seed(100 + info.rank)  # different init on each rank: DDP must start all from rank 0's weights
    model = ToyPathModel(genes=3)
    cfg = TrainConfig(steps=3, batch_size=2, num_workers=0, lr=0.1, momentum=0.9, weight_decay=0.1, seed=11,
                      device="cpu", log_every=1, checkpoint_every=2, schedule="constant")
    actor = NanOnRank1(model, info.rank, seed=cfg.seed) if mode == "nan" else ToyPathActor(model, seed=cfg.seed)
    opt = build_optimizer(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    with_grad = []
    opt.register_step_pre_hook(
        lambda o, a, k: with_grad.append(sorted(names[id(p)] for g in o.param_groups for p in g["params"]
                                                if p.grad is not None)))
    trainer = Trainer(model, actor, toy_factory(ToyDataset(12), cfg.batch_size, cfg.seed), opt,
                      build_scheduler(opt, cfg), cfg, out / "run", progress=False)
    if mode == "nan":
        try:
            trainer.train()
        except FloatingPointError as exc:
            (out / f"error{info.rank}.txt").write_text(str(exc))
        (out / f"steps{info.rank}.txt").write_text(str(len(with_grad)))
        cleanup_distributed()
        return
    start = {k: v.clone() for k, v in model.state_dict().items()}  # after DDP's broadcast from rank 0
    trainer.train()
    torch.save({"start": start, "final": model.state_dict()}, out / f"weights{info.rank}.pt")
    (out / f"rank{info.rank}.json").write_text(json.dumps({"genomes": actor.genomes, "with_grad": with_grad,
                                                           "world_size": info.world_size}))
    cleanup_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
