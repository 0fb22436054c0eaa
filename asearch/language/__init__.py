"""Language branch: offline text encoders (BERT, GPT-2, the packaged MiniLM default), sentence and attribute-word
features for the ModaMixer, a token-level encoder with layer-by-layer access (papers 001, 002), the missing-language
strategies and a memory + disk feature cache (paper 000 §3.2)."""
from asearch.language.cache import FeatureCache, cache_key
from asearch.language.encoder import (DEFAULT_TEXT_ENCODER, TextEncoder, default_model_dir, load_config,
                                      load_pretrained, load_tokenizer, pool_tokens, resolve_model_source)
from asearch.language.features import (DEFAULT_MISSING_ATTRIBUTES, MISSING_STRATEGIES, MISSING_WORD, MODES,
                                       NUM_ATTRIBUTE_WORDS, LanguageFeaturizer, item_language,
                                       normalize_attributes)
from asearch.language.tokens import TokenTextEncoder, additive_mask, prepare_texts, zero_missing

__all__ = [
    "TextEncoder", "pool_tokens", "default_model_dir", "resolve_model_source", "DEFAULT_TEXT_ENCODER",
    "LanguageFeaturizer", "normalize_attributes", "MODES", "MISSING_STRATEGIES", "NUM_ATTRIBUTE_WORDS",
    "MISSING_WORD", "DEFAULT_MISSING_ATTRIBUTES", "FeatureCache", "cache_key", "item_language", "load_config",
    "load_pretrained", "load_tokenizer", "TokenTextEncoder", "prepare_texts", "zero_missing", "additive_mask",
]
