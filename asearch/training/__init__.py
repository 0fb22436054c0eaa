"""Training engine shared by ``asearch pretrain`` and ``asearch retrain``.

- :class:`Trainer`, :class:`TrainConfig` (``trainer``): the step loop, AMP, clipping, logs, atomic checkpoints,
  exact resume; :func:`load_checkpoint`, :func:`load_model_state` to read its checkpoints.
- :class:`Actor`, :class:`BaseActor`, :class:`PathSampler` (``actor``): ``actor(batch, step) -> (loss, stats)``
  and the seeded SPOS path per step (the sampler's home: :mod:`search_spaces.paths`).
- :func:`build_optimizer`, :func:`build_scheduler` (``optim``): SGD/AdamW with lr multipliers by name prefix,
  warm-up + cosine/step/log/constant per step.
- :func:`init_distributed`, :func:`is_main_process`, :class:`SeededSampler`, :func:`seeded_loader_factory`
  (``distributed``): torchrun/DDP set-up and a resumable sharded data order.
- :class:`CsvLogger`, :class:`TensorBoardLogger` (``logging``).
"""
from asearch.training.actor import Actor, BaseActor, PathSampler
from asearch.training.distributed import (
    DistInfo,
    SeededSampler,
    cleanup_distributed,
    derive_seed,
    get_rank,
    get_world_size,
    init_distributed,
    is_distributed,
    is_main_process,
    seeded_loader_factory,
)
from asearch.training.logging import CsvLogger, TensorBoardLogger
from asearch.training.optim import ScheduleFactor, build_optimizer, build_scheduler, param_groups
from asearch.training.trainer import (
    CHECKPOINT_FORMAT,
    Trainer,
    TrainConfig,
    capture_rng_state,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
)

__all__ = [
    "Actor", "BaseActor", "PathSampler",
    "DistInfo", "SeededSampler", "cleanup_distributed", "derive_seed", "get_rank", "get_world_size",
    "init_distributed", "is_distributed", "is_main_process", "seeded_loader_factory",
    "CsvLogger", "TensorBoardLogger",
    "ScheduleFactor", "build_optimizer", "build_scheduler", "param_groups",
    "CHECKPOINT_FORMAT", "Trainer", "TrainConfig", "capture_rng_state", "load_checkpoint", "load_model_state",
    "restore_rng_state",
]
