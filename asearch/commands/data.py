"""`asearch data`: datasets and the synthetic benchmark."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch data`."""
    p = sub.add_parser("data", help="datasets and the synthetic benchmark (not available yet)")
    p.set_defaults(func=not_available("data", "datasets and the synthetic benchmark"))
