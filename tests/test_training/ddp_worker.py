"""One rank of the 2-process DDP test: ``python ddp_worker.py OUT_DIR`` under torchrun-style RANK/WORLD_SIZE env."""
import json
import sys
from pathlib import Path

import torch

from asearch.training import (TrainConfig, Trainer, build_optimizer, build_scheduler, cleanup_distributed,
                              init_distributed)
from toy_training import ToyDataset, ToyPathActor, ToyPathModel, toy_factory


def main(out: Path) -> None:
    info = init_distributed(device="cpu")
    torch.manual_seed(100 + info.rank)  # different init on each rank: DDP must start all from rank 0's weights
    model = ToyPathModel(genes=3)
    cfg = TrainConfig(steps=3, batch_size=2, num_workers=0, lr=0.1, momentum=0.9, weight_decay=0.1, seed=11,
                      device="cpu", log_every=1, checkpoint_every=2, schedule="constant")
    actor = ToyPathActor(model, seed=cfg.seed)
    opt = build_optimizer(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    with_grad = []
    opt.register_step_pre_hook(
        lambda o, a, k: with_grad.append(sorted(names[id(p)] for g in o.param_groups for p in g["params"]
                                                if p.grad is not None)))
    trainer = Trainer(model, actor, toy_factory(ToyDataset(12), cfg.batch_size, cfg.seed), opt,
                      build_scheduler(opt, cfg), cfg, out / "run", progress=False)
    start = {k: v.clone() for k, v in model.state_dict().items()}  # after DDP's broadcast from rank 0
    trainer.train()
    torch.save({"start": start, "final": model.state_dict()}, out / f"weights{info.rank}.pt")
    (out / f"rank{info.rank}.json").write_text(json.dumps({"genomes": actor.genomes, "with_grad": with_grad,
                                                           "world_size": info.world_size}))
    cleanup_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
