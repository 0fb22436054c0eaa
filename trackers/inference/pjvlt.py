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

from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from asearch.language import prepare_texts
from trackers.inference.base import language_fields
from trackers.inference.ostrack import OSTrackTracker

__all__ = ["PJVLTTracker"]


class PJVLTTracker(OSTrackTracker):
    """PJVLT tracker (module docstring); ``featurizer`` only gives ``language.missing`` (``None``: no language)."""

    def language_vectors(self, languages: Sequence[Any]) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
        """The tokenised texts of new videos (``language.missing`` for those without), no template flags."""
        fields = [language_fields(x) for x in languages]
        has = [f[2] if self.featurizer is not None else False for f in fields]
        texts, has_text, _ = prepare_texts([f[0] for f in fields], has, getattr(self.featurizer, "missing", "zero"),
                                           [f[1] for f in fields])
        return self.model.tokenize(texts, has_text, self.device, pad_to_max=True), None
