"""Language vectors ``f_l`` for the ModaMixer (paper 000 §3.2, Eq. 1) and the strategies for missing language.

Two modes:

* ``sentence``: ``f_l^sent`` (``1×d``) = mean of the ``(N+2)×d`` token features of the sentence (padding masked).
* ``attribute``: a shared "attribute representation dictionary" word -> ``f_l^word`` (``1×d``, mean of the
  ``[CLS] word [SEP]`` token features); a target's four words ``[major class, root class, color, position]`` give
  ``f_l^attr`` (``1×4d``) by concatenation in that order. Missing words are ``"none"``.

Items without language (COCO, DET, YouTube-BB; or inference without a description, Table 7) follow one of the
strategies of Alg. 1:

* ``zero``: a zero vector.
* ``template``: a zero vector and ``use_template=True``; the supernet puts the ROI-pooled template feature in place
  of the projected language vector.
* ``attribute``: encode the attribute words given with the item (the pair sampler passes
  ``["<category or none>", "object", "none", "none"]``; when none are given, ``["none", "object", "none", "none"]``).
  In attribute mode they form the usual ``4d`` vector. **Choice** in sentence mode: the words are joined with
  ``", "`` into one sentence, ``"person, object, none, none"``, which is the literal text of Alg. 1 line 14
  (``BERT("none, object, none, none")``), and encoded as a sentence.

An item counts as having language when ``has_language`` is true *and* the mode's own field is filled: a
non-blank sentence in sentence mode, at least one non-blank word in attribute mode. Otherwise (e.g. a video with
attribute words only, used in sentence mode) the missing-language strategy applies.

Features are cached per (model id, mode, text) in memory and optionally on disk (:mod:`asearch.language.cache`), so
the encoder runs once per text, not per frame.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from asearch.errors import ConfigError, DataError
from asearch.language.cache import FeatureCache, cache_key
from asearch.language.encoder import pool_tokens

__all__ = ["LanguageFeaturizer", "MODES", "MISSING_STRATEGIES", "NUM_ATTRIBUTE_WORDS", "MISSING_WORD",
           "DEFAULT_MISSING_ATTRIBUTES", "normalize_attributes", "item_language"]

MODES = ("sentence", "attribute")
MISSING_STRATEGIES = ("zero", "template", "attribute")
NUM_ATTRIBUTE_WORDS = 4
MISSING_WORD = "none"
#: Alg. 1 line 14: the attribute words of an item without language and without a known category.
DEFAULT_MISSING_ATTRIBUTES = ("none", "object", "none", "none")


def _blank(word: Optional[str]) -> bool:
    return word is None or not str(word).strip()


def normalize_attributes(words: Optional[Sequence[Optional[str]]]) -> List[str]:
    """Four stripped attribute words, ``None``/blank/absent ones replaced by ``"none"``; more than four is an error."""
    if isinstance(words, str) or (words is not None and len(words) > NUM_ATTRIBUTE_WORDS):
        raise DataError(f"expected a list of at most {NUM_ATTRIBUTE_WORDS} attribute words [major class, root "
                        f"class, color, position], got {words!r}", field="attributes")
    words = [] if words is None else list(words)
    words = [MISSING_WORD if _blank(w) else str(w).strip() for w in words]
    return words + [MISSING_WORD] * (NUM_ATTRIBUTE_WORDS - len(words))


def item_language(mode: str, sentence: Optional[str], words: Optional[Sequence[Optional[str]]], has_language: bool,
                  strategy: str, index: int = 0) -> Tuple[Optional[Union[str, List[str]]], bool]:
    """What one item's language becomes under ``mode`` and the missing-language ``strategy``: ``(payload,
    use_template)``. ``payload`` is the text to encode (sentence mode), the four words (attribute mode), or ``None``
    for no text (``zero``, ``template``). The one home of Alg. 1's strategies, for pooled and token features alike.
    """
    if mode == "sentence":
        present = bool(has_language) and not _blank(sentence)
    else:
        present = bool(has_language) and words is not None and not all(_blank(w) for w in words)
    if present:
        return (str(sentence).strip() if mode == "sentence" else normalize_attributes(words)), False
    if strategy not in MISSING_STRATEGIES:
        raise ConfigError(f"missing-language strategy must be one of {MISSING_STRATEGIES}, got "
                          f"{strategy!r} for item {index} (field: language_strategy)")
    if strategy == "template":
        return None, True
    if strategy == "attribute":
        given = words if words is not None and not all(_blank(w) for w in words) else DEFAULT_MISSING_ATTRIBUTES
        given = normalize_attributes(given)
        # Alg. 1 line 14: BERT("none, object, none, none") in sentence mode
        return (", ".join(given) if mode == "sentence" else given), False
    return None, False  # "zero" (Alg. 1 line 8)


class LanguageFeaturizer:
    """Turns per-item language fields into the ModaMixer's language vectors, with caching.

    Args:
        encoder: a :class:`~asearch.language.encoder.TextEncoder` (or any object with ``model_id``, ``dim`` and
            ``encode_tokens(texts) -> (B×L×d, B×L mask)``).
        mode: ``"sentence"`` (vectors of width ``d``) or ``"attribute"`` (width ``4d``).
        missing: strategy for items without language: ``"zero"``, ``"template"`` or ``"attribute"``.
        cache_dir: optional folder for the on-disk feature cache (one ``.pt`` per text).
        batch_size: texts per encoder call when filling the cache. The default 1 encodes each text alone, so a text's
            feature does not depend on which other texts were new at the same moment: the padded length of a batch
            changes the kernels' shapes and hence the last bits of every row, and a resumed run (its cache empty)
            would otherwise see other bits than the unbroken run did. Larger values are faster for a cold cache
            of many texts and give features that agree to float rounding only.
    """

    def __init__(self, encoder, mode: str = "sentence", missing: str = "zero",
                 cache_dir: Optional[Union[str, os.PathLike]] = None, batch_size: int = 1):
        if mode not in MODES:
            raise ConfigError(f"language mode must be one of {MODES}, got {mode!r} (field: mode)")
        if missing not in MISSING_STRATEGIES:
            raise ConfigError(f"missing-language strategy must be one of {MISSING_STRATEGIES}, got {missing!r} "
                              "(field: missing)")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size} (field: batch_size)")
        self.encoder = encoder
        self.mode = mode
        self.missing = missing
        self.batch_size = int(batch_size)
        self.cache = FeatureCache(cache_dir)

    @property
    def dim(self) -> int:
        """Width of a language vector: ``d`` in sentence mode, ``4d`` in attribute mode."""
        return self.encoder.dim * (NUM_ATTRIBUTE_WORDS if self.mode == "attribute" else 1)

    @property
    def model_id(self) -> str:
        """Id of the encoder, part of every cache key."""
        return str(self.encoder.model_id)

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """Pooled features ``N×d`` (CPU float32) of ``texts`` under this featurizer's mode, through the cache.

        In attribute mode each text is one attribute word (a dictionary entry); in sentence mode a sentence. The
        encoder runs once on the texts missing from the cache, in batches of ``batch_size``.
        """
        texts = list(texts)
        found: Dict[str, torch.Tensor] = {}
        todo: List[str] = []
        for text in dict.fromkeys(texts):
            hit = self.cache.get(cache_key(self.model_id, self.mode, text))
            if hit is None:
                todo.append(text)
            else:
                found[text] = hit
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            features, mask = self.encoder.encode_tokens(chunk)
            pooled = pool_tokens(features, mask)  # §3.2: mean over the N+2 (or 1+2) real tokens
            for text, row in zip(chunk, pooled):
                found[text] = self.cache.put(cache_key(self.model_id, self.mode, text), row)
        if not texts:
            return torch.zeros(0, self.encoder.dim)
        return torch.stack([found[t] for t in texts])

    def attribute_vectors(self, attributes: Sequence[Optional[Sequence[Optional[str]]]]) -> torch.Tensor:
        """``B×4d`` attribute vectors: the four word features concatenated in order (only in attribute mode)."""
        if self.mode != "attribute":
            raise ConfigError("attribute_vectors needs a featurizer in attribute mode (field: mode)")
        words = [normalize_attributes(a) for a in attributes]
        flat = [w for item in words for w in item]
        feats = self.text_features(flat)                                   # (B·4)×d
        return feats.reshape(len(words), NUM_ATTRIBUTE_WORDS * self.encoder.dim)

    def __call__(self, sentences: Sequence[Optional[str]], attributes: Sequence[Optional[Sequence[Optional[str]]]],
                 has_language: Sequence[bool], strategies: Optional[Sequence[Optional[str]]] = None,
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Language vectors of a batch: ``(vectors B×dim float32 CPU, use_template B bool)``.

        ``strategies`` optionally overrides the missing-language strategy per item (e.g. the sampler's
        ``language_strategy``); ``None`` entries use the featurizer's own ``missing``.
        """
        n = len(has_language)
        if len(sentences) != n or len(attributes) != n or (strategies is not None and len(strategies) != n):
            raise DataError(f"language fields of one batch differ in length: sentences {len(sentences)}, attributes "
                            f"{len(attributes)}, has_language {n}"
                            + ("" if strategies is None else f", strategies {len(strategies)}"), field="language")
        vectors = torch.zeros(n, self.dim)
        use_template = torch.zeros(n, dtype=torch.bool)
        sent_rows: List[int] = []
        sent_texts: List[str] = []
        attr_rows: List[int] = []
        attr_words: List[List[str]] = []
        for i in range(n):
            strategy = self.missing if strategies is None or strategies[i] is None else strategies[i]
            payload, use_template[i] = item_language(self.mode, sentences[i], attributes[i], has_language[i],
                                                     strategy, index=i)
            if payload is None:  # "zero" (Alg. 1 line 8) or "template": the row stays 0
                continue
            if self.mode == "sentence":
                sent_rows.append(i)
                sent_texts.append(payload)
            else:
                attr_rows.append(i)
                attr_words.append(payload)
        if sent_rows:
            vectors[sent_rows] = self.text_features(sent_texts)
        if attr_rows:
            vectors[attr_rows] = self.attribute_vectors(attr_words)
        return vectors, use_template

    def __repr__(self) -> str:
        return (f"LanguageFeaturizer({self.model_id!r}, mode={self.mode!r}, missing={self.missing!r}, "
                f"dim={self.dim}, cache_dir={None if self.cache.cache_dir is None else str(self.cache.cache_dir)!r})")
