"""The shape of what callers nest inside a request: message content parts, tool calls, content blocks,
Responses input items and embeddings input, checked once before any policy, translator or provider
reads them.

Every later stage (the mock provider, the Anthropic and OpenAI translators, the guardrails' text
slots, a real upstream) may then rely on a part of a known type having its fields with the right
types. A wrong type, a null or a missing required field, or a part that is not an object is a 400
whose `param` is the path to it (`messages[0].content[1].text`). Part types the gateway does not know
pass unchanged, as long as they are objects with a string `type`: providers keep adding new ones.
Only fields the gateway or a translator reads, or that every provider requires, are checked.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway import reasons
from gateway.errors import BadRequest

_MISSING = object()
_TYPES = {str: "a string", dict: "an object", list: "an array", bool: "a boolean"}


def _fail(param: str, message: str) -> None:
    raise BadRequest(message, param=param, reason=reasons.BAD_REQUEST)


def _field(obj: dict, key: str, where: str, kind: type, *, required: bool = True) -> object:
    """obj[key] if it has type `kind`; absent or null only where not required."""
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        if required:
            _fail(f"{where}.{key}", f"'{key}' is required ({_TYPES[kind]})")
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        _fail(f"{where}.{key}", f"'{key}' must be {_TYPES[kind]}")
    return value


def _strings(obj: dict, where: str, *keys: str) -> None:
    for key in keys:
        _field(obj, key, where, str)


def _optional_strings(obj: dict, where: str, *keys: str) -> None:
    for key in keys:
        _field(obj, key, where, str, required=False)


def _typed(part: object, where: str) -> str:
    """A part's `type`, after checking the part is an object with a string type."""
    if not isinstance(part, dict):
        _fail(where, "each part must be an object with a 'type'")
    kind = part.get("type")  # type: ignore[union-attr]
    if not isinstance(kind, str):
        _fail(f"{where}.type", "'type' is required (a string)")
    return kind  # type: ignore[return-value]


def _parts(content: list, where: str, checks: dict[str, Callable[[dict, str], None]]) -> None:
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        check = checks.get(_typed(part, at))
        if check is not None:
            check(part, at)


def _sub(key: str, *required: str, optional: tuple[str, ...] = ()) -> Callable[[dict, str], None]:
    """A part whose payload is an object under `key` with these string fields."""
    def check(part: dict, where: str) -> None:
        inner = _field(part, key, where, dict)
        _strings(inner, f"{where}.{key}", *required)  # type: ignore[arg-type]
        _optional_strings(inner, f"{where}.{key}", *optional)  # type: ignore[arg-type]
    return check


def _text(key: str) -> Callable[[dict, str], None]:
    return lambda part, where: _field(part, key, where, str)


# -- Chat Completions --------------------------------------------------------------------------------
_CHAT_PARTS: dict[str, Callable[[dict, str], None]] = {
    "text": _text("text"),
    "refusal": _text("refusal"),
    "image_url": _sub("image_url", "url", optional=("detail",)),
    "input_audio": _sub("input_audio", "data", "format"),
    "file": _sub("file", optional=("file_data", "file_id", "filename")),
}


def _tool_call(call: object, where: str) -> None:
    if not isinstance(call, dict):
        _fail(where, "each tool call must be an object")
    kind = _typed(call, where) if "type" in call else "function"  # type: ignore[operator]
    _field(call, "id", where, str)  # type: ignore[arg-type]
    if kind == "function":
        _sub("function", "name", "arguments")(call, where)  # type: ignore[arg-type]
    elif kind == "custom":
        _sub("custom", "name", "input")(call, where)  # type: ignore[arg-type]


def check_chat(body: dict) -> None:
    for i, msg in enumerate(body["messages"]):
        where = f"messages[{i}]"
        content = msg.get("content")
        if isinstance(content, list):
            _parts(content, f"{where}.content", _CHAT_PARTS)
        elif content is not None and not isinstance(content, str):
            _fail(f"{where}.content", "'content' must be a string, an array of parts or null")
        _optional_strings(msg, where, "name", "tool_call_id")
        calls = msg.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                _fail(f"{where}.tool_calls", "'tool_calls' must be an array")
            for k, call in enumerate(calls):
                _tool_call(call, f"{where}.tool_calls[{k}]")
        if msg.get("function_call") is not None:
            _sub("function_call", "name", "arguments")(msg, where)
    _chat_tools(body)


def _chat_tools(body: dict) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            _fail("tools", "'tools' must be an array")
        for k, tool in enumerate(tools):
            kind = _typed(tool, f"tools[{k}]")
            if kind == "function":
                _sub("function", "name", optional=("description",))(tool, f"tools[{k}]")
                _field(tool["function"], "parameters", f"tools[{k}].function", dict, required=False)
            elif kind == "custom":
                _sub("custom", "name", optional=("description",))(tool, f"tools[{k}]")
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, str):
        kind = _typed(choice, "tool_choice")
        if kind == "function":
            _sub("function", "name")(choice, "tool_choice")  # type: ignore[arg-type]


