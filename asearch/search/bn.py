"""Batch-norm recalibration of one supernet path before it is scored (SPOS search; paper 000 §3.3).

The running statistics a supernet collected during pretraining mix every sampled path, so they are wrong for any
single path. Before a candidate is scored its statistics are rebuilt: every BatchNorm layer's running mean and
variance are reset, ``K`` fixed training batches are forwarded along the candidate's path in train mode under
``torch.no_grad()``, and the model is put back in eval mode.

Choice: ``momentum = None`` during recalibration, i.e. PyTorch's cumulative moving average. After ``K`` batches
with per-batch means ``m_k`` and unbiased variances ``v_k`` the running statistics are exactly

    running_mean = (1/K) Σ_k m_k,    running_var = (1/K) Σ_k v_k

(every batch weighs the same, independent of the order; with an exponential momentum the last batches would
dominate). The layers' own momenta are restored afterwards. Layers that do not track running statistics are left
alone; no parameter changes (``no_grad``; BatchNorm affine weights are not touched by a forward pass).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, List, Tuple

import torch
from torch import nn

__all__ = ["batchnorm_layers", "reset_batchnorm", "recalibrate_bn"]


def batchnorm_layers(model: nn.Module) -> List[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1d/2d/3d, SyncBatchNorm) of ``model`` that tracks running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def reset_batchnorm(model: nn.Module) -> List[Tuple[nn.Module, Any]]:
    """Reset the running statistics of every BatchNorm layer and switch it to the cumulative average
    (``momentum=None``); returns ``[(layer, old momentum)]`` to restore."""
    saved = []
    for m in batchnorm_layers(model):
        saved.append((m, m.momentum))
        m.reset_running_stats()
        m.momentum = None
    return saved


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any], forward: Callable[[Any], Any]) -> dict:
    """Recalibrate ``model``'s BatchNorm statistics on ``batches`` (see the module docstring).

    Args:
        model: the network whose BatchNorm layers are recalibrated (left in eval mode).
        batches: the fixed recalibration batches (an iterable; consumed once).
        forward: ``forward(batch)`` runs the model on one batch along the candidate's path (its output is dropped).

    Returns:
        ``{"batches": K, "layers": number of BatchNorm layers, "seconds": wall time}``.
    """
    t0 = time.perf_counter()
    saved = reset_batchnorm(model)
    n = 0
    model.train()
    try:
        for batch in batches:
            forward(batch)
            n += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    return {"batches": n, "layers": len(saved), "seconds": time.perf_counter() - t0}
