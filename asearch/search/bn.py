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

Stochastic layers stay in eval mode during recalibration: dropout and stochastic depth (``DropPath``: VLT_OST's ViT
has ``drop_path`` 0.1, VLT_TT's head dropout and attention dropout) would otherwise draw from the unseeded global RNG, so the same
candidate got a different SUC in every search, and the statistics would be those of features the tracker never
sees (it runs in eval mode, without them).

Ghost batches (``parts``): several recalibration batches can go through the network in one forward pass, stacked
along the batch dimension. Every BatchNorm layer then splits its input back into the ``parts`` batches, normalises
each with its own statistics and counts each as one batch, which is exactly what ``parts`` separate passes compute
(every other layer of a tracker acts on each sample alone; the one cross-sample term, the contrastive loss, is
not computed during recalibration). The results agree with separate passes up to float rounding; one large pass
costs less than several small ones (on CPU with the tiny supernet, 4 batches of 8 pairs: ~20 % less).

Each part's output is written in place into the stacked output (PyTorch's own kernel, bit-identical to normalising
the parts one by one and concatenating them, without the copy).

Kernel ``channels_last`` (opt-in, ``Recalibrator(model, kernel="channels_last")``, ``fitness.bn.kernel``):
channels-last tensors on the CPU (the search worker's layout, :func:`supernets.blocks.to_channels_last`) take a
batch norm of their own during recalibration: PyTorch's kernel for that layout is slow with few channels (a
32×8×64×64 batch in 4 parts: 2.2 ms against 0.3 ms). The statistics are computed as in the textbook, in two passes
over each part: the mean, then the mean squared deviation of the centred values (biased, for normalising; times
``n / (n - 1)`` for the running variance), and the output is ``(x - mean) · weight / sqrt(var + eps) + bias``. The
channels of the ``N·H·W × C`` rows are read ``k`` rows at a time (``k·C`` about 64 values), so that the sums run
over wide rows. Against a float64 reference this is at least as accurate as PyTorch's kernel (tested). The
running statistics of the ``parts`` are added in one step, ``(n0·r + Σ_j s_j) / (n0 + parts)`` for the cumulative
average: what ``parts`` updates of weight ``1/(n0 + j)`` give. Not the default: the statistics differ from
PyTorch's in the last bits, and a tracker's SUC over many frames is sensitive enough to such differences that a
search can rank its candidates differently (the demo's search, seed 0, then keeps another genome).
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
    goes through ``model.train()`` / ``model.eval()``. ``kernel``: ``native`` (PyTorch's batch norm) or
    ``channels_last`` (see the module docstring).
    """

    KERNELS = ("native", "channels_last")

    def __init__(self, model: nn.Module, kernel: str = "native"):
        if kernel not in self.KERNELS:
            raise ValueError(f"BN recalibration kernel must be one of {list(self.KERNELS)}, got {kernel!r}")
        self.model = model
        self.kernel = kernel
        self.modules = list(model.modules())
        self._all_bn = [m for m in self.modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.layers = [m for m in self._all_bn if m.track_running_stats]  # batchnorm_layers(model)
        self._plain = all(type(m).train is nn.Module.train for m in self.modules)
        from trackers.backbones.vit import DropPath

        stochastic = (nn.modules.dropout._DropoutNd, nn.MultiheadAttention, DropPath)  # MHA: its attention dropout
        self._stochastic = [m for m in self.modules if isinstance(m, stochastic)]

    def set_training(self, mode: bool) -> None:
        """``model.train(mode)``, but dropout and stochastic depth stay in eval mode (module docstring)."""
        if not self._plain:
            self.model.train(mode)
        else:
            for m in self.modules:
                m.__dict__["training"] = mode  # where nn.Module keeps the flag (it is not a parameter/buffer/module)
        for m in self._stochastic:
            m.__dict__["training"] = False

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
        fast = self.kernel == "channels_last"
        ghosts = [_GhostForward(m, channels_last=fast) for m in self._all_bn] if fast or max(per_batch) > 1 else []
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
    statistics and counted as one batch (what the layer's own forward does, once per part), written into the
    stacked output. ``channels_last``: channels-last CPU tensors take :func:`_channels_last_batch_norm`."""

    def __init__(self, layer: nn.modules.batchnorm._BatchNorm, parts: int = 1, channels_last: bool = False):
        self.layer, self.parts, self.channels_last = layer, parts, channels_last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m, parts = self.layer, self.parts
        if x.shape[0] % parts:
            raise ValueError(f"BN recalibration: a batch of {x.shape[0]} cannot be split into {parts} equal "
                             "recalibration batches")
        if self.channels_last and _channels_last_cpu(x):
            return _channels_last_batch_norm(m, x, parts)
        if parts == 1:
            return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, True, self._count(), m.eps)
        if x.device.type != "cpu" or (torch.is_grad_enabled() and (
                x.requires_grad or (m.weight is not None and m.weight.requires_grad))):
            return torch.cat([F.batch_norm(xk, m.running_mean, m.running_var, m.weight, m.bias, True, self._count(),
                                           m.eps) for xk in x.chunk(parts)], 0)
        # the same kernel as F.batch_norm, each part's output written into its slice of y
        y = torch.empty_like(x)
        unused = (x.new_empty(0), x.new_empty(0))  # the batch mean and inverse std
        for xk, yk in zip(x.chunk(parts), y.chunk(parts)):
            torch.native_batch_norm(xk, m.weight, m.bias, m.running_mean, m.running_var, True, self._count(), m.eps,
                                    out=(yk,) + unused)
        return y

    def _count(self) -> float:
        """Count one batch in the layer's running statistics; returns the weight of that batch in them (the
        cumulative average's ``1/n`` or the momentum; 0 for a layer without running statistics)."""
        m = self.layer
        if not m.track_running_stats or m.num_batches_tracked is None:
            return 0.0
        m.num_batches_tracked.add_(1)
        return 1.0 / float(m.num_batches_tracked) if m.momentum is None else m.momentum


def _channels_last_cpu(x: torch.Tensor) -> bool:
    """A 4-D floating-point CPU tensor in the channels-last layout (and not also contiguous: C = 1 or H·W = 1)."""
    return (x.dim() == 4 and x.device.type == "cpu" and x.is_floating_point() and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last))


