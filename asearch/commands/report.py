"""`asearch report`: comparison report."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch report`."""
    p = sub.add_parser("report", help="comparison report (not available yet)")
    p.set_defaults(func=not_available("report", "comparison report"))
