"""`asearch retrain`: subnet retraining."""
from __future__ import annotations

from asearch.commands import not_available


def add_parser(sub) -> None:
    """Register `asearch retrain`."""
    p = sub.add_parser("retrain", help="subnet retraining (not available yet)")
    p.set_defaults(func=not_available("retrain", "subnet retraining"))
