"""One module per ``asearch`` subcommand; each defines ``add_parser(subparsers)``."""
from __future__ import annotations

import argparse


def add_config_args(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """The ``--config`` / ``--set`` pair shared by every config-driven command."""
    parser.add_argument("--config", required=required, help="YAML config file (see experiments/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.lr=0.01 (repeatable)")
