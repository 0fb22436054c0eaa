"""`asearch pretrain`: supernet pretraining."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch pretrain`."""
    p = sub.add_parser("pretrain", help="supernet pretraining (not available yet)")
    p.set_defaults(func=not_available("pretrain", "supernet pretraining"))
