"""`asearch demo`: end-to-end demo."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch demo`."""
    p = sub.add_parser("demo", help="end-to-end demo (not available yet)")
    p.set_defaults(func=not_available("demo", "end-to-end demo"))
