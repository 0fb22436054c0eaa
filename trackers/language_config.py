"""The ``language`` section of a tracker experiment: :class:`LanguageConfig`, the featurizer built from it, the
record a checkpoint keeps of it, and the checks that a featurizer fits a model (:mod:`trackers.registry`
re-exports these)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from torch import nn

from asearch.config import from_dict
from asearch.errors import ConfigError

__all__ = ["LanguageConfig", "build_featurizer", "language_record", "checkpoint_language", "resolve_language",
           "check_language_width"]


@dataclass
class LanguageConfig:
    """How texts become language vectors (section ``language``): see :class:`asearch.language.LanguageFeaturizer`.

    ``encoder``: ``null`` (the packaged MiniLM, d = 384), a local model directory or a cached Hugging Face name;
    ``mode``: ``sentence`` | ``attribute``; ``missing``: ``zero`` | ``template`` | ``attribute``; ``enabled: false``
    gives no featurizer (zero language vectors).
    """

    enabled: bool = True
    encoder: Optional[str] = None
    mode: str = "sentence"
    missing: str = "zero"
    cache_dir: Optional[str] = None
    max_length: int = 128


def build_featurizer(cfg: LanguageConfig, device: Any = None, stored: Optional[Mapping[str, Any]] = None) -> Any:
    """A :class:`~asearch.language.LanguageFeaturizer` for ``cfg`` (``None`` when ``cfg.enabled`` is false).

    ``stored``: the language record of the checkpoint the settings came from (:func:`checkpoint_language`); a
    missing encoder then says that the checkpoint names it and which key points elsewhere."""
    if not cfg.enabled:
        return None
    from asearch.errors import ModelNotFoundError
    from asearch.language import LanguageFeaturizer, TextEncoder

    try:
        encoder = TextEncoder(cfg.encoder, device=device, max_length=cfg.max_length)
    except ModelNotFoundError as exc:
        if stored is not None and _same_encoder(cfg.encoder, stored.get("encoder")):
            raise ModelNotFoundError(f"the checkpoint was trained with language.encoder {cfg.encoder!r}, which is "
                                     f"not on this machine; set language.encoder to where that model is here. "
                                     f"{exc}") from exc
        raise
    return LanguageFeaturizer(encoder, mode=cfg.mode, missing=cfg.missing, cache_dir=cfg.cache_dir)


#: the keys of a checkpoint's language record that a tracking or search config may leave to the checkpoint
_STORED_LANGUAGE_KEYS = ("enabled", "encoder", "mode", "missing", "max_length")


def _same_encoder(a: Any, b: Any) -> bool:
    norm = lambda v: "default" if v is None or str(v).strip().lower() in ("", "default") else str(v)  # noqa: E731
    return norm(a) == norm(b)


def language_record(cfg: LanguageConfig, featurizer: Any = None) -> Dict[str, Any]:
    """What a checkpoint records of its language branch: whether it is on, the encoder as configured (``default``
    for the packaged one), the mode, the missing-language strategy, max_length and, given the ``featurizer``,
    the encoder's model id and the width of a language vector."""
    record: Dict[str, Any] = {"enabled": bool(cfg.enabled), "encoder": "default" if cfg.encoder is None
                              else str(cfg.encoder), "mode": cfg.mode, "missing": cfg.missing,
                              "max_length": int(cfg.max_length)}
    if featurizer is not None:
        record.update(model_id=str(featurizer.model_id), dim=int(featurizer.dim))
    return record


def checkpoint_language(ckpt: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The language record of a checkpoint: ``build_info.language`` (:func:`language_record`), else the
    ``language`` section of its run config (older checkpoints), else ``None``."""
    info = ckpt.get("build_info")
    if isinstance(info, Mapping) and isinstance(info.get("language"), Mapping):
        return dict(info["language"])
    config = ckpt.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("language"), Mapping):
        lang = dict(config["language"])
        if lang.get("encoder") is None:
            lang["encoder"] = "default"
        return lang
    return None


def resolve_language(given: Optional[Mapping[str, Any]], stored: Optional[Mapping[str, Any]],
                     source: str = "language") -> LanguageConfig:
    """Language settings for a model from a checkpoint: the keys ``given`` sets (not null) win; ``enabled``,
    ``encoder``, ``mode``, ``missing`` and ``max_length`` that it leaves out (or null) come from the checkpoint's record
    ``stored``; the rest are the defaults. ``encoder: default`` names the packaged MiniLM explicitly."""
    merged: Dict[str, Any] = {k: stored[k] for k in _STORED_LANGUAGE_KEYS if stored and stored.get(k) is not None}
    if merged.get("encoder") == "default":
        merged["encoder"] = None
    for key, value in (given or {}).items():
        if value is not None:
            merged[key] = None if key == "encoder" and str(value).strip().lower() == "default" else value
    return from_dict(LanguageConfig, merged, source=source, prefix="language.")


def check_language_width(featurizer: Any, model: nn.Module, cfg: Optional[LanguageConfig] = None,
                         stored: Optional[Mapping[str, Any]] = None, source: str = "the checkpoint") -> None:
    """``ConfigError`` naming both sides when the featurizer's vectors do not have the model's language width
    (``cfg``: the settings the featurizer was built from; ``stored``: the checkpoint's record, if any)."""
    dim = getattr(model, "language_dim", None)
    if featurizer is None or dim is None or not getattr(model, "uses_language", True) or featurizer.dim == int(dim):
        return
    encoder = (cfg.encoder or "default") if cfg is not None else featurizer.model_id
    given = f"language.encoder {encoder!r} (mode {featurizer.mode}) gives {featurizer.dim}-d vectors"
    if stored is not None:
        raise ConfigError(f"{given}, but {source} was trained with {int(dim)}-d ones (language.encoder "
                          f"{stored.get('encoder') or 'default'!r}, mode {stored.get('mode', 'sentence')}); leave "
                          "language.encoder and language.mode out of the config (or null) to use the checkpoint's")
    raise ConfigError(f"{given}, but the model of {source} expects {int(dim)} (its language_dim); change "
                      "language.encoder or language.mode, or leave the model's language_dim out of the config "
                      "(it follows from language.encoder)")
