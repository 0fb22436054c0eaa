"""Shared tiny inputs for the supernet tests (width 0.25, crops 63/127, batch 2)."""
import random

import pytest
import torch

from search_spaces.genome import Genome


def random_genome(seed: int, symmetric: bool = False) -> Genome:
    """A random 48-gene genome (search backbone = template backbone when ``symmetric``)."""
    rng = random.Random(seed)
    genes = [rng.randrange(4) for _ in range(48)]
    if symmetric:
        genes[20:40] = genes[:20]
    return Genome.from_flat(genes)


@pytest.fixture
def tiny_inputs():
    """(template 2×3×63×63, search 2×3×127×127, language 2×32, template box, search box) in pixel units."""
    g = torch.Generator().manual_seed(0)
    template = torch.rand(2, 3, 63, 63, generator=g) * 255
    search = torch.rand(2, 3, 127, 127, generator=g) * 255
    language = torch.randn(2, 32, generator=g)
    template_box = torch.tensor([[12.0, 10.0, 50.0, 48.0], [8.0, 16.0, 40.0, 56.0]])
    search_box = torch.tensor([[40.0, 44.0, 90.0, 80.0], [30.0, 20.0, 100.0, 110.0]])
    return template, search, language, template_box, search_box


@pytest.fixture
def make_genome():
    """``make_genome(seed, symmetric=False)`` -> a random genome."""
    return random_genome
