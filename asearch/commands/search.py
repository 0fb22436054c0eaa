"""`asearch search`: evolutionary search."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch search`."""
    p = sub.add_parser("search", help="evolutionary search (not available yet)")
    p.set_defaults(func=not_available("search", "evolutionary search"))