def _channels_last_batch_norm(m: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, parts: int) -> torch.Tensor:
    """Train-mode batch norm of ``parts`` stacked batches of the channels-last ``x`` (two-pass statistics per
    part, see the module docstring); updates ``m``'s running statistics as ``parts`` batches. Channels-last out."""
    n, c, h, w = x.shape
    rows = n // parts * h * w  # values per channel in one part
    k = 1
    while k * c < 64 and rows % (2 * k) == 0:
        k *= 2
    x3 = x.permute(0, 2, 3, 1).reshape(parts, rows // k, k * c)  # a view: N·H·W×C rows, k of them per row

    def per_channel(column_sums: torch.Tensor) -> torch.Tensor:  # parts×(k·C) sums -> parts×C means
        return (column_sums.view(parts, k, c).sum(1) if k > 1 else column_sums).div_(rows)

    def wide(v: torch.Tensor) -> torch.Tensor:  # p×C -> p×1×(k·C), broadcast over the rows
        return (v.repeat(1, k) if k > 1 else v).unsqueeze(1)

    mean = per_channel(x3.sum(1))
    d = x3 - wide(mean)
    var = per_channel((d * d).sum(1))  # biased, for normalising
    scale = (var + m.eps).rsqrt_()
    if m.weight is not None:
        scale.mul_(m.weight)
    y = torch.addcmul(wide(m.bias.view(1, c)), d, wide(scale)) if m.bias is not None else d.mul_(wide(scale))
    if m.track_running_stats and m.num_batches_tracked is not None:
        _add_running_statistics(m, mean, var, rows / (rows - 1))
    return y.view(n, h, w, c).permute(0, 3, 1, 2)


def _add_running_statistics(m: nn.modules.batchnorm._BatchNorm, means: torch.Tensor, variances: torch.Tensor,
                            unbias: float) -> None:
    """Count the ``parts × C`` batch ``means`` and biased ``variances`` (in order; ``unbias`` = n / (n - 1) makes
    them unbiased) into ``m``'s running statistics, as that many forward passes would."""
    parts = means.shape[0]
    if m.momentum is None:  # cumulative average
        n0 = int(m.num_batches_tracked)
        total = n0 + parts
        m.running_mean.mul_(n0 / total).add_(means.sum(0), alpha=1.0 / total)
        m.running_var.mul_(n0 / total).add_(variances.sum(0), alpha=unbias / total)
    else:
        for j in range(parts):
            m.running_mean.mul_(1.0 - m.momentum).add_(means[j], alpha=m.momentum)
            m.running_var.mul_(1.0 - m.momentum).add_(variances[j], alpha=m.momentum * unbias)
    m.num_batches_tracked.add_(parts)


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
