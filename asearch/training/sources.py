"""Run a paper recipe on the datasets one has: ``data.skip_missing: true`` (see :class:`DataConfig`).

The paper configs list every training set of the paper (LaSOT, TNL2K, GOT-10k, COCO, ...). With
``data.skip_missing: true`` a dataset whose root is not set (neither ``root`` nor ``$ASEARCH_<NAME>_ROOT``) or does
not exist is left out with one warning naming it and its variable; the ratios of the rest keep their proportions,
so its share is spread over them (within its language group when ``data.no_language_share`` is set).

**Choice** when the language-free group (or the language group) is left empty: ``no_language_share`` falls back
to 0 (or 1) with a warning, i.e. the epoch is drawn from what remains by ratio. Videos with an empty sentence (some
of TNL2K's) are *not* counted as a language-free dataset for this share: the share is a mix of datasets, decided
before any video is read. They are still treated as language-free item by item, as Alg. 1 does: the featurizer
applies ``language.missing`` (zero vector, template or attribute words) to every pair whose sentence is blank.
Without ``skip_missing`` both cases stay errors that say what to set.
"""
from __future__ import annotations

import logging
import os
from typing import Any, List, Optional, Sequence, Tuple

from asearch.config import dataset_root_var, find_dataset_root
from asearch.errors import ConfigError

__all__ = ["present_datasets", "fallback_language_share"]

log = logging.getLogger("asearch.training")


def present_datasets(specs: Sequence[Any], source: str = "<config>") -> List[Tuple[int, Any]]:
    """``(index, spec)`` of the :class:`DatasetSpec` entries whose root is set and exists; each left-out one warns
    once (its name, index, ``root`` key and environment variable). ``ConfigError`` when none is left."""
    from asearch.data.registry import dataset_class

    kept: List[Tuple[int, Any]] = []
    missing: List[str] = []
    for i, spec in enumerate(specs):
        name = dataset_class(spec.name).dataset_name
        if find_dataset_root(name, spec.root) is not None:
            kept.append((i, spec))
            continue
        var = dataset_root_var(name)
        if spec.root:
            where = f"root {spec.root} does not exist"
        else:
            where = f"${var} names no folder" if os.environ.get(var) else f"${var} is not set"
        log.warning("%s: data.skip_missing: dataset '%s' (data.datasets[%d]) left out: %s (set "
                    "data.datasets.%d.root or $%s); its ratio %g is spread over the rest", source, name, i, where, i,
                    var, spec.ratio)
        missing.append(name)
    if not kept:
        raise ConfigError(f"{source}: data.skip_missing left out every dataset of data.datasets ({', '.join(missing)}"
                          "): set the root of at least one (data.datasets.N.root or $ASEARCH_<NAME>_ROOT)")
    return kept


def fallback_language_share(share: Optional[float], ratios: Sequence[float], has_language: Sequence[bool],
                            source: str = "<config>") -> Optional[float]:
    """``share`` itself when both language groups have a positive ratio (or ``share`` is ``None``); else 0 (no
    language-free dataset left) or 1 (no language dataset left), with a warning naming data.no_language_share."""
    if share is None:
        return None
    without = sum(r for r, h in zip(ratios, has_language) if not h)
    with_l = sum(r for r, h in zip(ratios, has_language) if h)
    if share > 0 and without <= 0:
        log.warning("%s: data.no_language_share is %g but no language-free dataset is left (e.g. coco, got10k): "
                    "it falls back to 0 (pairs by ratio; videos with an empty sentence still get language.missing)",
                    source, share)
        return 0.0
    if share < 1 and with_l <= 0:
        log.warning("%s: data.no_language_share is %g but no dataset with language is left: it falls back to 1",
                    source, share)
        return 1.0
    return share
