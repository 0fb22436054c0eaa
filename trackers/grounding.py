"""The NL setting's first box: a trained grounding model (:mod:`trackers.models.grounding`) predicts the target box
of a video's first frame from the whole frame and the video's sentence (paper 004, CTRTNL: "the first frame's box
comes from a visual grounding model", TransVG its ref. [6]); any tracker of the toolkit then starts from it
(``asearch track --init language --grounding CKPT``, :func:`trackers.runner.run_dataset`'s ``init_box``).

Videos without a sentence follow ``language.missing`` of the grounding checkpoint (or of the command's
``language`` section), as every language model of the toolkit: ``zero`` (default) grounds with no text (``[CLS]
[SEP]`` with zero word features: the model's box for "no description"), ``attribute`` grounds the phrase of the
video's attribute words or ``"none, object, none, none"`` (paper 000 Alg. 1), ``template`` has no template to fall back on here
and is the same as ``zero``. A warning names each such video. **Choice**: no fallback to the ground-truth box, so
that the NL setting never reads the first-frame annotation.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from asearch.errors import ConfigError

__all__ = ["GroundingPredictor", "load_grounding"]

log = logging.getLogger("asearch.grounding")


class GroundingPredictor:
    """``predictor(image H×W×3 RGB uint8, sentence, seq=None) -> x, y, w, h`` in image pixels.

    Args:
        model: a :class:`~trackers.models.grounding.TransVG` (put in eval mode here).
        missing: ``language.missing`` for videos without a sentence (module docstring).
        device: where the model runs.
    """

    def __init__(self, model: torch.nn.Module, missing: str = "zero", device: Any = "cpu") -> None:
        if not hasattr(model, "image_size") or not hasattr(model, "tokenize"):
            raise ConfigError(f"a grounding predictor needs a grounding model (model.name: grounding), got "
                              f"{type(model).__name__}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.missing = missing

    def text(self, seq: Any) -> Optional[str]:
        """The text grounded for a sequence: its sentence, else what ``language.missing`` gives (``None``: none)."""
        from asearch.language.features import item_language

        sentence = (getattr(seq, "sentence", None) or "").strip()
        if sentence:
            return sentence
        text, _ = item_language("sentence", None, getattr(seq, "attributes", None), False, self.missing)
        log.warning("grounding: video '%s' has no sentence; language.missing %s grounds %s", getattr(seq, "name", "?"),
                    self.missing, repr(text) if text else "no text")
        return text

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], texts: Sequence[Optional[str]]) -> np.ndarray:
        """``N×4`` boxes ``x, y, w, h`` (image pixels) of ``texts[i]`` in ``images[i]``."""
        from asearch.data.grounding import letterbox

        size = self.model.image_size
        squares, scales = zip(*(letterbox(np.asarray(im), size) for im in images))
        batch = torch.from_numpy(np.stack([s.transpose(2, 0, 1) for s in squares])).float().to(self.device)
        has = torch.tensor([bool(t) for t in texts])
        language = self.model.tokenize(["" if t is None else t for t in texts], has, self.device)
        cxcywh = self.model(batch, language)["boxes"].float().cpu().numpy() * size
        out = np.empty_like(cxcywh, dtype=np.float64)
        out[:, :2] = cxcywh[:, :2] - cxcywh[:, 2:] / 2
        out[:, 2:] = cxcywh[:, 2:]
        return out / np.asarray(scales, dtype=np.float64)[:, None]

    def __call__(self, seq: Any) -> np.ndarray:
        """The predicted first-frame box of sequence ``seq`` (``x, y, w, h``): the ``init_box`` of the runner."""
        return self.predict([seq.frame(0)], [self.text(seq)])[0]


def load_grounding(path: Union[str, Path], language: Optional[Mapping[str, Any]] = None,
                   device: Any = "cpu") -> GroundingPredictor:
    """A :class:`GroundingPredictor` from a grounding checkpoint of ``asearch retrain``; ``language``: the
    command's ``language`` section (``encoder``: where the text model is on this machine; ``missing``), the
    checkpoint's settings otherwise (:func:`trackers.registry.resolve_language`)."""
    from asearch.io import load_torch
    from trackers.registry import checkpoint_language, rebuild_model, resolve_language

    ckpt = load_torch(path, map_location="cpu")
    model, cfg = rebuild_model(ckpt, str(path), (language or {}).get("encoder"))
    if cfg.name != "grounding":
        raise ConfigError(f"--grounding {path}: model '{cfg.name}' is not a grounding model (model.name: "
                          "grounding, trained with experiments/grounding/*.yaml)")
    lang = resolve_language(language, checkpoint_language(ckpt), source=f"--grounding {path}")
    return GroundingPredictor(model, lang.missing, device)
