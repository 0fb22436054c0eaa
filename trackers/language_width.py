"""The model's language width follows from the text encoder (``language.encoder``) and the language mode.

A language vector is ``d`` wide in ``sentence`` mode and ``4d`` in ``attribute`` mode (paper 000 §3.2), where ``d``
is the encoder's hidden size (384 for the packaged MiniLM, 768 for BERT-base). Each language-using family names the
model key that holds that width in its registry entry (:attr:`trackers.registry.ModelEntry.language_dim_key`:
``supernet.language_dim`` for vlt_scar / vlt_tt, ``mixer.language_dim`` for vlt_ost). :func:`resolve_language_dim`
fills that key from the encoder when the config leaves it out (or null), and raises a :class:`ConfigError` naming
both keys and both values when an explicit value disagrees with the encoder.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from asearch.errors import ConfigError

__all__ = ["language_dim_key", "get_language_dim", "resolve_language_dim", "build_token_text"]


def language_dim_key(model: Mapping[str, Any]) -> Optional[str]:
    """The dotted key under ``model`` that holds the language width of the family of ``model['name']``
    (e.g. ``"mixer.language_dim"``), or ``None`` for a vision-only family."""
    from trackers.registry import get_entry

    name = model.get("name") if isinstance(model, Mapping) else None
    if name is None:
        return None
    return get_entry(str(name)).language_dim_key


def _get(model: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of a plain model mapping (``None`` when absent or null)."""
    node: Any = model
    for part in key.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            return None
        node = node[part]
    return node


def get_language_dim(model: Mapping[str, Any], key: str) -> Optional[int]:
    """The language width at dotted ``key`` of a plain model mapping (``None`` when absent or null)."""
    value = _get(model, key)
    return None if value is None else int(value)


def _set(model: Dict[str, Any], key: str, value: Any) -> None:
    """Set dotted ``key`` of a plain model mapping (copying the sections on the way); ``None`` removes it."""
    parts = key.split(".")
    node = model
    for part in parts[:-1]:
        node[part] = dict(node.get(part) or {})
        node = node[part]
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def _fill_encoder(model: Dict[str, Any], encoder: Optional[str], source: str) -> None:
    """A family with its own language model (``ModelEntry.language_encoder_key``, e.g. PJVLT's ``text.encoder``)
    records ``language.encoder`` in its model section (``default`` for the packaged MiniLM), so that a checkpoint
    rebuilds its language model; an explicit other value is a :class:`ConfigError` naming both keys."""
    from trackers.registry import get_entry

    name = model.get("name")
    key = None if name is None else get_entry(str(name)).language_encoder_key
    if key is None:
        return
    value = "default" if encoder is None or str(encoder).strip().lower() in ("", "default") else str(encoder)
    given = _get(model, key)
    if given is not None and str(given) != value:
        raise ConfigError(f"{source}: model.{key} is {given!r}, but language.encoder is {value!r}; leave model.{key} "
                          "out (it follows from language.encoder)")
    _set(model, key, value)


def resolve_language_dim(model: Mapping[str, Any], width: Optional[int], encoder: Optional[str] = None,
                         mode: str = "sentence", source: str = "<config>") -> Dict[str, Any]:
    """A copy of the plain ``model`` section whose language width key holds ``width`` (the featurizer's ``dim``).

    A family with its own language model also gets ``language.encoder`` at its ``language_encoder_key``.
    ``width`` ``None`` (language disabled) keeps an explicit value and drops a null one (the family's default
    applies). An explicit value other than ``width`` raises :class:`ConfigError` naming ``model.<key>``,
    ``language.encoder`` / ``language.mode`` and both values. A vision-only family is returned unchanged.
    """
    out = dict(model)
    _fill_encoder(out, encoder, source)
    key = language_dim_key(out)
    if key is None:
        return out
    given = get_language_dim(out, key)
    if width is None:
        _set(out, key, given)
        return out
    if given is not None and given != int(width):
        name = "default" if encoder is None else encoder
        raise ConfigError(
            f"{source}: model.{key} is {given}, but language.encoder {name!r} (language.mode {mode}) gives "
            f"{int(width)}-d language vectors; leave model.{key} out (it follows from language.encoder) or set it "
            f"to {int(width)}")
    _set(out, key, int(width))
    return out


def build_token_text(text_cfg: Any, family: str, pretrained: bool = True, text_config: Any = None) -> Any:
    """The token language model of a family that reads word tokens (PJVLT, SATracker, COST, CTRTNL, grounding):
    a :class:`~asearch.language.TokenTextEncoder` from the model's ``text`` section (``encoder``, ``trainable``,
    ``max_length``; ``width`` checked against the encoder: a mismatch is a ``ConfigError`` naming both). With
    ``pretrained`` and no ``text_config`` its weights load and the training run's init report notes them;
    ``text_config`` (a ``transformers`` config) builds it randomly initialised without any file (``meta`` checks)."""
    from asearch.language import TokenTextEncoder

    t = text_cfg
    text = TokenTextEncoder(t.encoder, trainable=t.trainable, max_length=t.max_length,
                            pretrained=pretrained and text_config is None, config=text_config)
    if t.width is not None and int(t.width) != text.width:
        raise ConfigError(f"model.text.width is {t.width}, but language.encoder {text.model_id!r} gives "
                          f"{text.width}-d tokens ({family} reads word tokens: language.mode must be sentence)")
    if pretrained and text_config is None:
        from trackers.init_report import note_init

        note_init(text, "text encoder", text.model_id, len(text.state_dict()))
    return text
