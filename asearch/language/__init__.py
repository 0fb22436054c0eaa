"""Language branch: offline text encoders (BERT, GPT-2, the packaged MiniLM default), sentence and attribute-word
features for the ModaMixer, the missing-language strategies and a memory + disk feature cache (paper 000 §3.2)."""
from asearch.language.cache import FeatureCache, cache_key
from asearch.language.encoder import (DEFAULT_TEXT_ENCODER, TextEncoder, default_model_dir, pool_tokens,
                                      resolve_model_source)
from asearch.language.features import (DEFAULT_MISSING_ATTRIBUTES, MISSING_STRATEGIES, MISSING_WORD, MODES,
                                       NUM_ATTRIBUTE_WORDS, LanguageFeaturizer, normalize_attributes)

__all__ = [
    "TextEncoder", "pool_tokens", "default_model_dir", "resolve_model_source", "DEFAULT_TEXT_ENCODER",
    "LanguageFeaturizer", "normalize_attributes", "MODES", "MISSING_STRATEGIES", "NUM_ATTRIBUTE_WORDS",
    "MISSING_WORD", "DEFAULT_MISSING_ATTRIBUTES", "FeatureCache", "cache_key",
]
