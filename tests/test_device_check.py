"""The CPU half of the prepared device check (issue 25) runs, so the script cannot rot without a GPU."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_device_check_cpu_half_writes_every_part(tmp_path):
    out = tmp_path / "device_check.md"
    proc = subprocess.run([sys.executable, "benchmarks/device_check.py", "--cpu", "--out", str(out)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = out.read_text()
    for title in ("## CUDA tests: pytest -m cuda (ok", "## Tracking latency: bench_tracking.py --device cpu",
                  "## Search fitness: bench_search.py --device cpu", "## Peak GPU memory (not measured: --cpu)"):
        assert title in report, title
    assert "| VLT_SCAR / SiamCAR |" in report                       # the tracking table came through
    assert "candidates per CPU-hour; the paper's search (1000 candidates)" in report
    if not torch.cuda.is_available():
        assert " skipped" in report and " passed" not in report      # the CUDA tests skip here, none fails


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
def test_device_check_refuses_the_gpu_half_without_cuda():
    proc = subprocess.run([sys.executable, "benchmarks/device_check.py"], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device here; run with --cpu" in proc.stderr
