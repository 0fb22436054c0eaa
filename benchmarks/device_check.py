"""The prepared device check (issue 25): what the toolkit does on CUDA, in one run of a few minutes.

Four parts, one markdown report (stdout and ``--out``):

1. ``pytest -m cuda`` (``tests/test_cuda.py``): one mixed-precision training step of every paper recipe at paper
   size, an SPOS pretraining step of the paper-size supernet, the search fitness on CUDA against CPU;
2. ``bench_tracking.py --device cuda``: per-frame latency of every tracker at paper size, the paper's FPS beside it;
3. ``bench_search.py --paper --device cuda`` at the paper's fitness settings (20 videos x 11 frames, 200 BN batches
   of 8): candidates per GPU-hour and the projected wall time of the paper's search (50 generations x 20
   candidates = 1000 candidates);
4. peak GPU memory of one training step of every paper recipe at the YAML's batch size.

``--cpu`` runs the CPU half with tiny sizes (the CUDA tests are collected and skip, the two benchmarks run on CPU at
tiny widths, no memory part), so the script is exercised by the suite (``tests/test_device_check.py``) and cannot
rot on machines without a GPU.

    python benchmarks/device_check.py --out device_check.md          # on a machine with CUDA (< 8 minutes)
    python benchmarks/device_check.py --cpu                          # the CPU half (seconds)
"""
from __future__ import annotations

import argparse
import datetime
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
PAPER_SEARCH_CANDIDATES = 50 * 20  # paper 000: 50 generations of 20 candidates


def _run(cmd: List[str], timeout: float) -> Tuple[int, str, float]:
    """Run ``cmd`` in the repository root; (exit code, stdout + stderr, seconds)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
        out = "\n".join(ln for ln in proc.stdout.splitlines() if not ln.startswith("Loading weights"))  # tqdm
        return proc.returncode, out, time.perf_counter() - t0
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, out + f"\n(timed out after {timeout:.0f} s)", time.perf_counter() - t0


def _section(title: str, rc: int, seconds: float, body: str) -> str:
    status = "ok" if rc == 0 else f"exit code {rc}"
    return f"## {title} ({status}, {seconds:.0f} s)\n\n{body.strip()}\n"


def cuda_tests(cpu: bool) -> Tuple[str, bool]:
    """Part 1: the ``cuda``-marked tests; on CPU they are collected and skip."""
    rc, out, sec = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", "-rs",
                         "tests/test_cuda.py"], timeout=600)
    summary = [ln for ln in out.splitlines() if re.search(r"\b(passed|failed|skipped|error)", ln)]
    body = "\n".join(f"    {ln}" for ln in summary[-12:]) or out[-2000:]
    return _section("CUDA tests: pytest -m cuda", rc, sec, body), rc == 0


def tracking(cpu: bool) -> Tuple[str, bool]:
    """Part 2: ``bench_tracking.py`` (paper sizes on CUDA; tiny on CPU)."""
    args = ["--device", "cpu", "--small", "--frames", "2", "--warmup", "1", "--videos", "1"] if cpu else \
        ["--device", "cuda", "--frames", "50", "--warmup", "10"]
    rc, out, sec = _run([sys.executable, "benchmarks/bench_tracking.py", *args], timeout=300)
    return _section(f"Tracking latency: bench_tracking.py {' '.join(args)}", rc, sec, out), rc == 0


def search(cpu: bool) -> Tuple[str, bool]:
    """Part 3: ``bench_search.py`` and the projected wall time of the paper's search."""
    args = ["--device", "cpu", "--videos", "2", "--frames", "3", "--candidates", "1", "--bn-batches", "1",
            "--bn-fuse", "1"] if cpu else \
        ["--paper", "--device", "cuda", "--videos", "20", "--frames", "11", "--bn-batches", "200",
         "--bn-batch-size", "8", "--candidates", "3"]
    rc, out, sec = _run([sys.executable, "benchmarks/bench_search.py", *args], timeout=420)
    m = re.search(r"^\| batched \| ([0-9.]+) \|", out, flags=re.M)
    extra = ""
    if m:
        per_min = float(m.group(1))
        extra = (f"\n\nbatched: {per_min * 60:.0f} candidates per {'CPU' if cpu else 'GPU'}-hour; the paper's search "
                 f"({PAPER_SEARCH_CANDIDATES} candidates) would take {PAPER_SEARCH_CANDIDATES / per_min / 60:.1f} h "
                 f"at these settings (paper 000: the whole search in about 15 GPU-hours, pretraining included)")
    return _section(f"Search fitness: bench_search.py {' '.join(args)}", rc, sec, out + extra), rc == 0 and bool(m)


def memory(cpu: bool) -> Tuple[str, bool]:
    """Part 4: peak CUDA memory of one training step of each paper recipe at the YAML's batch size."""
    if cpu:
        return "## Peak GPU memory (not measured: --cpu)\n", True
    sys.path.insert(0, str(ROOT / "tests"))
    from test_cuda import PAPER, paper_step, synthetic_root  # noqa: E402  (the CUDA tests' helper)

    from asearch.config import experiments_dir
    from asearch.training.recipes import load_experiment

    rows = ["| recipe | batch | AMP | peak memory (GiB) | step s |", "| --- | --- | --- | --- | --- |"]
    ok = True
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = synthetic_root(Path(tmp) / "synth", videos=8)
        for family, (path, _, _, _) in sorted(PAPER.items()):
            batch = load_experiment(experiments_dir() / path).train.batch_size
            t0 = time.perf_counter()
            try:
                got = paper_step(family, "cuda", root, Path(tmp) / family, batch_size=batch)
                rows.append(f"| {family} ({path}) | {batch} | {got['amp'].replace('torch.', '')} | "
                            f"{got['peak_bytes'] / 2 ** 30:.2f} | {time.perf_counter() - t0:.1f} |")
            except Exception as exc:  # one failing recipe must not hide the others' rows
                ok = False
                rows.append(f"| {family} ({path}) | {batch} | - | failed: {type(exc).__name__}: {exc} | - |")
    return _section("Peak GPU memory, one training step at the paper batch size", 0 if ok else 1,
                    time.perf_counter() - t_all, "\n".join(rows)), ok


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu", action="store_true", help="the CPU half only, at tiny sizes (what the suite runs)")
    p.add_argument("--out", help="also write the report to this markdown file")
    args = p.parse_args(argv)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("device_check: no CUDA device here; run with --cpu for the CPU half", file=sys.stderr)
        return 2
    device = "CPU only (--cpu)" if args.cpu else torch.cuda.get_device_name(0)
    head = (f"# ASearch device check, {datetime.date.today().isoformat()}\n\n{device}; torch {torch.__version__} "
            f"(CUDA {torch.version.cuda}); {platform.platform()}, python {platform.python_version()}\n")
    parts, ok = [head], True
    print(head, flush=True)
    for part in (cuda_tests, tracking, search, memory):
        text, good = part(args.cpu)
        parts.append(text)
        ok &= good
        print(text, flush=True)
    report = "\n".join(parts)
    if args.out:
        Path(args.out).write_text(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
