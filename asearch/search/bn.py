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

Ghost batches (``parts``): several recalibration batches can go through the network in one forward pass, stacked
along the batch dimension. Every BatchNorm layer then splits its input back into the ``parts`` batches, normalises
each with its own statistics and counts each as one batch, which is exactly what ``parts`` separate passes compute
(every other layer of a tracker acts on each sample alone; the one cross-sample term, the contrastive loss, is
not computed during recalibration). The results agree with separate passes up to float rounding; one large pass
costs less than several small ones (on CPU with the tiny supernet, 4 batches of 8 pairs: ~20 % less).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["batchnorm_layers", "reset_batchnorm", "Recalibrator", "recalibrate_bn"]


def batchnorm_layers(model: nn.Module) -> List[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1d/2d/3d, SyncBatchNorm) of ``model`` that tracks running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def reset_batchnorm(model: nn.Module, layers: Optional[List[nn.Module]] = None) -> List[Tuple[nn.Module, Any]]:
    """Reset the running statistics of every BatchNorm layer (``layers``: the ones :func:`batchnorm_layers`
    already found) and switch it to the cumulative average (``momentum=None``); returns ``[(layer, old momentum)]``
    to restore."""
    saved = []
    for m in batchnorm_layers(model) if layers is None else layers:
        saved.append((m, m.momentum))
        m.reset_running_stats()
        m.momentum = None
    return saved


class Recalibrator:
    """BN recalibration of one model, reused for many genomes (a search worker scores hundreds).

    The BatchNorm layers and the module list are collected once. Switching the model to train mode and back sets
    each module's ``training`` flag directly, which is what ``nn.Module.train`` does, without its recursive walk of
    the supernet's ~1500 modules (a few milliseconds per call); a model with a module that overrides ``train``
    goes through ``model.train()`` / ``model.eval()``.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.modules = list(model.modules())
        self._all_bn = [m for m in self.modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.layers = [m for m in self._all_bn if m.track_running_stats]  # batchnorm_layers(model)
        self._plain = all(type(m).train is nn.Module.train for m in self.modules)

    def set_training(self, mode: bool) -> None:
        """``model.train(mode)``."""
        if not self._plain:
            self.model.train(mode)
            return
        for m in self.modules:
            m.__dict__["training"] = mode  # where nn.Module keeps the flag (it is not a parameter/buffer/module)

    def __call__(self, batches: Iterable[Any], forward: Callable[[Any], Any],
                 parts: Union[int, Sequence[int]] = 1) -> dict:
        """Recalibrate on ``batches`` (see :func:`recalibrate_bn`); the model is left in eval mode.

        ``parts``: each batch stacks that many recalibration batches of equal size (ghost batches, see the module
        docstring); one number for every batch or one per batch. ``batches`` in the result counts recalibration
        batches.
        """
        per_batch = [int(parts)] if isinstance(parts, int) else [int(p) for p in parts]
        if not per_batch or min(per_batch) < 1:
            raise ValueError(f"parts must be >= 1, got {parts}")
        t0 = time.perf_counter()
        saved = reset_batchnorm(self.model, self.layers)
        n = 0
        self.set_training(True)
        # every BatchNorm layer (also those without running statistics: they normalise by batch statistics too)
        ghosts = [_GhostForward(m) for m in self._all_bn] if max(per_batch) > 1 else []
        for g in ghosts:  # an instance attribute shadows the class's forward until it is removed
            g.layer.forward = g
        try:
            with torch.no_grad():
                for i, batch in enumerate(batches):
                    k = per_batch[0] if isinstance(parts, int) else per_batch[i]
                    for g in ghosts:
                        g.parts = k
                    forward(batch)
                    n += k
        finally:
            for g in ghosts:
                g.layer.__dict__.pop("forward", None)
            for m, momentum in saved:
                m.momentum = momentum
            self.set_training(False)
        return {"batches": n, "layers": len(self.layers), "seconds": time.perf_counter() - t0}


class _GhostForward:
    """A BatchNorm layer's train-mode forward on ``parts`` stacked batches: each part normalised with its own
    statistics and counted as one batch (what the layer's own forward does, once per part)."""

    def __init__(self, layer: nn.modules.batchnorm._BatchNorm, parts: int = 1):
        self.layer, self.parts = layer, parts

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m, parts = self.layer, self.parts
        if x.shape[0] % parts:
            raise ValueError(f"BN recalibration: a batch of {x.shape[0]} cannot be split into {parts} equal "
                             "recalibration batches")
        outs = []
        for xk in x.chunk(parts):
            factor = 0.0
            if m.track_running_stats and m.num_batches_tracked is not None:
                m.num_batches_tracked.add_(1)
                factor = 1.0 / float(m.num_batches_tracked) if m.momentum is None else m.momentum
            outs.append(F.batch_norm(xk, m.running_mean, m.running_var, m.weight, m.bias, True, factor, m.eps))
        return torch.cat(outs, 0)


def recalibrate_bn(model: nn.Module, batches: Iterable[Any], forward: Callable[[Any], Any]) -> dict:
    """Recalibrate ``model``'s BatchNorm statistics on ``batches`` (see the module docstring).

    Args:
        model: the network whose BatchNorm layers are recalibrated (left in eval mode).
        batches: the fixed recalibration batches (an iterable; consumed once).
        forward: ``forward(batch)`` runs the model on one batch along the candidate's path (its output is dropped).

    Returns:
        ``{"batches": K, "layers": number of BatchNorm layers, "seconds": wall time}``.
    """
    return Recalibrator(model)(batches, forward)
