"""`asearch pretrain`: SPOS supernet pretraining (paper 000 Alg. 1) from an experiment YAML.

Every optimizer step trains one path drawn uniformly from the model's search space (the same on every torchrun
rank); the checkpoints under ``OUT/checkpoints/`` are self-describing, so ``asearch track --checkpoint`` and
``asearch search --supernet`` rebuild the supernet from them. The work is done by
:func:`asearch.training.recipes.run_pretrain`.
"""
from __future__ import annotations

import argparse

from asearch.commands import add_config_args

__all__ = ["add_parser", "run", "add_train_args", "print_result"]


def add_train_args(p: argparse.ArgumentParser) -> None:
    """Options shared by `asearch pretrain` and `asearch retrain`."""
    add_config_args(p, required=True)
    p.add_argument("--out", help="output folder (default: the config's out_dir, else runs/<model>/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the output folder from checkpoints/latest.pt (exact: same weights as "
                        "an unbroken run)")
    p.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                   help="pause once STEP optimizer steps are done, writing a checkpoint there (continue with "
                        "--resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def print_result(command: str, result: dict) -> None:
    """One summary line for the console (rank 0 only under torchrun)."""
    if result.get("rank", 0) != 0:
        return
    loss = result.get("final_loss")
    state = "paused" if result.get("stopped") else "done"
    print(f"asearch {command}: {state} after {result['steps']} steps"
          + (f", final loss {loss:.4f}" if isinstance(loss, float) else "")
          + f"; checkpoint {result['checkpoint']}; log {result['out_dir']}/train_log.csv")


def add_parser(sub) -> None:
    """Register `asearch pretrain`."""
    p = sub.add_parser("pretrain", help="pretrain a SPOS supernet tracker (one random path per step)",
                       description="Supernet pretraining (paper 000 Alg. 1): uniform single-path sampling over the "
                                   "model's search space, off-path weights untouched, checkpoints + exact --resume, "
                                   "DDP under torchrun (torchrun --nproc_per_node N -m asearch pretrain ...).")
    add_train_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `asearch pretrain`."""
    from asearch.training.recipes import run_pretrain

    result = run_pretrain(args.config, out_dir=args.out, overrides=args.overrides, resume=args.resume,
                          progress=not args.no_progress, stop_after=args.stop_after)
    print_result("pretrain", result)
    return 0
