"""Plain-JSON encoding of the core's frozen dataclasses, driven by their type hints.

The engine's state is stored in the warehouse between cycles (a restarted trading flow
resumes exactly where it stopped) as JSON a person can read and a SQL query can open, not
as a pickle tied to the code's memory layout. Decoding follows the dataclasses' own
annotations, so a new field needs no codec change; a value that does not fit its type is
an error, never a silent default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

import numpy as np

from core.types import ContractError

T = TypeVar("T")
JSON = Any


def encode(value: Any) -> JSON:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(encode(key)): encode(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ContractError(f"cannot encode {type(value).__name__}")


def decode(kind: type[T], data: JSON) -> T:
    return typing.cast(T, _decode(kind, data))


def _decode(kind: Any, data: JSON) -> Any:
    origin = get_origin(kind)
    if origin is Union or origin is types.UnionType:
        options = [option for option in get_args(kind) if option is not type(None)]
        if data is None:
            return None
        if len(options) != 1:
            raise ContractError(f"cannot decode a union of {options}")
        return _decode(options[0], data)
    if origin is tuple:
        arguments = get_args(kind)
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_decode(arguments[0], item) for item in data)
        return tuple(_decode(argument, item) for argument, item in zip(arguments, data, strict=True))
    if origin in (dict, Mapping):
        key_kind, value_kind = get_args(kind)
        return {_decode(key_kind, key): _decode(value_kind, item) for key, item in data.items()}
    if origin is np.ndarray:
        # NDArray[np.float64] is ndarray[shape, dtype[float64]]: the element type is inside the dtype.
        (element,) = get_args(get_args(kind)[1])
        return np.asarray(data, dtype=element)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{name: _decode(hints[name], value) for name, value in data.items()})
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is date:
        return date.fromisoformat(data)
    if kind is timedelta:
        return timedelta(seconds=data)
    if kind is float:
        return float(data)
    if kind in (int, str, bool) or kind is Any:
        return data
    raise ContractError(f"cannot decode {kind!r}")


@cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)
