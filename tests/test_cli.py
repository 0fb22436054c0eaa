"""The CLI lists every subcommand of the pipeline."""
import subprocess
import sys

from asearch.cli import COMMANDS, build_parser


def test_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "asearch", "--help"], capture_output=True, text=True, check=True).stdout
    for name in ["data", "pretrain", "search", "export", "retrain", "track", "evaluate", "report", "demo"]:
        assert name in out
    assert set(COMMANDS) == {"data", "pretrain", "search", "rank", "export", "retrain", "track", "evaluate", "report", "demo"}
    build_parser()
