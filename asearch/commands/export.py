"""`asearch export`: architecture export."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch export`."""
    p = sub.add_parser("export", help="architecture export (not available yet)")
    p.set_defaults(func=not_available("export", "architecture export"))
