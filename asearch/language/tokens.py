"""Token-level text encoder: word-token features, the attention mask and layer-by-layer access (papers 001, 002).

The pooled :class:`~asearch.language.encoder.TextEncoder` gives one vector per text for the ModaMixer. Trackers whose
vision layers attend to single words, or that interleave the language model's layers with their own (PJVLT: BERT
layer ``j`` beside ViT layer ``j`` for ``j = 1..12``; SATracker: BERT stages ``[0]``, ``[1-4]``, ``[5-11]``), need
the ``B×L×D`` token features, their mask, and the layers one at a time. :class:`TokenTextEncoder` is that encoder,
an ``nn.Module`` that lives inside a tracker:

* ``tokenize(texts, max_length)`` -> ``(input_ids, mask)``: ``[CLS] w_1 .. w_N [SEP]``, truncated so that at most
  ``max_length`` tokens remain with ``[SEP]`` still last, right-padded to the longest text (or to ``max_length``).
* ``forward(input_ids, mask)`` -> ``(tokens B×L×D, mask)``: the whole model, the same as its Hugging Face forward.
* ``embed(input_ids)``, ``layer(i, hidden, mask)``, ``run_layers(hidden, mask, start, stop)``, ``layers``: the
  same computation one layer at a time, so a tracker may change the hidden states between layers.
* ``trainable`` (default false): a frozen encoder has ``requires_grad=False`` and stays in eval mode (no dropout)
  even inside a model in train mode; gradients still flow *through* it to hidden states a tracker modified.
  PJVLT fine-tunes BERT (learning rate 1e-5 for the whole encoder, paper 001 §IV-A).

Models (the same ``language.encoder`` values and resolver as the pooled encoder, offline only): ``default`` is the
packaged all-MiniLM-L6-v2 (6 layers, D = 384; tiny configs), a local ``bert-base-uncased`` directory is BERT-base
(12 layers, D = 768; paper configs). ``config=`` builds a randomly initialised model from a ``transformers``
config without any file (e.g. ``BertConfig()`` for BERT-base shapes on the ``meta`` device); its tokenizer is the
packaged MiniLM's, which is the bert-base-uncased WordPiece vocabulary. Only encoders with ``[CLS]``/``[SEP]`` and
BERT-style layers are accepted (GPT-2, usable by the pooled encoder, is not).

Missing language follows ``language.missing`` through :func:`asearch.language.features.item_language`, the same
choice as the pooled path (:func:`prepare_texts`): ``attribute`` encodes ``"none, object, none, none"`` (or the
item's own words) as the sentence; ``zero`` and ``template`` give no text. **Choice**: an item with no text is
tokenised as ``[CLS] [SEP]`` (two real tokens, so every attention over words stays defined, never an all-false
mask) and :func:`zero_missing` sets its token features to zero, the token-level form of the pooled zero vector;
``template`` also sets ``use_template`` for the tracker's own substitute.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from asearch.errors import ConfigError
from asearch.language.encoder import (default_model_dir, load_config, load_pretrained, load_tokenizer,
                                      resolve_model_source)
from asearch.language.features import item_language

__all__ = ["TokenTextEncoder", "prepare_texts", "zero_missing", "additive_mask"]


def prepare_texts(sentences: Sequence[Optional[str]], has_language: Sequence[bool], missing: str = "zero",
                  attributes: Optional[Sequence[Optional[Sequence[Optional[str]]]]] = None,
                  strategies: Optional[Sequence[Optional[str]]] = None,
                  ) -> Tuple[List[str], torch.Tensor, torch.Tensor]:
    """The texts of a batch under ``language.missing``: ``(texts, has_text B bool, use_template B bool)``.

    ``texts[i]`` is ``""`` for an item without text (``zero``, ``template``); ``strategies`` overrides ``missing``
    per item (``None`` entries keep it), as in :class:`~asearch.language.features.LanguageFeaturizer`.
    """
    n = len(sentences)
    attributes = [None] * n if attributes is None else list(attributes)
    if len(has_language) != n or len(attributes) != n or (strategies is not None and len(strategies) != n):
        raise ConfigError(f"language fields of one batch differ in length: sentences {n}, has_language "
                          f"{len(has_language)}, attributes {len(attributes)} (field: language)")
    texts: List[str] = []
    has_text = torch.zeros(n, dtype=torch.bool)
    use_template = torch.zeros(n, dtype=torch.bool)
    for i in range(n):
        strategy = missing if strategies is None or strategies[i] is None else strategies[i]
        text, use_template[i] = item_language("sentence", sentences[i], attributes[i], has_language[i], strategy,
                                              index=i)
        texts.append("" if text is None else text)
        has_text[i] = text is not None
    return texts, has_text, use_template


def zero_missing(tokens: torch.Tensor, has_text: torch.Tensor) -> torch.Tensor:
    """``tokens`` (``B×L×D``) with the rows of items without text set to zero (``zero`` / ``template``)."""
    return tokens * has_text.to(device=tokens.device, dtype=tokens.dtype).view(-1, 1, 1)


def additive_mask(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``B×1×1×L`` additive attention mask of a ``B×L`` padding mask: 0 on tokens, the dtype minimum on pads."""
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return bias.masked_fill(~mask.bool(), torch.finfo(dtype).min)[:, None, None, :]


