"""Toy model, dataset and actors for the training-engine tests (imported by the tests and the DDP worker)."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
from torch import nn

from asearch.training import BaseActor, PathSampler


class ToyDataset(torch.utils.data.Dataset):
    """``n`` fixed (x, y) pairs plus a little noise from the global torch RNG (so resume must restore it)."""

    def __init__(self, n: int = 10, dim: int = 4, seed: int = 0, noise: float = 0.01):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, dim, generator=gen)
        self.y = self.x.sum(dim=1, keepdim=True)
        self.noise = noise

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.x[i] + self.noise * torch.randn(self.x.shape[1]), self.y[i]


class ToyPathModel(nn.Module):
    """stem -> ``genes`` layers of two interchangeable Linear choices -> dropout -> head."""

    def __init__(self, dim: int = 4, hidden: int = 8, genes: int = 2):
        super().__init__()
        self.backbone = nn.Linear(dim, hidden)
        self.choices = nn.ModuleList(nn.ModuleList([nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)])
                                     for _ in range(genes))
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, path: List[int]) -> torch.Tensor:
        h = torch.relu(self.backbone(x))
        for layer, c in zip(self.choices, path):
            h = torch.relu(layer[c](h))
        return self.head(self.drop(h))


class ToyPathActor(BaseActor):
    """MSE on the toy model along the sampled path; remembers every path it ran (``genomes``)."""

    def __init__(self, model: ToyPathModel, seed: int = 0, fail_at: int = -1):
        super().__init__(model, PathSampler.uniform([2] * len(model.choices), seed=seed))
        self.supernet = model
        self.genomes: List[List[int]] = []
        self.fail_at = fail_at

    def forward_pass(self, batch: Any, path: List[int]) -> torch.Tensor:
        self.genomes.append(list(path))
        return self.model(batch[0], path)

    def compute_losses(self, outputs: torch.Tensor, batch: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        if len(self.genomes) - 1 == self.fail_at:
            raise RuntimeError("simulated crash")
        loss = torch.nn.functional.mse_loss(outputs.float(), batch[1])
        return loss, {"mse": float(loss.detach())}

    def off_path_parameters(self):
        for layer, c in zip(self.supernet.choices, self.current_path):
            for j, choice in enumerate(layer):
                if j != c:
                    yield from choice.parameters()


def toy_factory(dataset: ToyDataset, batch_size: int, seed: int):
    """The seeded, resumable loader factory of the toolkit over ``dataset``."""
    from asearch.training import seeded_loader_factory

    return seeded_loader_factory(dataset, batch_size=batch_size, seed=seed, num_workers=0)
