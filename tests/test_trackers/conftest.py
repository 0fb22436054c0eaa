"""Helpers shared by the tracker-family tests: a deterministic language featurizer and the check of the result
files written by ``asearch track``."""
import numpy as np
import pytest
import torch


class FakeFeaturizer:
    """Deterministic 8-d language vectors; items without a sentence use the 'template' strategy."""

    dim = 8

    def __call__(self, sentences, attributes, has_language, strategies=None):
        vec = torch.stack([torch.linspace(0, 1, self.dim) * (len(s or "") + 1) for s in sentences])
        use_t = torch.tensor([not (h and s) for s, h in zip(sentences, has_language)])
        return vec * (~use_t).float().unsqueeze(1), use_t


@pytest.fixture
def fake_featurizer():
    """A :class:`FakeFeaturizer` (8-d vectors, the 'template' strategy for items without a sentence)."""
    return FakeFeaturizer()


@pytest.fixture
def check_track_results():
    """``check(out_dir, videos, frames)``: exactly ``videos`` result files in ``out_dir``, each ``frames×4`` and
    finite."""
    from asearch.evaluation.results import read_results

    def check(out, videos, frames):
        names = sorted(p.stem for p in out.glob("*.txt"))
        assert len(names) == videos
        for name in names:
            res = read_results(out, name)
            assert res.shape == (frames, 4) and np.all(np.isfinite(res))

    return check