class TokenTextEncoder(nn.Module):
    """A BERT-style language model as a module: token features, mask, and its layers one by one.

    Args:
        encoder: a ``language.encoder`` value: ``None``/``"default"`` (packaged MiniLM), a local model directory, or
            a model name in the Hugging Face cache. Ignored when ``config`` is given.
        trainable: fine-tune the language model (``True``) or keep it frozen in eval mode (``False``).
        max_length: longest token sequence of :meth:`tokenize` (special tokens included), e.g. 30 for SATracker.
        pretrained: load the weights (``True``) or build the model from its config with random weights.
        config: a ``transformers`` config to build a randomly initialised model from, without any file.
    """

    def __init__(self, encoder: Optional[Union[str, os.PathLike]] = None, *, trainable: bool = False,
                 max_length: int = 40, pretrained: bool = True, config=None):
        super().__init__()
        if max_length < 2:
            raise ConfigError(f"max_length must be >= 2 (room for [CLS] [SEP]), got {max_length}")
        if config is None:
            source, self.model_id = resolve_model_source(encoder)
            load_config(source)  # the clear "not available offline" error before the weights' one
            tokenizer, model = load_pretrained(source, weights=pretrained)
        else:
            from transformers import AutoModel

            self.model_id = f"random-{config.model_type}-{config.hidden_size}x{config.num_hidden_layers}"
            tokenizer = load_tokenizer(str(default_model_dir()))
            model = AutoModel.from_config(config)
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None or tokenizer.pad_token_id is None:
            raise ConfigError(f"language.encoder {self.model_id!r}: a token-level encoder needs [CLS], [SEP] and pad "
                              "tokens (a BERT-style model such as bert-base-uncased or the default MiniLM)")
        if not hasattr(model, "embeddings") or not hasattr(getattr(model, "encoder", None), "layer"):
            raise ConfigError(f"language.encoder {self.model_id!r}: a token-level encoder needs BERT-style "
                              f"embeddings and encoder layers, got {model.__class__.__name__}")
        tokenizer.padding_side = "right"
        self.tokenizer = tokenizer
        self.model = model.float()
        if getattr(self.model, "pooler", None) is not None:  # the [CLS] pooler is unused: keep it out of the optimiser
            self.model.pooler = None
        self.max_length = int(max_length)
        self.trainable = True
        self.set_trainable(trainable)

    # -- properties -------------------------------------------------------------------------------------------

    @property
    def width(self) -> int:
        """Width ``D`` of a token feature (384 for MiniLM, 768 for BERT-base)."""
        return int(self.model.config.hidden_size)

    @property
    def layers(self) -> int:
        """Number of encoder layers (6 for MiniLM, 12 for BERT-base)."""
        return len(self.model.encoder.layer)

    # -- freezing ---------------------------------------------------------------------------------------------

    def set_trainable(self, trainable: bool) -> "TokenTextEncoder":
        """Fine-tune (``True``) or freeze (``False``: no gradients, eval mode kept under ``train()``)."""
        self.trainable = bool(trainable)
        self.model.requires_grad_(self.trainable)
        self.train(self.training)
        return self

    def train(self, mode: bool = True) -> "TokenTextEncoder":
        """As :meth:`nn.Module.train`, but a frozen language model stays in eval mode (no dropout)."""
        super().train(mode)
        if not self.trainable:
            self.model.eval()
        return self

    # -- tokens -----------------------------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[Optional[str]], max_length: Optional[int] = None, pad_to_max: bool = False,
                 device: Optional[Union[str, torch.device]] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids B×L long, mask B×L bool)`` of ``[CLS] text [SEP]``; ``None``/blank texts give ``[CLS] [SEP]``.

        Texts longer than ``max_length`` (default :attr:`max_length`) tokens are truncated with ``[SEP]`` kept last;
        the batch is padded to its longest text, or to ``max_length`` with ``pad_to_max``.
        """
        if isinstance(texts, str):
            raise TypeError("tokenize expects a list of texts, got one string")
        length = self.max_length if max_length is None else int(max_length)
        if length < 2:
            raise ConfigError(f"max_length must be >= 2 (room for [CLS] [SEP]), got {length}")
        texts = ["" if t is None else str(t).strip() for t in texts]
        if not texts:
            return torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.bool)
        batch = self.tokenizer(texts, padding="max_length" if pad_to_max else True, truncation=True,
                               max_length=length, return_tensors="pt")
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        if device is not None:
            ids, mask = ids.to(device), mask.to(device)
        return ids, mask

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The embedding layer (word + position + token type, LayerNorm, dropout): ``B×L`` ids -> ``B×L×D``."""
        return self.model.embeddings(input_ids=input_ids)

    def attention_bias(self, hidden: torch.Tensor, mask: torch.Tensor):
        """The model's own form of the ``B×L`` padding mask for its attention implementation (may be ``None``).

        On the ``meta`` device (shape checks) and with ``transformers`` < 4.56: the additive ``B×1×1×L`` mask.
        """
        try:
            from transformers.masking_utils import create_bidirectional_mask
        except ImportError:
            create_bidirectional_mask = None
        if create_bidirectional_mask is None or hidden.device.type == "meta":
            return additive_mask(mask, hidden.dtype)
        return create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden,
                                         attention_mask=mask.long())

    def layer(self, i: int, hidden: torch.Tensor, mask: torch.Tensor, bias=None) -> torch.Tensor:
        """Encoder layer ``i`` (0-based) on ``hidden`` (``B×L×D``) with the padding ``mask`` (``B×L`` bool).

        ``bias`` (from :meth:`attention_bias`) saves rebuilding the mask form when calling many layers.
        """
        if not 0 <= i < self.layers:
            raise IndexError(f"layer {i} out of range: {self.model_id} has {self.layers} layers (0..{self.layers - 1})")
        if bias is None:
            bias = self.attention_bias(hidden, mask)
        out = self.model.encoder.layer[i](hidden, bias)
        return out[0] if isinstance(out, tuple) else out

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, start: int = 0,
                   stop: Optional[int] = None) -> torch.Tensor:
        """Layers ``start .. stop-1`` in order (``stop`` defaults to the last), e.g. SATracker's stage ``[1-4]`` is
        ``run_layers(h, mask, 1, 5)``."""
        stop = self.layers if stop is None else int(stop)
        bias = self.attention_bias(hidden, mask)
        for i in range(int(start), stop):
            hidden = self.layer(i, hidden, mask, bias)
        return hidden

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(tokens B×L×D, mask B×L bool)``: the embedding and every layer (the model's last hidden state)."""
        mask = mask.bool()
        return self.run_layers(self.embed(input_ids), mask), mask

    def encode(self, texts: Sequence[Optional[str]], max_length: Optional[int] = None,
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """:meth:`tokenize` on this module's device, then :meth:`forward`."""
        device = next(self.model.parameters()).device
        return self(*self.tokenize(texts, max_length, device=device))

    def extra_repr(self) -> str:
        return (f"{self.model_id!r}, width={self.width}, layers={self.layers}, max_length={self.max_length}, "
                f"trainable={self.trainable}")

