"""Margins of the suite's outcome tests under perturbations that change float rounding as another CPU does.

Runs the tests marked ``outcome`` (those that assert "learns", "beats", "improves") once per perturbation: training
seeds shifted by ``ASEARCH_TEST_SEED`` and the thread count set by ``OMP_NUM_THREADS``. Each check records the
quantity it measured and the threshold it must clear (``tests/conftest.py``); this prints, per check, the values
seen, the smallest margin (value - needed) and whether it is at least twice the threshold's own size (the robustness
rule of issue 15: the smallest margin seen >= 2x what the assertion needs; for a threshold of 0 the smallest value
must be > 0).

    python benchmarks/outcome_margins.py                       # seeds 0 1 2 x threads 1 2 (6 perturbations)
    python benchmarks/outcome_margins.py --seeds 0 1 --threads 1 -k issue6 --jobs 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]


def run_one(seed: int, threads: int, log: Path, select: List[str]) -> Tuple[int, int, int, float]:
    """One pytest run of the outcome tests; returns ``(seed, threads, exit code, seconds)``."""
    env = dict(os.environ, ASEARCH_TEST_SEED=str(seed), OMP_NUM_THREADS=str(threads), ASEARCH_OUTCOME_LOG=str(log))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "outcome", *select]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode not in (0, 1):
        print(proc.stdout[-3000:], file=sys.stderr)
    return seed, threads, proc.returncode, time.perf_counter() - t0


def table(records: List[dict]) -> str:
    """The markdown table of the records (one row per test and check)."""
    groups: Dict[Tuple[str, str], List[dict]] = {}
    for r in records:
        groups.setdefault((r["test"], r["check"]), []).append(r)
    lines = ["| test | check | needed | values (seed/threads) | min margin | robust (>= 2x) |",
             "|---|---|---:|---|---:|:---:|"]
    for (test, check), rs in sorted(groups.items()):
        needed = rs[0]["needed"]
        rs = sorted(rs, key=lambda r: (r["seed"], r["threads"]))
        values = ", ".join(f"{r['value']:.3f} ({r['seed']}/{r['threads']})" for r in rs)
        low = min(r["value"] for r in rs)
        margin = low - needed
        robust = margin >= abs(needed) if needed else low > 0  # value >= 2 * needed
        lines.append(f"| {test.split('::', 1)[-1]} | {check} | {needed:g} | {values} | {margin:.3f} | "
                     f"{'yes' if robust else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--jobs", type=int, default=1, help="perturbations run at once (1-thread runs only)")
    p.add_argument("-k", default=None, help="pytest -k expression")
    p.add_argument("--log", default=None, help="JSONL file of the records (default: a temporary file)")
    args = p.parse_args(argv)
    log = Path(args.log or tempfile.mkstemp(suffix=".jsonl", prefix="outcomes_")[1])
    log.write_text("")
    select = ["-k", args.k] if args.k else []
    runs = [(s, t) for t in args.threads for s in args.seeds]
    single = [r for r in runs if r[1] == 1]
    multi = [r for r in runs if r[1] != 1]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(args.jobs, 1)) as pool:
        done = list(pool.map(lambda r: run_one(*r, log, select), single))
    done += [run_one(*r, log, select) for r in multi]  # several threads each: one at a time
    for seed, threads, rc, sec in done:
        print(f"seed {seed}, {threads} thread(s): pytest exit {rc} in {sec:.0f} s")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    print(f"\n{len(records)} checks in {time.perf_counter() - t0:.0f} s; records in {log}\n")
    print(table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
