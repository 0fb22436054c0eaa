"""`asearch export`: the searched architecture as an architecture JSON, optionally with its inherited weights.

``--search DIR`` exports the best candidate of a search (``DIR/best.json``, with its validation SUC and protocol);
``--genome`` exports a given genome (inline official JSON or a file: architecture JSON, official YAML with ``CAND``,
JSON list of lists) of the ``--supernet``'s search space. ``--weights`` also writes the subnet with the weights it
inherits from the supernet (``supernets.save_subnet``; input of ``asearch retrain --weights``), together with the
rest of the supernet's tracker (neck and head, trained with every path during pretraining), which retraining loads
too unless ``retrain.inherit`` is ``backbone``.

For VLT_OST the space's ``flops``/``params`` are the searched mixers only; the JSON also gets ``model_cost``, the
whole model (fixed ViT + center head + mixers, :mod:`trackers.models.ost_cost`): from the ``--supernet``
checkpoint's model section when given, else the one ``asearch search`` wrote into ``best.json`` (it depends only on
the architecture); the summary line prints both.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register `asearch export`."""
    p = sub.add_parser("export", help="write the searched architecture JSON (and its inherited subnet weights)",
                       description="Export the best architecture of a search (--search DIR) or a given genome "
                                   "(--genome, with --supernet) as an architecture JSON; --weights also writes the "
                                   "subnet's weights inherited from the supernet.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--search", help="a search output folder (its best.json is exported)")
    src.add_argument("--genome", help="official JSON [[20],[20],[4],[4]], a file holding a genome, or "
                                      "official:vlt_scar / official:vlt_tt")
    p.add_argument("--supernet", help="supernet checkpoint (required with --genome and with --weights)")
    p.add_argument("--out", required=True, help="architecture JSON to write")
    p.add_argument("--weights", help="also write the subnet with its inherited weights, and the supernet tracker's "
                                     "neck and head, to this file (input of asearch retrain --weights)")
    p.set_defaults(func=run)


def _cost_text(arch: "Architecture") -> str:  # noqa: F821 (imported in run)
    """``X GFLOPs, Y M params``; with ``model_cost`` the whole model first, then the searched mixers."""
    own = f"{arch.flops / 1e9:.3f} GFLOPs / {arch.params / 1e6:.3f} M params"
    whole = arch.model_cost
    if not whole:
        return own.replace(" / ", ", ")
    return (f"whole model {whole['flops'] / 1e9:.3f} GFLOPs / {whole['params'] / 1e6:.3f} M params, mixers {own}"
            " (FLOPs are MACs without candidate elimination)")


def run(args: argparse.Namespace) -> int:
    """Entry point of `asearch export`."""
    from asearch.errors import ArchitectureError, ConfigError
    from asearch.search.architecture import Architecture, load_architecture, load_genome, save_architecture, \
        sha256_file

    sha = sha256_file(args.supernet) if args.supernet else None
    if args.search:
        best = Path(args.search) / "best.json"
        if not best.is_file():
            raise ConfigError(f"--search {args.search}: no best.json (the search has not finished a generation)")
        arch = load_architecture(best)
        if sha is not None and arch.supernet_sha256 not in (None, sha):
            raise ArchitectureError(f"--supernet {args.supernet} (SHA-256 {sha[:12]}...) is not the supernet the "
                                    f"search used ({arch.supernet_sha256[:12]}..., field supernet_sha256 of {best})")
    else:
        if not args.supernet:
            raise ConfigError("--genome needs --supernet (the search space and the checkpoint hash come from it)")
        from asearch.commands.search import space_from_checkpoint

        space = space_from_checkpoint(args.supernet)
        arch = Architecture(genome=space.validate(load_genome(args.genome, space)), space=space,
                            supernet_sha256=sha)
        arch.with_cost()
    if args.supernet and arch.space.variant == "ost":
        from trackers.models.ost_cost import model_cost_of_checkpoint

        arch.model_cost = model_cost_of_checkpoint(args.supernet, arch.flops, arch.params) or arch.model_cost
    if arch.space.variant == "ost" and not arch.model_cost:
        print("asearch export: no whole-model cost (model_cost) in this search's best.json (written by an earlier "
              "version); pass --supernet to compute it")
    save_architecture(arch, args.out)
    print(f"asearch export: {args.out} ({arch.space.name}, {_cost_text(arch)}"
          + (f", validation SUC {arch.validation.suc:.4f}" if arch.validation else "") + ")")
    if args.weights:
        if not args.supernet:
            raise ConfigError("--weights needs --supernet (the weights are copied from it)")
        from asearch.training.recipes import save_inherited_weights

        got = save_inherited_weights(args.supernet, arch.genome, args.weights)
        rest = got["tracker_tensors"]
        print(f"asearch export: inherited subnet weights in {args.weights}"
              + (f" (with the {got['model']} neck and head: {rest} tensors)" if rest else ""))
    return 0
