"""`asearch retrain`: train the searched subnet inside its tracker (paper 000 Alg. 2), or a vision-only baseline,
with the recipe of the experiment YAML.

``--arch`` gives the architecture (the JSON of ``asearch export``, or the official ``[[20], [20], [4], [4]]``
list); ``--weights`` the subnet's inherited supernet weights (``asearch export --weights``). The model family comes
from ``model.name`` (vlt_scar, vlt_tt, vlt_ost, ... and the baselines siamcar, transt, ostrack, which take no
architecture); ``--init`` a training checkpoint whose whole model starts the run (a second training stage, e.g.
SATracker's fine-tuning after its STARK stage). The work is done by :func:`asearch.training.recipes.run_retrain`,
the same recipe as pretraining.
"""
from __future__ import annotations

import argparse

from asearch.commands.pretrain import add_train_args, print_result

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register `asearch retrain`."""
    p = sub.add_parser("retrain", help="retrain a searched subnet (or a baseline) with its tracker's recipe",
                       description="Retraining (paper 000 Alg. 2): the subnet of --arch plugged into the tracker "
                                   "named by model.name, optionally starting from its inherited supernet weights "
                                   "(--weights); vision-only baselines take neither.")
    add_train_args(p)
    p.add_argument("--arch", help="architecture JSON (asearch export), official genome JSON [[20],[20],[4],[4]], or "
                                  "official:vlt_scar / official:vlt_tt (the paper's searched subnets)")
    p.add_argument("--weights", help="inherited weights (asearch export --weights subnet.pt): the subnet, and its "
                                     "neck and head unless retrain.inherit=backbone")
    p.add_argument("--init", help="a training checkpoint of an earlier run of the same model (its "
                                  "checkpoints/latest.pt) whose weights start this run: a later training stage "
                                  "(steps, optimiser and schedule start fresh, unlike --resume); retrain.init")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `asearch retrain`."""
    from asearch.training.recipes import run_retrain

    result = run_retrain(args.config, arch=args.arch, weights=args.weights, out_dir=args.out,
                         overrides=args.overrides, resume=args.resume, progress=not args.no_progress,
                         stop_after=args.stop_after, init=args.init)
    print_result("retrain", result)
    return 0
