"""``asearch`` command line: one subcommand per stage of the pipeline.

Each subcommand lives in ``asearch/commands/<name>.py`` and exposes ``add_parser(subparsers)`` (which registers
its arguments and sets ``func``) and nothing else is needed here.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
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


class _ConsoleFormatter(logging.Formatter):
    """``asearch: message`` for info, ``asearch: warning: message`` above."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return f"asearch: {level}{record.getMessage()}"


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (not the one of its creation: tests and wrappers swap it)."""

    asearch_console = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # noqa: BLE001 (logging's own policy: report, never raise)
            self.handleError(record)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 (warnings API)
    return f"asearch: warning: {message}\n"


def configure_console() -> None:
    """The toolkit's log records (logger ``asearch``, info and above) on stderr as plain lines, and Python warnings
    as one line without the source line that raised them; done once per process."""
    logger = logging.getLogger("asearch")
    if not any(getattr(h, "asearch_console", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_ConsoleFormatter())
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    warnings.formatwarning = _one_line_warning


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``asearch`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_console()
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
