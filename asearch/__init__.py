"""ASearch: neural architecture search for vision-language object tracking.

Stable entry points (see README): :func:`asearch.evaluation.ope`, :func:`load_architecture`,
:func:`save_architecture`; the search space in :mod:`search_spaces`, the supernet in :mod:`supernets`.
"""
__version__ = "0.1.0"


def load_architecture(path):
    """Read and validate an architecture JSON (see :mod:`asearch.search.architecture`)."""
    from asearch.search.architecture import load_architecture as _load

    return _load(path)


def save_architecture(arch, path):
    """Write an architecture JSON atomically (see :mod:`asearch.search.architecture`)."""
    from asearch.search.architecture import save_architecture as _save

    return _save(arch, path)
