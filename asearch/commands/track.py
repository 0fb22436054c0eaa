"""`asearch track`: tracking a dataset."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch track`."""
    p = sub.add_parser("track", help="tracking a dataset (not available yet)")
    p.set_defaults(func=not_available("track", "tracking a dataset"))
