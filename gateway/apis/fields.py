"""Checking the fields of a request body: the primitives every API's `validate` is written with.

Each check refuses with a `BadRequest` whose `param` is the path to the field (`messages[0].content[1].text`),
before any policy, translator or provider reads the body. A wrong type, a null or a missing required
field, or a part that is not an object is refused; part types the gateway does not know pass unchanged
as long as they are objects with a string `type` (providers keep adding new ones). Only fields the
gateway or a translator reads, or that every provider requires, are checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from gateway import reasons
from gateway.apis.json_types import JsonArray, JsonObject
from gateway.errors import BadRequest

MAX_N = 16
MAX_OUTPUT_TOKENS = 1_000_000

Check = Callable[[JsonObject, str], None]  # checks one part (an object) found at a path

_MISSING = object()
_TYPES = {str: "a string", dict: "an object", list: "an array", bool: "a boolean"}


def fail(param: str, message: str) -> NoReturn:
    raise BadRequest(message, param=param, reason=reasons.BAD_REQUEST)


def require(cond: bool, message: str, param: str) -> None:
    if not cond:
        fail(param, message)


def field(obj: JsonObject, key: str, where: str, kind: type, *, required: bool = True) -> Any:
    """obj[key] if it has type `kind`; absent or null only where not required. `where` is the path to
    `obj` ("" at the top of the body)."""
    value = obj.get(key, _MISSING)
    param = f"{where}.{key}" if where else key
    if value is _MISSING or value is None:
        if required:
            fail(param, f"'{key}' is required ({_TYPES[kind]})")
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        fail(param, f"'{key}' must be {_TYPES[kind]}")
    return value


def strings(obj: JsonObject, where: str, *keys: str) -> None:
    for key in keys:
        field(obj, key, where, str)


def optional_strings(obj: JsonObject, where: str, *keys: str) -> None:
    for key in keys:
        field(obj, key, where, str, required=False)


def optional_bools(obj: JsonObject, where: str, *keys: str) -> None:
    for key in keys:
        field(obj, key, where, bool, required=False)


def optional_numbers(body: JsonObject, *keys: str) -> None:
    """Top-level sampling numbers (`temperature`, `top_p`) that translators copy to another vendor."""
    for key in keys:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            fail(key, f"'{key}' must be a number")


def string_list(body: JsonObject, key: str, *, or_string: bool = False) -> None:
    """An optional array of strings (`stop_sequences`), or also one string where the API allows it (`stop`)."""
    value = body.get(key)
    if value is None or (or_string and isinstance(value, str)):
        return
    if not isinstance(value, list):
        fail(key, f"'{key}' must be {'a string or ' if or_string else ''}an array of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            fail(f"{key}[{i}]", f"each of '{key}' must be a string")


def positive_int(body: JsonObject, name: str, limit: int) -> None:
    v = body.get(name)
    if v is None:
        return
    require(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= limit,
            f"'{name}' must be an integer between 1 and {limit}", name)


def model_and_stream(body: JsonObject) -> None:
    """What every API requires: a model alias, and `stream` a boolean if present."""
    require(isinstance(body.get("model"), str) and body["model"] != "", "'model' is required (a string)", "model")
    stream = body.get("stream", False)
    require(stream is None or isinstance(stream, bool), "'stream' must be a boolean", "stream")


def typed(part: object, where: str) -> str:
    """A part's `type`, after checking the part is an object with a string type."""
    if not isinstance(part, dict):
        fail(where, "each part must be an object with a 'type'")
    kind = part.get("type")
    if not isinstance(kind, str):
        fail(f"{where}.type", "'type' is required (a string)")
    return kind


def parts(content: JsonArray, where: str, checks: dict[str, Check]) -> None:
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        check = checks.get(typed(part, at))
        if check is not None:
            check(part, at)


def sub(key: str, *required: str, optional: tuple[str, ...] = ()) -> Check:
    """A part whose payload is an object under `key` with these string fields."""
    def check(part: JsonObject, where: str) -> None:
        inner = field(part, key, where, dict)
        strings(inner, f"{where}.{key}", *required)
        optional_strings(inner, f"{where}.{key}", *optional)
    return check


def text(key: str) -> Check:
    def check(part: JsonObject, where: str) -> None:
        field(part, key, where, str)
    return check
