"""COST's inference policy (paper 003 §5.1 "Online Tracking"): TransT's tracker over COST's candidates.

Crops, score, Hanning window and box decoding are :class:`~trackers.inference.transt.TransTTracker`'s: "the
tracking head produces confidence scores for 441 candidate boxes. Following [17], we use a 21×21 Hanning window to
penalize the confidence scores and select the box with the highest confidence score". **As written**: the window is
laid over the 441 candidates in the token order of Eq. 9 (400 visual tokens row-major, 40 words, [OBJ]) read as a
21×21 grid (``model.window_size``); the box of the chosen candidate is used as TransT does.

Language and template: each video's text runs through the language model ONCE, when the video is added
(:class:`~trackers.inference.base.TokenLanguageMixin`, ``language.missing`` for videos without one), and is cached
with the template tokens (:meth:`~trackers.models.cost.COST.template`); the fusion network, the convolutions and the
VLT run every frame (the search tokens attend to the template and to the words there).
"""
from __future__ import annotations

from trackers.inference.base import TokenLanguageMixin
from trackers.inference.transt import TransTTracker

__all__ = ["COSTTracker"]


class COSTTracker(TokenLanguageMixin, TransTTracker):
    """COST tracker (module docstring); ``featurizer`` only gives ``language.missing`` (``None``: no language)."""
