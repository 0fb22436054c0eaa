"""`asearch data`: generate the synthetic benchmark (`synth`) and summarise a dataset (`info`)."""
from __future__ import annotations

import argparse
import json
from typing import Any, Dict

from asearch.commands import add_config_args


def add_parser(sub) -> None:
    """Register `asearch data synth` and `asearch data info`."""
    p = sub.add_parser("data", help="datasets and the synthetic benchmark",
                       description="Generate the synthetic vision-language tracking benchmark or summarise a dataset.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    dsub.required = True

    s = dsub.add_parser("synth", help="generate the synthetic VL tracking benchmark (LaSOT layout)",
                        description="Write generated videos with boxes, occlusion/out-of-view flags, a sentence and "
                                    "four attribute words per video, in the LaSOT layout, plus train/val/test splits.")
    s.add_argument("--out", required=True, help="output folder (new or empty; see --overwrite)")
    s.add_argument("--videos", type=int, help="number of videos (default 20)")
    s.add_argument("--frames", type=int, help="frames per video (default 60)")
    s.add_argument("--size", type=int, help="frame side in pixels (default 128)")
    s.add_argument("--seed", type=int, help="seed (default 0); same seed, same files")
    s.add_argument("--distractors", type=int, help="distractor objects per video (default 2)")
    s.add_argument("--format", dest="image_format", choices=["jpg", "png"], help="image format (default jpg)")
    s.add_argument("--overwrite", action="store_true", help="replace a benchmark already in --out")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(s)
    s.set_defaults(func=run_synth)

    i = dsub.add_parser("info", help="print counts of a dataset split",
                        description="Build a dataset reader (asearch.data.registry) and print its counts.")
    i.add_argument("--dataset", required=True, help="dataset name, e.g. synthetic, lasot, tnl2k")
    i.add_argument("--root", help="dataset root (default: $ASEARCH_<NAME>_ROOT)")
    i.add_argument("--split", default="test", help="split name (default test)")
    i.add_argument("--json", action="store_true", help="print the counts as JSON")
    i.set_defaults(func=run_info)


def run_synth(args: argparse.Namespace) -> int:
    """`asearch data synth`: generate the benchmark and print where it went."""
    from asearch.config import apply_overrides, from_dict, load_yaml
    from asearch.data.synthetic import SyntheticConfig, generate_benchmark

    data: Dict[str, Any] = load_yaml(args.config) if args.config else {}
    data = apply_overrides(data, args.overrides)
    for key in ("videos", "frames", "size", "seed", "distractors", "image_format"):
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    cfg = from_dict(SyntheticConfig, data, source=args.config or "command line").validate()

    bar = None
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.videos, desc="synthetic videos", unit="video", leave=False)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(1)
            bar.set_postfix_str(name)
    try:
        out = generate_benchmark(args.out, config=cfg, overwrite=args.overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    meta = json.loads((out / "meta.json").read_text())
    videos = meta["videos"]
    hidden = sum(v["full_occlusion_frames"] for v in videos.values())
    away = sum(v["out_of_view_frames"] for v in videos.values())
    print(f"wrote the synthetic benchmark to {out}")
    print(f"  {cfg.videos} videos x {cfg.frames} frames of {cfg.size}x{cfg.size} ({cfg.image_format}), seed {cfg.seed}, "
          f"{cfg.distractors} distractors per video")
    print(f"  splits: " + ", ".join(f"{k} {v}" for k, v in meta["splits"].items()))
    print(f"  frames fully occluded: {hidden}, out of view: {away} (of {cfg.videos * cfg.frames})")
    first = next(iter(videos))
    print(f"  e.g. {first}: \"{videos[first]['sentence']}\" / {videos[first]['attributes']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """`asearch data info`: number of videos, frames, visible frames and videos with language."""
    from asearch.data.registry import build_dataset

    ds = build_dataset(args.dataset, args.root, args.split)
    counts = {"dataset": args.dataset, "split": args.split, "videos": len(ds), "frames": 0, "visible_frames": 0,
              "with_sentence": 0, "with_attributes": 0}
    for k in range(len(ds)):
        seq = ds[k]
        counts["frames"] += len(seq)
        counts["visible_frames"] += int(seq.visible.sum())
        counts["with_sentence"] += int(bool(seq.sentence))
        counts["with_attributes"] += int(seq.attributes is not None)
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"{args.dataset} / {args.split}: {counts['videos']} videos, {counts['frames']} frames "
              f"({counts['visible_frames']} with a visible target), {counts['with_sentence']} with a sentence, "
              f"{counts['with_attributes']} with attribute words")
    return 0
