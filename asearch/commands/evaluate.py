"""`asearch evaluate`: OPE evaluation of results."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch evaluate`."""
    p = sub.add_parser("evaluate", help="OPE evaluation of results (not available yet)")
    p.set_defaults(func=not_available("evaluate", "OPE evaluation of results"))
