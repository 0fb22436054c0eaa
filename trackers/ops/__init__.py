"""Tensor operators with no model of their own (pure PyTorch, CPU and CUDA, no compiled extension)."""
from trackers.ops.prroi_pool import hat_integral, prroi_pool2d

__all__ = ["prroi_pool2d", "hat_integral"]
