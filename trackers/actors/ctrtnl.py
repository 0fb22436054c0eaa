"""Training actor of CTRTNL (paper 004 §4): ``actor(batch, step) -> (loss, stats)``.

The pair batches are the SiamRPN++ family's (SiamFC's context crops, :class:`~trackers.inference.rpn.
RPNTrackerConfig.crop_rule`); the texts are tokenised with the model's own language model
(:func:`~trackers.actors.base.batch_language`, ``language.missing`` for items without text). The forward pass is
:meth:`~trackers.models.ctrtnl.CTRTNL.forward` (SiamRPN++ fixed, its ``loss.proposals`` best boxes plus the ground
truth, AdaRS, TSR's selector over windows of the search crop); the loss is :class:`~trackers.losses.ctrtnl.
CTRTNLLoss` (Eq. 20 + the selector's BCE), with the batch's ``label`` (positive pairs) where the sampler gives one.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from trackers.actors.base import PairActor, batch_language, unwrap
from trackers.losses.ctrtnl import CTRTNLLoss, CTRTNLLossConfig

__all__ = ["CTRTNLActor"]


class CTRTNLActor(PairActor):
    """Forward pass with token-level language + CTRTNL's loss (module docstring)."""

    def __init__(self, model: nn.Module, featurizer: Any = None, loss_cfg: Optional[CTRTNLLossConfig] = None,
                 path_sampler: Any = None):
        super().__init__(model, featurizer, path_sampler)
        self.loss = CTRTNLLoss(loss_cfg or CTRTNLLossConfig())

    def forward_pass(self, batch: Mapping[str, Any], path: Any) -> Dict[str, Any]:
        """Run the model on the pair batch (a fixed architecture: ``path`` is ``None``)."""
        language = batch_language(unwrap(self.model), batch, self.featurizer, batch["template"].device)
        return self.model(batch["template"], batch["search"], language, search_box=batch["search_box"],
                          proposals=self.loss.cfg.proposals)

    def recalibration_pass(self, batch: Mapping[str, Any], path: Any) -> None:
        """BatchNorm recalibration (:meth:`~trackers.models.ctrtnl.CTRTNL.recalibration_forward`)."""
        unwrap(self.model).recalibration_forward(batch["template"], batch["search"])

    def compute_losses(self, outputs: Dict[str, Any], batch: Mapping[str, Any]
                       ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Eq. 20 + the selector's BCE and its parts as floats."""
        return self.loss(outputs, batch["search_box"], batch.get("label"))
