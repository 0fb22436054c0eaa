"""Layering: CTRTNL's building blocks (trackers/ops, the AdaRS and TSR modules, their loss, Algorithm 1's switch)
import nothing from the higher layers (asearch, supernets, search_spaces), each checked in a fresh interpreter."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HIGHER = ("asearch", "supernets", "search_spaces")


@pytest.mark.parametrize("modules", [
    ["trackers.ops", "trackers.models.ctrtnl_blocks", "trackers.losses.ctrtnl"],
    ["trackers.models.ctrtnl_tsr"],
    ["trackers.inference.ctrtnl_switch"],
])
def test_imports_no_higher_layer(modules):
    code = (f"import sys, {', '.join(modules)}; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HIGHER!r}))")
    root = str(Path(__file__).resolve().parents[2])                         # this checkout, not an installed copy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=root)
    assert out.stdout.strip() == "[]"
