"""The paper recipes end to end, as a researcher runs them, on a tiny fake LaSOT + TNL2K (issue 19).

For each family (``vlt_scar``, ``vlt_ost``) the script runs, as subprocesses, the CLI commands of the README's
"pipeline at scale": ``asearch pretrain → search → export → retrain → track → evaluate`` with the paper configs of
``experiments/<family>/`` unchanged, shrunk only on the command line:

* budgets: ``train.steps``, ``train.batch_size``, ``train.num_workers``; the search's population, generations,
  validation videos / frames and BN-recalibration batches; its Ray workers and CPUs per trial;
* ``language.encoder=default`` (the packaged MiniLM: nothing is downloaded; the language width follows from it);
* ``data.skip_missing=true`` (the configs also list GOT-10k and COCO: left out with one warning each).

:data:`COMMANDS` is the one list of those commands; :func:`render` prints it as the README's shell block
(``tests/test_paper_pipeline.py`` checks that the README holds exactly that block). The datasets come from
``$ASEARCH_LASOT_ROOT`` / ``$ASEARCH_TNL2K_ROOT``, which the script points at the fake copies it writes
(:func:`write_fake_lasot`, :func:`write_fake_tnl2k`: the native layouts the readers of :mod:`asearch.data.datasets`
expect, frames rendered by :func:`asearch.data.synthetic.synthesize_video`). The fake LaSOT holds, per class, one
video of the official test list, the class's held-out validation video (the search scores those) and two training
videos; the fake TNL2K a train and a test subset, one training video with an empty ``language.txt`` (as TNL2K has).

Paper-size models on CPU: VLT_OST's ViT-B checkpoints are about 1 GB each (a few GB for the run). A stage that has
succeeded is skipped on the next run with the same ``--out`` (a marker in ``runs/.done/``), so a failed run continues
with the stage that failed (a stage killed half-way may need its output folder removed first); ``--fresh`` starts
over. After a run without failures the checkpoints (``*.pt``) are removed unless ``--keep`` is given (the logs,
results and ``table.md`` stay).

Usage::

    python benchmarks/paper_pipeline.py --out paper_run                        # both families
    python benchmarks/paper_pipeline.py --out DIR --family vlt_scar --keep
    python benchmarks/paper_pipeline.py --print-commands                       # the README block
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("vlt_scar", "vlt_ost")

#: budgets of the training commands (the configs' recipes otherwise unchanged; the warm-up must fit in the steps)
TRAIN = ("train.steps=2", "train.batch_size=2", "train.num_workers=0")
WARMUP = {"vlt_scar": ("train.warmup_steps=1",), "vlt_ost": ()}
#: offline and with only LaSOT + TNL2K on disk
OFFLINE = ("language.encoder=default", "data.skip_missing=true")
#: the search's budgets: one generation of two candidates on two held-out LaSOT videos, one worker on the CPU
SEARCH = ("evolution.population=2", "evolution.generations=1", "evolution.topk=2", "evolution.mutations=1",
          "evolution.crossovers=1", "fitness.validation.videos=2", "fitness.validation.frames=4",
          "fitness.bn.batches=1", "fitness.bn.batch_size=2", "fitness.bn.fuse=1", "ray.workers=1",
          "ray.cpus_per_trial=1", "ray.threads_per_trial=1")


@dataclass(frozen=True)
class Command:
    """One CLI call: ``family``, ``stage`` (the table's row name), ``args`` after ``asearch`` with ``{runs}`` for
    the run folder."""

    family: str
    stage: str
    args: Tuple[str, ...]

    def marker(self, runs: Path) -> Path:
        """The file written when the stage has succeeded (a rerun skips it)."""
        return runs / ".done" / f"{self.family}_{self.stage.replace(' ', '_')}"

    def argv(self, runs: str) -> List[str]:
        """The arguments with ``{runs}`` filled in."""
        return [a.replace("{runs}", runs) for a in self.args]


def _sets(*groups: Sequence[str]) -> Tuple[str, ...]:
    return tuple(x for g in groups for s in g for x in ("--set", s))


def _family_commands(f: str) -> List[Command]:
    """The pipeline of family ``f`` (paper configs of ``experiments/<f>/``)."""
    run = f"{{runs}}/{f}"
    supernet = f"{run}/supernet/checkpoints/latest.pt"
    retrained = f"{run}/retrain/checkpoints/latest.pt"
    track_cfg = {d: (f"experiments/{f}/track_{d}.yaml" if f == "vlt_scar" else f"experiments/{f}/track.yaml")
                 for d in ("lasot", "tnl2k")}
    # VLT_SCAR's subnet inherits its supernet weights (--weights); VLT_OST's export has none to give (its ViT is not
    # searched): it needs no --supernet either, the whole-model cost comes with best.json
    weights = (("--supernet", supernet), ("--weights", f"{run}/subnet.pt")) if f == "vlt_scar" else ((), ())
    cmds = [
        Command(f, "pretrain", ("pretrain", "--config", f"experiments/{f}/supernet.yaml", "--out", f"{run}/supernet",
                                "--no-progress") + _sets(TRAIN, WARMUP[f], OFFLINE)),
        Command(f, "search", ("search", "--config", f"experiments/{f}/search.yaml", "--supernet", supernet,
                              "--out", f"{run}/search", "--no-progress") + _sets(SEARCH)),
        Command(f, "export", ("export", "--search", f"{run}/search") + weights[0] + ("--out", f"{run}/arch.json")
                + weights[1]),
        Command(f, "retrain", ("retrain", "--config", f"experiments/{f}/retrain.yaml", "--arch", f"{run}/arch.json")
                + weights[1] + ("--out", f"{run}/retrain", "--no-progress") + _sets(TRAIN, WARMUP[f], OFFLINE)),
    ]
    for d in ("lasot", "tnl2k"):
        results = f"{run}/results/{d}/{f}"
        cmds += [
            Command(f, f"track {d}", ("track", "--config", track_cfg[d], "--checkpoint", retrained, "--dataset", d,
                                      "--split", "test", "--out", results, "--no-progress")),
            Command(f, f"evaluate {d}", ("evaluate", "--results", results, "--dataset", d, "--split", "test",
                                         "--out", f"{run}/evaluation_{d}")),
        ]
    return cmds


#: every command, in order: the one source of the README's "pipeline at scale" block
COMMANDS: List[Command] = [c for f in FAMILIES for c in _family_commands(f)]


def _units(words: Sequence[str]) -> List[str]:
    """Words joined into the units a line must not split: an option with its value."""
    units: List[str] = []
    for w in words:
        if units and units[-1].startswith("--") and " " not in units[-1] and not w.startswith("--") \
                and units[-1] != "--no-progress":
            units[-1] += f" {w}"
        else:
            units.append(w)
    return units


def render(runs: str = "runs") -> str:
    """The shell block of the README: the dataset roots, then every command (wrapped with ``\\`` at 116 columns)."""
    lines = ["export ASEARCH_LASOT_ROOT=/data/LaSOT ASEARCH_TNL2K_ROOT=/data/TNL2K   # the datasets you have"]
    family = None
    for c in COMMANDS:
        if c.family != family:
            lines += ([""] if family else []) + [f"# {c.family}"]
            family = c.family
        words = c.argv(runs)
        line = f"asearch {words[0]}"
        for unit in _units(words[1:]):
            if len(line) + 1 + len(unit) > 114:
                lines.append(line + " \\")
                line = " "
            line += f" {unit}"
        lines.append(line)
    return "\n".join(lines) + "\n"


# ----- the fake datasets --------------------------------------------------------------------------------------------

#: LaSOT videos: per class the official test video, the held-out validation video and two training videos
LASOT_VIDEOS = ("airplane-1", "airplane-2", "airplane-3", "airplane-4",
                "basketball-1", "basketball-2", "basketball-3", "basketball-4")
#: TNL2K videos per split folder (the second training video has an empty language.txt, as some of TNL2K's)
TNL2K_VIDEOS = {"TNL2K_train_subset": ("advSamp_Baseball_video_01", "BF5_Blade_video_01", "Cartoon_Robot_01"),
                "TNL2K_test_subset": ("advSamp_Baseball_game_002-Done", "Bullet_video_08")}


def _videos(n: int, frames: int, size: int, seed: int):
    from asearch.data.synthetic import SyntheticConfig, synthesize_video

    cfg = SyntheticConfig(videos=n, frames=frames, size=size, seed=seed, distractors=1, appearance_changes=0,
                          full_occlusion_prob=0.0, out_of_view_prob=0.0, partial_occlusion_prob=0.0)
    return [synthesize_video(cfg, i) for i in range(n)]


def _write_frames(folder: Path, frames: Sequence, suffix: str = ".jpg") -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(frames):
        cv2.imwrite(str(folder / f"{i + 1:08d}{suffix}"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _box_rows(boxes) -> str:
    return "".join(",".join(str(int(v)) for v in b) + "\n" for b in boxes)


def write_fake_lasot(root: Path, frames: int = 10, size: int = 128, seed: int = 0) -> Dict[str, str]:
    """A tiny LaSOT in its native layout (:data:`LASOT_VIDEOS`, module doc of :mod:`asearch.data.datasets.lasot`):
    ``root/<class>/<class>-<n>/img/00000001.jpg``, ``groundtruth.txt`` (``x,y,w,h``), ``full_occlusion.txt``,
    ``out_of_view.txt`` (one comma-separated 0/1 row), ``nlp.txt``. Returns video -> sentence."""
    sentences = {}
    for name, video in zip(LASOT_VIDEOS, _videos(len(LASOT_VIDEOS), frames, size, seed)):
        folder = Path(root) / name.rsplit("-", 1)[0] / name
        _write_frames(folder / "img", video.frames)
        (folder / "groundtruth.txt").write_text(_box_rows(video.boxes))
        zeros = ",".join("0" for _ in video.boxes) + "\n"
        (folder / "full_occlusion.txt").write_text(zeros)
        (folder / "out_of_view.txt").write_text(zeros)
        (folder / "nlp.txt").write_text(video.sentence + "\n")
        sentences[name] = video.sentence
    return sentences


def write_fake_tnl2k(root: Path, frames: int = 10, size: int = 128, seed: int = 1) -> Dict[str, Optional[str]]:
    """A tiny TNL2K in its native layout (:data:`TNL2K_VIDEOS`, module doc of :mod:`asearch.data.datasets.tnl2k`):
    ``root/TNL2K_{train,test}_subset/<video>/imgs/*.jpg``, ``groundtruth.txt`` (``x,y,w,h``), ``language.txt``.
    Returns video -> sentence (None for the one with an empty ``language.txt``)."""
    names = [(split, v) for split, videos in TNL2K_VIDEOS.items() for v in videos]
    sentences: Dict[str, Optional[str]] = {}
    for (split, name), video in zip(names, _videos(len(names), frames, size, seed)):
        folder = Path(root) / split / name
        _write_frames(folder / "imgs", video.frames)
        (folder / "groundtruth.txt").write_text(_box_rows(video.boxes))
        empty = name == TNL2K_VIDEOS["TNL2K_train_subset"][1]
        (folder / "language.txt").write_text("" if empty else video.sentence + "\n")
        sentences[name] = None if empty else video.sentence
    return sentences


# ----- running ------------------------------------------------------------------------------------------------------

def key_result(cmd: Command, stdout: str, runs: Path) -> str:
    """The stage's headline: final loss (training), best validation SUC (search), cost (export), test SUC."""
    if cmd.stage in ("pretrain", "retrain"):
        m = re.search(r"final loss ([-0-9.naif]+)", stdout)
        return f"final loss {m.group(1)}" if m else ""
    if cmd.stage == "search":
        best = runs / cmd.family / "search" / "best.json"
        if best.is_file():
            doc = json.loads(best.read_text())
            return f"best SUC {doc.get('validation', {}).get('suc', float('nan')):.3f}"
    if cmd.stage == "export":
        m = re.search(r"(whole model [0-9.]+ GFLOPs / [0-9.]+ M params)|\(vlt\w*, ([0-9.]+ GFLOPs, [0-9.]+ M params)",
                      stdout)
        return (m.group(1) or m.group(2)) if m else ""
    if cmd.stage.startswith("track"):
        m = re.search(r"(\d+) sequences tracked.*mean ([0-9.]+) FPS", stdout)
        return f"{m.group(1)} videos, {m.group(2)} FPS" if m else ""
    if cmd.stage.startswith("evaluate"):
        summary = runs / cmd.family / f"evaluation_{cmd.stage.split()[1]}" / "summary.csv"
        if summary.is_file():
            rows = list(csv.DictReader(summary.open()))
            suc = next((v for k, v in rows[0].items() if k.strip().lower().startswith("suc")), None) if rows else None
            return f"test SUC {float(suc):.1f} %" if suc is not None else ""
    return ""


def run_command(cmd: Command, runs: Path, env: Dict[str, str], log_dir: Path) -> Tuple[float, int, str]:
    """Run ``python -m asearch ...`` from the repository root; returns (seconds, exit code, key result)."""
    log = log_dir / f"{cmd.family}_{cmd.stage.replace(' ', '_')}.log"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "asearch"] + cmd.argv(str(runs)), cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    log.write_text(proc.stdout)
    if proc.returncode == 0:
        cmd.marker(runs).parent.mkdir(parents=True, exist_ok=True)
        cmd.marker(runs).write_text(f"{seconds:.1f}\n")
    if proc.returncode == 0:
        return seconds, 0, key_result(cmd, proc.stdout, runs)
    last = proc.stdout.strip().splitlines()
    return seconds, proc.returncode, last[-1] if last else ""  # the error line


def table(rows: Sequence[Tuple[Command, float, int, str]], runs: str) -> str:
    """The markdown table of a run: stage, command, seconds, exit code, key result."""
    out = ["| family | stage | command | seconds | exit | result |", "|---|---|---|---:|---:|---|"]
    for cmd, seconds, code, result in rows:
        short = " ".join(w for w in cmd.argv(runs)[:3])
        out.append(f"| {cmd.family} | {cmd.stage} | `asearch {short} ...` | "
                   f"{'-' if seconds < 0 else f'{seconds:.0f}'} | {code} | {result} |")
    return "\n".join(out) + "\n"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Run the README's 'pipeline at scale' (paper configs, budgets shrunk on "
                                            "the command line) on a tiny fake LaSOT + TNL2K and print a table.")
    p.add_argument("--out", type=Path, help="work folder: the fake datasets, runs/, logs/, table.md")
    p.add_argument("--family", choices=FAMILIES + ("both",), default="both")
    p.add_argument("--keep", action="store_true", help="keep the checkpoints (default: removed at the end)")
    p.add_argument("--fresh", action="store_true", help="start over (default: skip the stages that succeeded before)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the commands (default: unset)")
    p.add_argument("--print-commands", action="store_true", help="print the README block and exit")
    args = p.parse_args(argv)
    if not args.print_commands and args.out is None:
        p.error("--out is required (unless --print-commands)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the fake datasets, run the commands of the chosen families, print and save the table."""
    args = parse_args(argv)
    if args.print_commands:
        print(render(), end="")
        return 0
    out = args.out.resolve()
    if args.fresh and out.exists():
        shutil.rmtree(out)
    runs, logs = out / "runs", out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    lasot, tnl2k = out / "LaSOT", out / "TNL2K"
    if not lasot.is_dir():
        write_fake_lasot(lasot)
    if not tnl2k.is_dir():
        write_fake_tnl2k(tnl2k)
    env = dict(os.environ, ASEARCH_LASOT_ROOT=str(lasot), ASEARCH_TNL2K_ROOT=str(tnl2k), PYTHONUNBUFFERED="1")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    families = FAMILIES if args.family == "both" else (args.family,)
    rows: List[Tuple[Command, float, int, str]] = []
    failed = set()
    for cmd in (c for c in COMMANDS if c.family in families):
        if cmd.family in failed:
            rows.append((cmd, -1.0, -1, "not run (an earlier stage failed)"))
            continue
        if cmd.marker(runs).exists():
            rows.append((cmd, -1.0, 0, "done before"))
            continue
        print(f"[paper_pipeline] {cmd.family} {cmd.stage}: asearch {' '.join(cmd.argv(str(runs)))}", flush=True)
        seconds, code, result = run_command(cmd, runs, env, logs)
        print(f"[paper_pipeline]   {seconds:.0f} s, exit {code}: {result}", flush=True)
        rows.append((cmd, seconds, code, result))
        if code != 0:
            failed.add(cmd.family)
    text = table(rows, "runs")
    (out / "table.md").write_text(text)
    print("\n" + text, end="")
    if not args.keep and not failed:  # a failed run keeps them, to continue from
        for ckpt in runs.rglob("*.pt"):
            ckpt.unlink()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
