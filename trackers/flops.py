"""FLOPs of a forward pass, attributed to named parts of a model.

:class:`ComponentFlopCounter` counts with the formulas of :class:`torch.utils.flop_counter.FlopCounterMode` (matrix
products and convolutions, 2 FLOPs per multiply-accumulate), so its total equals that mode's total; each counted
operator is charged to the innermost *component* (a named ``nn.Module``) whose method is on the Python call stack
when the operator runs. That also catches products written as ``q @ k`` inside a module's own methods (attention
scores), which module-hook counters never see. Works on the ``meta`` device (no memory, no compute).

Beside the FLOPs it records, per component, the output elements of the operators that such counters weigh by element
(:data:`ELEMENTWISE`: norms, softmax, GELU, bilinear resampling) and the outputs of convolutions with a bias
(``"conv bias"``: thop counts one addition per output), so other conventions can be rebuilt from one pass.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple, Union

from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["ComponentFlopCounter", "ELEMENTWISE", "UNATTRIBUTED"]

#: the component name of operators run outside every named component
UNATTRIBUTED = "unattributed"

#: operators whose output elements :attr:`ComponentFlopCounter.elements` records
ELEMENTWISE = ("aten.native_layer_norm", "aten.native_batch_norm", "aten._native_batch_norm_legit_no_training",
               "aten._softmax", "aten.gelu", "aten.upsample_bilinear2d")


class ComponentFlopCounter(TorchDispatchMode):
    """Context manager: ``counts[(component, operator)]`` FLOPs of what runs inside it.

    Args:
        components: ``name -> module`` or ``(name, module)`` pairs (one name may cover several modules); every
            sub-module of a component belongs to it, and for a module listed twice (a part inside a whole) the later
            entry wins, so list wholes before their parts.
    """

    def __init__(self, components: Union[Mapping[str, nn.Module], Iterable[Tuple[str, nn.Module]]]):
        super().__init__()
        self._owner: Dict[int, str] = {}
        pairs = components.items() if isinstance(components, Mapping) else components
        for name, module in pairs:
            for m in module.modules():
                self._owner[id(m)] = name
        self._formulas = FlopCounterMode().flop_registry
        self.counts: Dict[Tuple[str, str], int] = defaultdict(int)
        #: ``(component, operator) -> output elements`` of :data:`ELEMENTWISE` operators and ``"conv bias"``
        self.elements: Dict[Tuple[str, str], int] = defaultdict(int)

    def _component(self) -> str:
        frame = sys._getframe(2)
        while frame is not None:
            owner = self._owner.get(id(frame.f_locals.get("self")))
            if owner is not None:
                return owner
            frame = frame.f_back
        return UNATTRIBUTED

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Optional[dict] = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        formula = self._formulas.get(packet)
        name = str(packet)
        if formula is not None:
            self.counts[(self._component(), name)] += int(formula(*args, **kwargs, out_val=out))
        if name in ELEMENTWISE:
            first = out[0] if isinstance(out, (tuple, list)) else out
            self.elements[(self._component(), name)] += first.numel()
        elif name == "aten.convolution" and len(args) > 2 and args[2] is not None:
            self.elements[(self._component(), "conv bias")] += out.numel()
        return out

    def total(self) -> int:
        """All FLOPs counted."""
        return sum(self.counts.values())

    def by_component(self) -> Dict[str, int]:
        """FLOPs per component, in the order first seen."""
        out: Dict[str, int] = {}
        for (name, _), n in self.counts.items():
            out[name] = out.get(name, 0) + n
        return out

    def by_operator(self) -> Dict[str, int]:
        """FLOPs per operator (``aten.mm``, ``aten.addmm``, ``aten.bmm``, ``aten.convolution``...)."""
        out: Dict[str, int] = {}
        for (_, op), n in self.counts.items():
            out[op] = out.get(op, 0) + n
        return out
