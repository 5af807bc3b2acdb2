"""Transaction arguments in, results out, by type hint; and their JSON schemas.

Arguments arrive as bytes. A parameter typed `str` gets the UTF-8 text as is, `bytes`
the raw bytes; `int`, `float`, `bool`, `dict`, `list` (also `dict[str, X]`, `list[X]`)
and dataclasses are parsed from JSON and checked. An unannotated parameter is a `str`.
Results go back as bytes: `str` as UTF-8, `bytes` as is, None as nothing, everything
else (numbers, booleans, dicts, lists, dataclasses) as compact JSON.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from collections.abc import Mapping

from chaincode.errors import ChaincodeError

STATUS_BAD_ARGUMENT = 400
_SCALARS: Mapping[object, Mapping[str, str]] = {
    str: {"type": "string"},
    bytes: {"type": "string", "format": "byte"},
    int: {"type": "integer", "format": "int64"},
    float: {"type": "number", "format": "double"},
    bool: {"type": "boolean"},
}
_JSON_TYPES: Mapping[object, str] = {
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    dict: "a JSON object",
    list: "a JSON array",
    str: "a string",
}


def check_annotation(annotation: object, *, where: str) -> None:
    """Refuse, when a contract is defined, a type hint that arguments cannot take.

    Raises:
        TypeError: the annotation is not one of the supported types.
    """
    if annotation is inspect.Parameter.empty or annotation in _SCALARS:
        return
    origin = typing.get_origin(annotation)
    if annotation in (dict, list) or origin in (dict, list):
        for argument in typing.get_args(annotation):
            check_annotation(argument, where=where)
        return
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        for field in dataclasses.fields(annotation):
            check_annotation(hints[field.name], where=f"{where}.{field.name}")
        return
    raise TypeError(
        f"{where}: unsupported type {annotation!r} for a transaction argument"
    )


def parse_argument(raw: bytes, annotation: object, *, name: str) -> object:
    """The value of argument `name` from its bytes, following its type hint.

    Raises:
        ChaincodeError: (status 400) the bytes are not a value of that type.
    """
    if annotation is bytes:
        return raw
    text = _text(raw, name=name)
    if annotation is str or annotation is inspect.Parameter.empty:
        return text
    try:
        document = json.loads(text)
    except ValueError:
        raise _bad_argument(name, annotation, text) from None
    return from_json(document, annotation, name=name)


def from_json(value: object, annotation: object, *, name: str) -> object:
    """Check a decoded JSON value against a type hint, building dataclasses.

    Raises:
        ChaincodeError: (status 400) the value does not have that type.
    """
    origin = typing.get_origin(annotation) or annotation
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _dataclass_from_json(value, annotation, name=name)
    if origin is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = origin if isinstance(origin, type) else object
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise _bad_argument(name, annotation, json.dumps(value))
    arguments = typing.get_args(annotation)
    if origin is list and arguments:
        assert isinstance(value, list)
        return [from_json(item, arguments[0], name=f"{name}[]") for item in value]
    if origin is dict and len(arguments) == 2:
        assert isinstance(value, dict)
        return {
            k: from_json(v, arguments[1], name=f"{name}.{k}") for k, v in value.items()
        }
    return value


def serialize_result(value: object) -> bytes:
    """The response payload for a transaction's return value.

    Raises:
        TypeError: the value has no JSON form.
    """
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":"), default=_json_default).encode()


def json_schema(annotation: object, schemas: dict[str, object]) -> dict[str, object]:
    """The JSON schema of a type hint; dataclasses are added to `schemas` and referenced."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return {"type": "string"}
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin = typing.get_origin(annotation) or annotation
    arguments = typing.get_args(annotation)
    if origin is list:
        items = json_schema(arguments[0], schemas) if arguments else {}
        return {"type": "array", "items": items}
    if origin is dict:
        return {"type": "object"}
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        name = annotation.__name__
        if name not in schemas:
            schemas[name] = {}  # Reserve the name first, for self-referencing types.
            schemas[name] = _dataclass_schema(annotation, schemas)
        return {"$ref": f"#/components/schemas/{name}"}
    return {}


def _dataclass_schema(cls: type, schemas: dict[str, object]) -> dict[str, object]:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    return {
        "$id": cls.__name__,
        "type": "object",
        "properties": {
            field.name: json_schema(hints[field.name], schemas) for field in fields
        },
        "required": [field.name for field in fields if _is_required(field)],
        "additionalProperties": False,
    }


def _is_required(field: dataclasses.Field[object]) -> bool:
    return (
        field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    )


def _dataclass_from_json(value: object, cls: type, *, name: str) -> object:
    if not isinstance(value, dict):
        raise _bad_argument(name, cls, json.dumps(value))
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    missing = sorted(
        n for n, field in fields.items() if _is_required(field) and n not in value
    )
    if unknown or missing:
        raise ChaincodeError(
            f"argument {name}: {cls.__name__} fields unknown={unknown} missing={missing}",
            status=STATUS_BAD_ARGUMENT,
        )
    values = {
        key: from_json(item, hints[key], name=f"{name}.{key}")
        for key, item in value.items()
    }
    return cls(**values)


def _json_default(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"a {type(value).__name__} result has no JSON form")


def _text(raw: bytes, *, name: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ChaincodeError(
            f"argument {name} is not valid UTF-8", status=STATUS_BAD_ARGUMENT
        ) from None


def _bad_argument(name: str, annotation: object, text: str) -> ChaincodeError:
    origin = typing.get_origin(annotation) or annotation
    expected = _JSON_TYPES.get(
        origin, getattr(annotation, "__name__", repr(annotation))
    )
    shown = text if len(text) <= 60 else text[:57] + "..."
    return ChaincodeError(
        f"argument {name}: expected {expected}, got {shown!r}",
        status=STATUS_BAD_ARGUMENT,
    )
