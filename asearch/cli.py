"""``asearch`` command line: one subcommand per stage of the pipeline.

Each subcommand lives in ``asearch/commands/<name>.py`` and exposes ``add_parser(subparsers)`` (which registers
its arguments and sets ``func``) and nothing else is needed here.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from asearch import __version__
from asearch.errors import ASearchError

COMMANDS = ["data", "pretrain", "search", "rank", "export", "retrain", "track", "evaluate", "report", "demo"]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all subcommands registered)."""
    parser = argparse.ArgumentParser(
        prog="asearch",
        description="ASearch: architecture search for vision-language object tracking "
        "(pretrain a SPOS supernet, search by tracking SUC, export, retrain, track, evaluate).",
    )
    parser.add_argument("--version", action="version", version=f"asearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"asearch.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``asearch`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except ASearchError as exc:
        print(f"asearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asearch {args.command}: interrupted; state written so far is kept (use --resume where offered)",
              file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
