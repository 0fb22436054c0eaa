"""PJVLT's inference policy (paper 001 §IV-A "Online Inference"): OSTrack's crops, Hanning window and box decoding.

The crops (:class:`~asearch.data.crops.AreaFactorCrop`, factors 2 / 4), the window on the classification map and
the decoding are :class:`~trackers.inference.ostrack.OSTrackTracker`'s. What differs is the language: each video's
text is tokenised and run through all J language layers ONCE, when the video is added (the language stream takes no
visual input), and the template's patch tokens are cached with it. The joint encoder itself (ViT layers, SAIELs and
CCPILs) runs on every frame: the template and search tokens attend to each other and to the words in every layer,
so nothing of it depends on the template alone. Texts are padded to ``model.text.max_length`` so that videos added
at different times share one word length in the lockstep batch.
"""
from __future__ import annotations

from trackers.inference.base import TokenLanguageMixin
from trackers.inference.ostrack import OSTrackTracker

__all__ = ["PJVLTTracker"]


class PJVLTTracker(TokenLanguageMixin, OSTrackTracker):
    """PJVLT tracker (module docstring); ``featurizer`` only gives ``language.missing`` (``None``: no language)."""
