"""The one record every dataset reader produces: a video (or one image) with boxes, visibility and language."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from asearch.errors import DataError

__all__ = ["Sequence", "read_image"]


def read_image(path: str) -> np.ndarray:
    """Read an image file as an RGB ``uint8`` array (H×W×3); a missing or corrupt file raises :class:`DataError`."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError("cannot read image (missing or corrupt)", path=path, field="frame")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass
class Sequence:
    """One tracking video.

    Attributes:
        name: sequence name (unique within its dataset), used for results files ``<name>.txt``.
        frames: frame image paths in temporal order (read lazily with :meth:`frame`).
        boxes: ``N×4`` float64 ground truth ``x, y, w, h`` (0-based pixels; NaN where unknown).
        visible: ``N`` bool, False where the target is absent (occluded / out of view / no annotation).
        sentence: the natural-language description, or None when the dataset has none (or it is empty).
        attributes: the four attribute words ``[major, root, color, position]`` or None.
        attribute_flags: per-video attribute flags (e.g. LaSOT's 14), name -> bool, or None.
        dataset: name of the dataset the sequence comes from.
        category: object class name when known (used by the ``attribute`` missing-language strategy).
    """

    name: str
    frames: List[str]
    boxes: np.ndarray
    visible: np.ndarray
    sentence: Optional[str] = None
    attributes: Optional[List[str]] = None
    attribute_flags: Optional[Dict[str, bool]] = None
    dataset: str = ""
    category: Optional[str] = None
    meta: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
        if len(self.frames) != len(self.boxes):
            raise DataError(
                f"sequence '{self.name}' has {len(self.frames)} frames but {len(self.boxes)} boxes",
                path=self.meta.get("annotation_path"), field="groundtruth",
            )
        if len(self.visible) != len(self.boxes):
            raise DataError(
                f"sequence '{self.name}' has {len(self.boxes)} boxes but {len(self.visible)} visibility flags",
                path=self.meta.get("annotation_path"), field="visible",
            )

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_language(self) -> bool:
        """True when the sequence carries a sentence or attribute words."""
        return bool(self.sentence) or self.attributes is not None

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB ``uint8`` (H×W×3)."""
        return read_image(self.frames[index])
