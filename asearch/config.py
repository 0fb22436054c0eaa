"""Strict, typed configuration: dataclasses with code defaults, YAML on top, ``--set key=value`` overrides.

Every config section is a ``@dataclass``. :func:`from_dict` builds one from a plain mapping and rejects unknown
keys (naming the full dotted key and the file), :func:`load_config` reads a YAML file (with optional ``_base_``
files, resolved relative to the including file and merged depth-first) and applies overrides, and :func:`to_dict`
turns a config back into plain data (for checkpoints and logs).
"""
from __future__ import annotations

import copy
import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Type, TypeVar, Union

import yaml

from asearch.errors import ConfigError

T = TypeVar("T")

__all__ = [
    "from_dict",
    "to_dict",
    "load_config",
    "load_yaml",
    "apply_overrides",
    "parse_override",
    "experiments_dir",
    "dataset_root",
    "dataset_root_var",
    "find_dataset_root",
]


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Convert ``value`` to the annotated type ``tp`` or raise a :class:`ConfigError` naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except ConfigError as exc:  # try the next member of the union
                errors.append(str(exc))
        raise ConfigError(f"{source}: key '{key}': value {value!r} matches none of {tp}")
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: key '{key}' must be a mapping, got {type(value).__name__}")
        return from_dict(tp, value, source=source, prefix=key + ".")
    if origin in (list, List, Sequence, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{key}' must be a list, got {value!r}")
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_convert(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
            if args and len(args) != len(value):
                raise ConfigError(f"{source}: key '{key}' must have {len(args)} items, got {len(value)}")
            return tuple(_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args or [Any] * len(value))))
        item = args[0] if args else Any
        return [_convert(v, item, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin in (dict, Dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: key '{key}' must be a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_convert(k, kt, key, source): _convert(v, vt, f"{key}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{source}: key '{key}' must be a boolean, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{source}: key '{key}' must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{source}: key '{key}' must be an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}' must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: key '{key}' must be a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}' must be a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: Type[T], data: Optional[Mapping[str, Any]], source: str = "<dict>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and badly typed values raise :class:`ConfigError`."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown config key '{prefix}{unknown[0]}' (known keys under '{prefix or '<root>'}': "
            f"{', '.join(sorted(fields))})"
        )
    kwargs = {name: _convert(value, hints[name], prefix + name, source) for name, value in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """Plain-data (YAML/JSON-able) copy of a config dataclass."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def _merge(base: Dict[str, Any], top: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def load_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a YAML mapping, resolving ``_base_`` (a path or a list of paths relative to this file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    merged: Dict[str, Any] = {}
    for base in bases:
        merged = _merge(merged, load_yaml(path.parent / base))
    return _merge(merged, data)


def parse_override(text: str) -> tuple:
    """``"a.b=3"`` -> ``(["a", "b"], 3)``; the value is parsed as YAML (numbers, booleans, lists)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Apply ``key.sub=value`` strings to a plain config mapping (returns a new mapping; an integer key indexes a
    list, e.g. ``data.datasets.0.root=DIR``)."""
    out = copy.deepcopy(dict(data))  # never modify the caller's nested mappings and lists
    for text in overrides or []:
        keys, value = parse_override(text)
        node = out
        for depth, k in enumerate(keys):
            last = depth == len(keys) - 1
            if isinstance(node, list):  # an integer key indexes a list: data.datasets.0.root=DIR
                try:
                    i = int(k)
                    node[i]
                except (ValueError, IndexError):
                    raise ConfigError(f"--set {text}: '{'.'.join(keys[:depth])}' is a list of {len(node)} items; "
                                      f"'{k}' is not a valid index") from None
                if last:
                    node[i] = value
                else:
                    if not isinstance(node[i], (dict, list)):
                        node[i] = {}
                    node = node[i]
                continue
            if last:
                node[k] = value
                break
            nxt = node.get(k)
            if not isinstance(nxt, (dict, list)):
                nxt = {}
                node[k] = nxt
            node = nxt
    return out


def load_config(cls: Type[T], path: Optional[Union[str, Path]] = None, overrides: Sequence[str] = ()) -> T:
    """Code defaults of ``cls`` <- YAML at ``path`` (if given) <- ``overrides``; strict about unknown keys."""
    data: Dict[str, Any] = load_yaml(path) if path else {}
    data = apply_overrides(data, overrides)
    return from_dict(cls, data, source=str(path) if path else "--set")


def experiments_dir() -> Path:
    """The ``experiments/`` folder of this checkout (the package is installed in editable/develop mode)."""
    here = Path(__file__).resolve().parent.parent / "experiments"
    if not here.is_dir():
        raise ConfigError(
            f"the experiments/ folder was not found next to the asearch package ({here}); "
            "install the toolkit from its checkout with `pip install -e .` or pass --config explicitly"
        )
    return here


def dataset_root_var(name: str) -> str:
    """The environment variable of dataset ``name``'s root: ``ASEARCH_<NAME>_ROOT``."""
    return f"ASEARCH_{name.upper().replace('-', '_')}_ROOT"


def find_dataset_root(name: str, configured: Optional[str] = None) -> Optional[Path]:
    """Root folder of dataset ``name`` (configured path, else ``$ASEARCH_<NAME>_ROOT``) when it is set and exists,
    else ``None`` (no error: for callers that leave a missing dataset out)."""
    root = configured or os.environ.get(dataset_root_var(name))
    path = Path(root).expanduser() if root else None
    return path if path is not None and path.is_dir() else None


def dataset_root(name: str, configured: Optional[str] = None, layout: str = "") -> Path:
    """Root folder of dataset ``name``: the configured path, else ``$ASEARCH_<NAME>_ROOT``.

    A missing root raises :class:`ConfigError` saying which variable or config key to set and the expected layout.
    """
    var = dataset_root_var(name)
    root = configured or os.environ.get(var)
    if not root:
        raise ConfigError(
            f"no root folder for dataset '{name}': set the config key 'root' of that dataset or the environment "
            f"variable {var}" + (f". Expected layout: {layout}" if layout else "")
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"dataset '{name}': root folder {path} does not exist (from "
            f"{'the config' if configured else var})" + (f". Expected layout: {layout}" if layout else "")
        )
    return path
