"""`asearch track`: run a trained tracker over a dataset and write one results file per sequence.

The model is rebuilt from the checkpoint (self-describing: see :func:`trackers.registry.load_model`); the YAML
gives the tracker hyperparameters (``tracker``), the language settings (``language``) and ``device``. The text
encoder, language mode, missing-language strategy and max_length that the ``language`` section leaves out (or sets
to null) are the checkpoint's (:func:`trackers.registry.resolve_language`), so a model tracks with the encoder it was
trained with; an encoder whose width does not fit the checkpoint is an error that names both. Sections that
belong to other commands (``train``, ``data``, ...) may sit in the same file and are ignored here; a ``model``
section is ignored too (the checkpoint's model config wins).

Initialisation (``--init``): ``box`` (default) starts every video from its first-frame ground truth; ``language``
(the NL setting of paper 004) starts it from the box a grounding model (``--grounding CKPT``, trained with
``asearch retrain --config experiments/grounding/tiny.yaml`` / ``paper.yaml``) predicts from the whole first frame
and the video's sentence (:mod:`trackers.grounding`); that box is the results file's first row, and ``asearch
evaluate --first-frame predicted`` scores it. Videos without a sentence follow ``language.missing`` of this
command's ``language`` section (else of the grounding checkpoint), with a warning per video; the ground truth is
never read.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from asearch.commands import add_config_args
from asearch.config import apply_overrides, from_dict, load_yaml
from asearch.errors import ArchitectureError, ConfigError

__all__ = ["TrackConfig", "add_parser", "run", "load_track_config", "genome_from_args"]

#: top-level sections of an experiment YAML that other commands read
OTHER_SECTIONS = ("model", "loss", "train", "data", "sampler", "search", "pretrain", "retrain", "evaluation",
                  "out_dir", "seed")


@dataclass
class TrackConfig:
    """What `asearch track` reads from the YAML: tracker hyperparameters (validated by the model family's own
    tracker config), language settings and the device."""

    tracker: Dict[str, Any] = field(default_factory=dict)
    language: Dict[str, Any] = field(default_factory=dict)
    device: str = "auto"


def load_track_config(path: Optional[str], overrides=()) -> TrackConfig:
    """Read the ``tracker`` / ``language`` / ``device`` sections (other known sections are skipped)."""
    data = load_yaml(path) if path else {}
    data = apply_overrides(data, overrides)
    mine = {k: v for k, v in data.items() if k not in OTHER_SECTIONS}
    return from_dict(TrackConfig, mine, source=str(path) if path else "--set")


def genome_from_args(args: argparse.Namespace) -> Any:
    """The genome of ``--genome`` (official list-of-lists JSON) or ``--arch`` (architecture JSON), or ``None``."""
    from search_spaces.genome import Genome

    if args.genome and args.arch:
        raise ConfigError("give either --genome or --arch, not both")
    if args.genome:
        try:
            return Genome.from_official(json.loads(args.genome))
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"--genome is not valid JSON ({exc}); expected [[20 ints], [20 ints], "
                                    "[4 ints], [4 ints]]") from None
    if args.arch:
        return genome_from_architecture(args.arch)
    return None


def genome_from_architecture(path: str) -> Any:
    """Hook for ``--arch``: the genome of an architecture JSON written by `asearch export`."""
    from asearch import load_architecture

    return load_architecture(path).genome


def add_parser(sub) -> None:
    """Register `asearch track`."""
    p = sub.add_parser("track", help="run a tracker over a dataset and write <sequence>.txt results",
                       description="Track every sequence of a dataset with a trained model (checkpoint) and write "
                                   "one results file per sequence; finished sequences are skipped (resumable).")
    add_config_args(p)
    p.add_argument("--checkpoint", required=True, help="model checkpoint (stores its model config)")
    p.add_argument("--genome", help="path through a supernet model: official JSON [[20],[20],[4],[4]]")
    p.add_argument("--arch", help="architecture JSON (asearch export) giving the genome of a supernet model, or "
                                  "official:vlt_scar / official:vlt_tt (the paper's searched subnets)")
    p.add_argument("--dataset", required=True, help="dataset name (e.g. synthetic, lasot, tnl2k)")
    p.add_argument("--root", help="dataset root (default: $ASEARCH_<NAME>_ROOT)")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--out", required=True, help="results folder")
    p.add_argument("--batch", type=int, default=1, help="videos tracked in lockstep (default 1)")
    p.add_argument("--limit-videos", type=int, default=None, help="track only the first K sequences")
    p.add_argument("--max-frames", type=int, default=None, help="track only the first M frames of each sequence")
    p.add_argument("--overwrite", action="store_true", help="re-track sequences that already have results")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--init", choices=("box", "language"), default="box",
                   help="first-frame box: box (default) = the ground truth; language = the NL setting, predicted "
                        "by the --grounding model from the first frame and the sentence")
    p.add_argument("--grounding", default=None, metavar="CKPT",
                   help="grounding checkpoint (model.name: grounding) for --init language")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `asearch track`."""
    from asearch.data.registry import build_dataset
    from asearch.io import load_torch
    from asearch.runtime import resolve_device
    from trackers.registry import (build_featurizer, build_tracker, check_language_width, checkpoint_language,
                                   rebuild_model, resolve_language)
    from trackers.runner import run_dataset

    cfg = load_track_config(args.config, args.overrides)
    device = resolve_device(cfg.device)
    init = getattr(args, "init", "box")
    grounding = getattr(args, "grounding", None)
    if init == "language" and not grounding:
        raise ConfigError("--init language needs --grounding CKPT (a grounding model of asearch retrain)")
    if init == "box" and grounding:
        raise ConfigError("--grounding is for --init language (the NL setting); --init box starts from the ground "
                          "truth")
    init_box = None
    if init == "language":
        from trackers.grounding import load_grounding

        missing = (cfg.language or {}).get("missing")
        init_box = load_grounding(grounding, {"missing": missing} if missing else None, device)
    genome = genome_from_args(args)
    ckpt = load_torch(args.checkpoint, map_location="cpu")
    # a family with its own language model (PJVLT) reads that model's config and tokenizer from language.encoder
    # when the YAML or --set gives it, instead of the training machine's path recorded in the checkpoint
    model, model_cfg = rebuild_model(ckpt, str(args.checkpoint), (cfg.language or {}).get("encoder"))
    stored = checkpoint_language(ckpt)  # the encoder, mode and width it was trained with
    del ckpt
    lang_cfg = resolve_language(cfg.language, stored, source=str(args.config or "--set"))
    dataset = build_dataset(args.dataset, root=args.root, split=args.split)
    featurizer = None
    if getattr(model, "uses_language", False):
        featurizer = build_featurizer(lang_cfg, device, stored)
        check_language_width(featurizer, model, lang_cfg, stored, source=f"checkpoint {args.checkpoint}")

    def factory():
        return build_tracker(model, model_cfg, cfg.tracker, featurizer=featurizer, genome=genome, device=device)

    factory()  # fail on a bad config/genome before any video is read
    summary = run_dataset(factory, dataset, args.out, batch_size=args.batch, max_frames=args.max_frames,
                          limit_videos=args.limit_videos, overwrite=args.overwrite, progress=not args.no_progress,
                          init_box=init_box)
    fps = [v for v in summary["fps"].values() if v]
    print(f"asearch track: {len(summary['done'])} sequences tracked, {len(summary['skipped'])} already done; "
          f"results in {args.out}" + (f"; mean {sum(fps) / len(fps):.1f} FPS" if fps else ""))
    return 0
