"""Candidate scoring throughput of the search fitness: validation videos tracked in lockstep vs one at a time.

One supernet, one fixed validation set, one list of candidate genomes; each candidate is scored twice through the
real fitness (:class:`asearch.search.fitness.FitnessContext`: BN recalibration, then tracking, then SUC), once with
the videos **batched** (all validation videos in lockstep, one model call per frame, template branch once per
video) and once **sequentially** (one video after another, the one-video tracker API). The two modes alternate
candidate by candidate, so they see the same machine load. Reported per mode:

* candidates scored per minute and seconds per candidate;
* the share of a candidate's time spent in BN recalibration and in tracking (the rest: building the tracker, OPE);
* the batched / sequential ratios: end to end (candidates per minute; the goal of issue 5 is >= 4x on CPU) and
  tracking alone (what batching itself gains: BN recalibration costs the same in both modes, so it caps the
  end-to-end ratio).

Scoring runs with the fitness config's CPU settings (``channels_last``, ``keep_freed_memory``; ``--plain``: both
off), ghost-batched BN recalibration (``--bn-fuse``, ``fitness.bn.fuse``) and the BN recalibration kernel
(``--bn-kernel``, ``fitness.bn.kernel``: ``native`` by default, ``channels_last`` opt-in). Both modes are warmed up
once before timing. Measured on 2 CPU threads with the defaults, 7 runs of each kernel alternated on one machine:
``native`` 3.88-4.48x end to end (median 3.9x), BN recalibration 25-29 % of a batched candidate, 151-168 batched
candidates per minute; ``channels_last`` 4.08-4.29x (median 4.2x), recalibration 20-23 %, 169-182 per minute;
tracking alone 4.9-6.0x. ``--plain``: 3.0-3.9x. The spread comes from the machine: within one run the
one-video-at-a-time mode alone swings by up to 30 %.

The supernet is the checkpoint given with ``--checkpoint`` (a checkpoint of ``asearch pretrain``) or, by default, a
randomly initialised one built from ``experiments/vlt_scar/tiny.yaml`` (``--paper``: the paper's width-1.0,
127/255 model); the validation videos come from ``--root`` (a synthetic benchmark) or a freshly generated one.

Usage::

    python benchmarks/bench_search.py                                  # tiny model, 20 videos x 11 frames, CPU
    python benchmarks/bench_search.py --plain                          # the same without the CPU settings
    python benchmarks/bench_search.py --paper --device cuda --candidates 5
    python benchmarks/bench_search.py --checkpoint runs/vlt_scar/tiny_supernet/checkpoints/latest.pt --root DIR
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path


def _checkpoint(args: argparse.Namespace, workdir: Path, root: Path) -> Path:
    import torch

    from asearch.config import experiments_dir, load_yaml
    from trackers.registry import build_info, build_model

    if args.checkpoint:
        return Path(args.checkpoint)
    tiny = load_yaml(experiments_dir() / "vlt_scar" / "tiny.yaml")
    model_cfg = dict(tiny["model"])
    if args.paper:
        model_cfg = dict(load_yaml(experiments_dir() / "vlt_scar" / "supernet.yaml")["model"])
        model_cfg["supernet"] = dict(model_cfg["supernet"], language_dim=384)
    torch.manual_seed(0)
    model = build_model(model_cfg, pretrained=False)
    config = {"model": model_cfg, "tracker": dict(tiny["tracker"], min_size=4), "language": {"enabled": False},
              "data": {"datasets": [{"name": "synthetic", "root": str(root), "split": "train"}]}}
    path = workdir / "supernet.pt"
    torch.save({"model": model.state_dict(), "config": config, "build_info": build_info(model_cfg)}, path)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="supernet checkpoint (default: a random tiny one)")
    p.add_argument("--paper", action="store_true", help="random supernet at the paper's width and sizes")
    p.add_argument("--root", help="synthetic benchmark root (default: generate one)")
    p.add_argument("--videos", type=int, default=20, help="validation videos (default 20, as the official code)")
    p.add_argument("--frames", type=int, default=11, help="frames per video (default 11, as the official code)")
    p.add_argument("--candidates", type=int, default=4, help="genomes scored per mode")
    p.add_argument("--bn-batches", type=int, default=4, help="BN recalibration batches")
    p.add_argument("--bn-batch-size", type=int, default=8)
    p.add_argument("--bn-fuse", type=int, default=4, help="BN batches per forward pass (fitness.bn.fuse)")
    p.add_argument("--bn-kernel", default="native", choices=["native", "channels_last"],
                   help="BN recalibration kernel (fitness.bn.kernel)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plain", action="store_true",
                   help="score with fitness.channels_last and fitness.keep_freed_memory off (CPU settings)")
    args = p.parse_args(argv)

    import torch

    from asearch.search.fitness import BNConfig, FitnessConfig, TrackingFitness, ValidationConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        root = Path(args.root) if args.root else None
        if root is None:
            from asearch.data.synthetic import generate_benchmark

            n = max(args.videos * 5, 10)  # val split = 20% of the videos
            root = generate_benchmark(workdir / "synth", videos=n, frames=args.frames, size=128, seed=args.seed)
        ckpt = _checkpoint(args, workdir, root)
        cfg = FitnessConfig(validation=ValidationConfig(dataset="synthetic", root=str(root), split="val",
                                                        videos=args.videos, frames=args.frames),
                            bn=BNConfig(batches=args.bn_batches, batch_size=args.bn_batch_size, seed=args.seed,
                                        fuse=args.bn_fuse, kernel=args.bn_kernel),
                            channels_last=not args.plain, keep_freed_memory=not args.plain)
        t0 = time.perf_counter()
        ctx = TrackingFitness(ckpt, cfg, device=args.device).context()
        load = time.perf_counter() - t0
        genomes = [ctx.space.random(args.seed + i) for i in range(args.candidates)]
        for warm in (True, False):  # warm-up of both modes (allocator, first calls with each batch size)
            ctx.score(ctx.space.random(args.seed + 10_000), batched=warm)
        totals = {m: {"wall": 0.0, "bn": 0.0, "track": 0.0, "suc": []} for m in ("batched", "sequential")}
        for g in genomes:
            for mode in ("batched", "sequential"):
                t0 = time.perf_counter()
                r = ctx.score(g, batched=mode == "batched")
                if ctx.device.type == "cuda":
                    torch.cuda.synchronize()
                tot = totals[mode]
                tot["wall"] += time.perf_counter() - t0
                tot["bn"] += r["bn_seconds"]
                tot["track"] += r["track_seconds"]
                tot["suc"].append(r["suc"])

    n = len(genomes)
    print(f"# bench_search: {n} candidates x {args.videos} videos x {args.frames} frames, BN {args.bn_batches} x "
          f"{args.bn_batch_size} (fuse {args.bn_fuse}, kernel {args.bn_kernel}), device {ctx.device}, torch threads {torch.get_num_threads()}, "
          f"{'paper-size' if args.paper else 'checkpoint' if args.checkpoint else 'tiny'} supernet "
          f"(space {ctx.space.name}, width {ctx.space.width_mult}, {ctx.space.template_size}/{ctx.space.search_size})")
    print(f"# {platform.platform()}, python {platform.python_version()}, torch {torch.__version__}; context load "
          f"(model, BN batches, frames) {load:.2f} s, once per worker")
    print(f"# CPU settings: channels_last {cfg.channels_last}, keep_freed_memory {cfg.keep_freed_memory}"
          f"{' (--plain)' if args.plain else ''}")
    print()
    print("| mode | candidates / min | s / candidate | BN recalibration | tracking | other |")
    print("| --- | --- | --- | --- | --- | --- |")
    for mode, tot in totals.items():
        per = tot["wall"] / n
        other = max(tot["wall"] - tot["bn"] - tot["track"], 0.0)
        print(f"| {mode} | {60.0 / per:.1f} | {per:.3f} | {100 * tot['bn'] / tot['wall']:.0f}% | "
              f"{100 * tot['track'] / tot['wall']:.0f}% | {100 * other / tot['wall']:.0f}% |")
    b, s = totals["batched"], totals["sequential"]
    print()
    print(f"batched / sequential: {s['wall'] / b['wall']:.2f}x candidates per minute (goal >= 4x on "
          f"CPU), {s['track'] / b['track']:.2f}x tracking alone")
    diff = max(abs(x - y) for x, y in zip(b["suc"], s["suc"]))
    print(f"largest SUC difference between the modes: {diff:.4f} (float sums depend on the batch size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
