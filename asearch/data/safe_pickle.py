"""Load a pickle that may come from anywhere (a downloaded annotation file) without running its code.

:func:`load_plain_pickle` reads only plain data: ``dict``, ``list``, ``tuple``, ``str``, ``int``, ``float``,
``bool`` and ``None``. Any reference to another global (``os.system`` through ``__reduce__``, ``numpy`` arrays,
class instances) is refused before it is imported or called, and any other object the pickle opcodes build without
a global (``bytes``, ``set``, ``frozenset``, ``bytearray``) is refused after loading; both raise
:class:`~asearch.errors.DataError` naming the file. Python 2 pickles (the released RefCOCO ``refs(*.p)`` files)
load: their ``str`` is decoded as UTF-8 and ``unicode`` / ``long`` map to ``str`` / ``int``.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Union

from asearch.errors import DataError

__all__ = ["load_plain_pickle", "PLAIN_TYPES"]

#: the only types a plain-data pickle may hold (exact types: no subclasses)
PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, type(None))

#: the builtin names a pickle may reference as globals (Python 3 and Python 2 spellings) -> the type they give
_ALLOWED_GLOBALS = {"dict": dict, "list": list, "tuple": tuple, "str": str, "int": int, "float": float,
                    "bool": bool, "unicode": str, "long": int}


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler whose globals are the builtin plain types only (module doc)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[name]
        raise pickle.UnpicklingError(f"it references the global '{module}.{name}'; only plain data (dict, list, "
                                     "tuple, str, int, float, bool, None) is allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it holds a persistent reference; only plain data is allowed")


def _check_plain(obj: Any, path: Path, field: str) -> None:
    """Raise DataError when ``obj`` (walked without recursion; shared and cyclic parts once) holds a non-plain
    object."""
    stack = [obj]
    seen = set()
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind not in PLAIN_TYPES:
            raise DataError(f"the pickle holds a {kind.__module__}.{kind.__qualname__} object; only plain data "
                            "(dict, list, tuple, str, int, float, bool, None) is allowed", path=path, field=field)
        if kind in (dict, list, tuple):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if kind is dict:
                stack.extend(node.keys())
                stack.extend(node.values())
            else:
                stack.extend(node)


def load_plain_pickle(path: Union[str, Path], field: str = "pickle") -> Any:
    """The plain data (module doc) pickled in ``path``; :class:`DataError` naming the file and ``field`` when the
    file is missing, is not a pickle, or holds anything but plain data. Nothing in the file is executed."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path, field=field)
    raw = path.read_bytes()
    try:
        data = _PlainUnpickler(io.BytesIO(raw), encoding="utf-8", errors="strict").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"refused to unpickle: {exc}", path=path, field=field) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"a Python 2 string in the pickle is not UTF-8 ({exc.reason} at byte {exc.start})",
                        path=path, field=field) from None
    except Exception as exc:  # truncated or corrupt data raises several types (EOFError, ValueError, TypeError, ...)
        raise DataError(f"not a readable pickle ({type(exc).__name__}: {exc})", path=path, field=field) from None
    _check_plain(data, path, field)
    return data
