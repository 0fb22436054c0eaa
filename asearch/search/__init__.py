"""Evolutionary architecture search (paper 000 Eq. 6) on Ray, and the architecture JSON.

- :mod:`~asearch.search.architecture`: :class:`Architecture`, :func:`save_architecture`, :func:`load_architecture`
  (also reads the official VLT ``CAND`` list-of-lists), :func:`load_genome`.
- :mod:`~asearch.search.evolution`: :class:`SearchConfig` (``evolution`` / ``fitness`` / ``ray``),
  :class:`EvolutionSearch` (SPOS evolution or the random baseline, atomic per-generation state, outputs),
  :func:`run_local`.
- :mod:`~asearch.search.ray_search`: :func:`run_tune` (Ray Tune, generation-synchronous :class:`GenerationSearcher`).
- :mod:`~asearch.search.fitness`: SUC of a genome on a fixed validation set after BN recalibration.
- :mod:`~asearch.search.overlap`: :func:`training_overlap` / :func:`check_validation_overlap`, the validation
  videos a supernet was trained on (``asearch search`` warns).
"""
from asearch.search.architecture import (Architecture, ValidationRecord, architecture_from_dict, load_architecture,
                                         load_genome, save_architecture, sha256_file)
from asearch.search.evolution import (EvolutionConfig, EvolutionSearch, RayConfig, SearchConfig, SearchError,
                                      run_local, select_topk)
from asearch.search.fitness import FitnessConfig

__all__ = [
    "Architecture", "ValidationRecord", "architecture_from_dict", "load_architecture", "load_genome",
    "save_architecture", "sha256_file",
    "EvolutionConfig", "EvolutionSearch", "RayConfig", "SearchConfig", "SearchError", "run_local", "select_topk",
    "FitnessConfig",
]