# -- Anthropic Messages ------------------------------------------------------------------------------
def _source(block: dict, where: str) -> None:
    source = _field(block, "source", where, dict)
    at = f"{where}.source"
    kind = _typed(source, at)
    if kind == "base64":
        _strings(source, at, "media_type", "data")  # type: ignore[arg-type]
    elif kind == "text":
        _strings(source, at, "data")  # type: ignore[arg-type]
        _optional_strings(source, at, "media_type")  # type: ignore[arg-type]
    elif kind == "url":
        _strings(source, at, "url")  # type: ignore[arg-type]
    elif kind == "file":
        _strings(source, at, "file_id")  # type: ignore[arg-type]
    elif kind == "content":
        _block_content(source, "content", at, required=True)  # type: ignore[arg-type]


def _tool_use(block: dict, where: str) -> None:
    _strings(block, where, "id", "name")
    _field(block, "input", where, dict)


def _tool_result(block: dict, where: str) -> None:
    _strings(block, where, "tool_use_id")
    _field(block, "is_error", where, bool, required=False)
    _block_content(block, "content", where, required=False)


def _block_content(obj: dict, key: str, where: str, *, required: bool) -> None:
    """A string or an array of content blocks (tool results and content documents nest them)."""
    content = obj.get(key)
    if isinstance(content, list):
        _parts(content, f"{where}.{key}", _BLOCKS)
    elif not isinstance(content, str) and (content is not None or required):
        _fail(f"{where}.{key}", f"'{key}' must be a string or an array of content blocks")


def _document(block: dict, where: str) -> None:
    _source(block, where)
    _optional_strings(block, where, "title", "context")


_BLOCKS: dict[str, Callable[[dict, str], None]] = {
    "text": _text("text"),
    "image": _source,
    "document": _document,
    "tool_use": _tool_use,
    "server_tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": lambda block, where: _strings(block, where, "thinking", "signature"),
    "redacted_thinking": _text("data"),
}


def check_messages(body: dict) -> None:
    system = body.get("system")
    if isinstance(system, list):
        _parts(system, "system", _BLOCKS)
    elif system is not None and not isinstance(system, str):
        _fail("system", "'system' must be a string or an array of text blocks")
    for i, msg in enumerate(body["messages"]):
        _block_content(msg, "content", f"messages[{i}]", required=True)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            _fail("tools", "'tools' must be an array")
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict):
                _fail(f"tools[{k}]", "each tool must be an object")
            _strings(tool, f"tools[{k}]", "name")
            _optional_strings(tool, f"tools[{k}]", "type", "description")
            if tool.get("type") in (None, "custom"):
                _field(tool, "input_schema", f"tools[{k}]", dict)
    choice = body.get("tool_choice")
    if choice is not None and _typed(choice, "tool_choice") == "tool":
        _strings(choice, "tool_choice", "name")
    # Read by the translation to OpenAI's wire (`stop`, `user`): a wrong type there would be a gateway bug.
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(x, str) for x in stop)):
        _fail("stop_sequences", "'stop_sequences' must be an array of strings")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        _fail("metadata", "'metadata' must be an object")


# -- Responses ---------------------------------------------------------------------------------------
_RESPONSE_PARTS: dict[str, Callable[[dict, str], None]] = {
    "input_text": _text("text"),
    "output_text": _text("text"),
    "text": _text("text"),
    "refusal": _text("refusal"),
    "input_image": lambda part, where: _optional_strings(part, where, "image_url", "file_id", "detail"),
    "input_file": lambda part, where: _optional_strings(part, where, "file_id", "file_data", "filename", "file_url"),
    "input_audio": _sub("input_audio", "data", "format"),
}


def _response_content(item: dict, key: str, where: str) -> None:
    content = item.get(key, _MISSING)
    if isinstance(content, list):
        _parts(content, f"{where}.{key}", _RESPONSE_PARTS)
    elif not isinstance(content, str):
        _fail(f"{where}.{key}", f"'{key}' is required (a string or an array of parts)")


def check_responses(body: dict) -> None:
    if body.get("instructions") is not None and not isinstance(body["instructions"], str):
        _fail("instructions", "'instructions' must be a string")
    items = body["input"]
    if isinstance(items, str):
        return
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            _fail(where, "each input item must be an object")
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            _fail(f"{where}.type", "'type' must be a string")
        if kind == "message":
            _strings(item, where, "role")
            _response_content(item, "content", where)
        elif kind == "function_call":
            _strings(item, where, "call_id", "name", "arguments")
        elif kind in ("function_call_output", "custom_tool_call_output"):
            _strings(item, where, "call_id")
            _response_content(item, "output", where)


# -- Embeddings --------------------------------------------------------------------------------------
def _token_ids(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_embeddings(body: dict) -> None:
    """A string, an array of strings, an array of token ids, or an array of token-id arrays."""
    inp = body["input"]
    if isinstance(inp, str):
        return
    first = inp[0]
    if isinstance(first, str):
        ok: Callable[[object], bool] = lambda v: isinstance(v, str)  # noqa: E731
    elif _token_ids(first):
        ok = _token_ids
    else:
        ok = lambda v: isinstance(v, list) and len(v) > 0 and all(_token_ids(t) for t in v)  # noqa: E731
    for i, value in enumerate(inp):
        if not ok(value):
            _fail(f"input[{i}]", "'input' must be a string, an array of strings, an array of token ids "
                                 "or an array of token-id arrays")


CHECKS: dict[str, Callable[[dict], None]] = {
    "chat": check_chat,
    "messages": check_messages,
    "responses": check_responses,
    "embeddings": check_embeddings,
}
