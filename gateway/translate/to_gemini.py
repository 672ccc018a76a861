"""OpenAI Chat Completions and Anthropic Messages requests for a Gemini-wire provider (Google AI or
Vertex AI `generateContent`): `chat_to_gemini_request` and `messages_to_gemini_request` build the upstream
body. (The answer is read back by the Gemini decoder, gateway.codecs.gemini, and written by the
caller's encoder.) What is kept, mapped or dropped, field by field, is the table in docs/providers.md.

The model and streaming are in the URL, not the body. System messages become `systemInstruction`;
assistant turns are role `model`; tool calls are `functionCall` parts (args as an object) and their
results `functionResponse` parts, which Gemini matches by function name: the name is found from the
tool call's id in the conversation. A thought signature that the Gemini decoder put into a tool call's
id goes back on its `functionCall` part. Images and files must be base64 (`inlineData`); a URL is
refused with a 400, as is anything else that cannot be sent, rather than dropped.
"""

from __future__ import annotations

import binascii

from typing import Any

import orjson

from gateway.codecs.gemini import signature_of
from gateway.errors import BadRequest

_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3", "flac": "audio/flac", "aac": "audio/aac",
               "ogg": "audio/ogg", "opus": "audio/ogg", "m4a": "audio/mp4", "aiff": "audio/aiff"}
# OpenAI's reasoning_effort as a Gemini 2.5 thinking budget (Google's own OpenAI compatibility mapping).
_THINKING_BUDGET = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}


# -- shared -----------------------------------------------------------------------------------------
def _append(turns: list[dict], role: str, parts: list[dict]) -> None:
    """Add a turn, merging it into the previous one of the same role."""
    if not parts:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["parts"].extend(parts)
    else:
        turns.append({"role": role, "parts": parts})


def _inline(media_type: object, data: object, where: str) -> dict:
    if not isinstance(media_type, str) or not media_type or not isinstance(data, str) or not _is_base64(data):
        raise BadRequest("inline media needs a media type and base64 data", param=where)
    return {"inlineData": {"mimeType": media_type, "data": data}}


def _is_base64(data: str) -> bool:
    """Whether Gemini can decode `data` (standard or URL-safe alphabet, padding optional): checked here, so
    a bad image is the caller's 400 naming the part, not an upstream 400 (binascii, in C: ~1 ms a MB)."""
    if not data.isascii():
        return False
    raw = data.encode().translate(_URLSAFE)
    try:
        binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)
    except binascii.Error:
        return False
    return True


_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _data_url(url: object, where: str) -> dict:
    if not isinstance(url, str) or not url.startswith("data:"):
        raise BadRequest("images and files for Gemini models must be base64 data URLs "
                         "(data:<media type>;base64,...)", param=where)
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not media_type:
        raise BadRequest("data URLs must be base64 with a media type", param=where)
    return _inline(media_type, data, where)


def _args(raw: object, where: str) -> dict:
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise BadRequest("tool call arguments must be a JSON object", param=where) from None
    if not isinstance(value, dict):
        raise BadRequest("tool call arguments must be a JSON object", param=where)
    return value


def _function_call(call_id: object, name: str, args: dict) -> dict:
    _, signature = signature_of(call_id)
    part: dict = {"functionCall": {"name": name, "args": args}}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _function_response(name: str, text: str, *, error: bool = False) -> dict:
    """A tool's result. Gemini wants an object: a JSON object result is sent as it is; other text under
    `output` (or `error`), the keys Google's function-calling guide names."""
    value: Any = None
    if not error and text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
    response = value if isinstance(value, dict) else {"error" if error else "output": text}
    return {"functionResponse": {"name": name, "response": response}}


def _declaration(name: object, description: object, schema: object, where: str) -> dict:
    if not isinstance(name, str) or not name:
        raise BadRequest("a tool needs a name", param=where)
    decl: dict = {"name": name}
    if isinstance(description, str) and description:
        decl["description"] = description
    # JSON Schema as given (no conversion to the OpenAPI subset of `parameters`); a function without
    # parameters sends none, as Gemini refuses an object schema without properties.
    if isinstance(schema, dict) and schema and not (schema.get("type") == "object" and not schema.get("properties")):
        decl["parametersJsonSchema"] = schema
    return decl


def _generation(out: dict, **values: object) -> None:
    config = {k: v for k, v in values.items() if v is not None}
    if config:
        out["generationConfig"] = {**out.get("generationConfig", {}), **config}


def _number(body: dict, key: str) -> float | int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadRequest(f"'{key}' must be a number", param=key)
    return v


def _required(turns: list[dict]) -> list[dict]:
    if not turns:  # Gemini refuses a request without contents: say so in the caller's terms
        raise BadRequest("the messages hold no text, media or tool turns to send (system text alone is not "
                         "enough for this model)", param="messages")
    return turns


# -- OpenAI Chat Completions -------------------------------------------------------------------------
def chat_to_gemini_request(body: dict) -> dict:
    n = body.get("n")
    if n is not None and n != 1:
        raise BadRequest("n other than 1 is not supported for this model", param="n")
    if body.get("logprobs") or body.get("top_logprobs") is not None:
        raise BadRequest("logprobs are not supported for this model", param="logprobs")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    system: list[dict] = []
    turns: list[dict] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the tool messages that answer them
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(_chat_parts(msg.get("content"), where, text_only=True))
        elif role == "user":
            _append(turns, "user", _chat_parts(msg.get("content"), where))
        elif role == "assistant":
            parts = _chat_parts(_refusals_as_text(msg.get("content")), where, text_only=True)
            for j, call in enumerate(msg.get("tool_calls") or ()):
                fn = call.get("function") or {}
                if call.get("type", "function") != "function" or not fn.get("name"):
                    raise BadRequest("only function tool calls can be sent to this model", param=f"{where}.tool_calls[{j}]")
                names[call.get("id") or ""] = fn["name"]
                parts.append(_function_call(call.get("id"), fn["name"],
                                            _args(fn.get("arguments"), f"{where}.tool_calls[{j}]")))
            _append(turns, "model", parts)
        elif role == "tool":
            name = names.get(msg.get("tool_call_id") or "")
            if name is None:
                raise BadRequest("a tool message must answer a tool call of an earlier assistant message",
                                 param=f"{where}.tool_call_id")
            texts = [p["text"] for p in _chat_parts(msg.get("content"), where, text_only=True)]
            _append(turns, "user", [_function_response(name, "".join(texts))])
        else:
            raise BadRequest(f"unsupported message role {role!r}", param=f"{where}.role")
    out: dict = {"contents": _required(turns)}
    if system:
        out["systemInstruction"] = {"parts": system}
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or ())
    _generation(out, maxOutputTokens=body.get("max_completion_tokens") or body.get("max_tokens"),
                temperature=_number(body, "temperature"), topP=_number(body, "top_p"),
                stopSequences=stops or None, seed=_int(body, "seed"),
                presencePenalty=_number(body, "presence_penalty"), frequencyPenalty=_number(body, "frequency_penalty"))
    _response_format(out, body.get("response_format"))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in _THINKING_BUDGET:
            raise BadRequest(f"reasoning_effort must be one of {', '.join(_THINKING_BUDGET)}", param="reasoning_effort")
        _generation(out, thinkingConfig={"thinkingBudget": _THINKING_BUDGET[effort]})
    tools = body.get("tools")
    if tools:
        decls = []
        for i, t in enumerate(tools):
            fn = t.get("function")
            if t.get("type", "function") != "function" or not isinstance(fn, dict):
                raise BadRequest("only function tools are supported for this model", param=f"tools[{i}]")
            decls.append(_declaration(fn.get("name"), fn.get("description"), fn.get("parameters"), f"tools[{i}]"))
        out["tools"] = [{"functionDeclarations": decls}]
    choice = body.get("tool_choice")
    if choice is not None:
        if choice == "auto":
            mode: dict = {"mode": "AUTO"}
        elif choice == "none":
            mode = {"mode": "NONE"}
        elif choice == "required":
            mode = {"mode": "ANY"}
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            mode = {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
        else:
            raise BadRequest("unsupported tool_choice", param="tool_choice")
        out["toolConfig"] = {"functionCallingConfig": mode}
    return out


def _int(body: dict, key: str) -> int | None:
    v = body.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        raise BadRequest(f"'{key}' must be an integer", param=key)
    return v


def _response_format(out: dict, fmt: object) -> None:
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        _generation(out, responseMimeType="application/json")
    elif kind == "json_schema" and isinstance(fmt.get("json_schema"), dict) and isinstance(  # type: ignore[union-attr]
            fmt["json_schema"].get("schema"), dict):  # type: ignore[index]
        _generation(out, responseMimeType="application/json",
                    responseJsonSchema=fmt["json_schema"]["schema"])  # type: ignore[index]
    else:
        raise BadRequest("response_format must be text, json_object or json_schema with a schema",
                         param="response_format")


def _refusals_as_text(content: object) -> object:
    if isinstance(content, list):
        return [{"type": "text", "text": p.get("refusal") or ""} if p.get("type") == "refusal" else p
                for p in content if isinstance(p, dict)]
    return content


def _chat_parts(content: object, where: str, *, text_only: bool = False) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict] = []
    for j, part in enumerate(content):  # type: ignore[union-attr]  (validated: a string, an array or null)
        at = f"{where}.content[{j}]"
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif text_only:
            raise BadRequest(f"content part {kind!r} is not supported in this message for this model", param=at)
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_data_url(image.get("url") if isinstance(image, dict) else image, at))
        elif kind == "input_audio":
            audio = part["input_audio"]
            mime = _AUDIO_MIME.get(str(audio.get("format")))
            if mime is None:
                raise BadRequest(f"unsupported audio format {audio.get('format')!r}", param=at)
            parts.append(_inline(mime, audio.get("data"), at))
        elif kind == "file":
            parts.append(_data_url((part.get("file") or {}).get("file_data"), at))
        else:
            raise BadRequest(f"unsupported content part {kind!r} for this model", param=at)
    return parts


# -- Anthropic Messages ------------------------------------------------------------------------------
def messages_to_gemini_request(body: dict) -> dict:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    out: dict = {"contents": []}
    system = body.get("system")
    if system:
        texts = [{"text": system}] if isinstance(system, str) else [
            {"text": b["text"]} for b in system if isinstance(b, dict) and b.get("type") == "text" and b.get("text")]
        if texts:
            out["systemInstruction"] = {"parts": texts}
    names: dict[str, str] = {}
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        role = msg.get("role")
        if role not in ("user", "assistant"):
            raise BadRequest(f"unsupported message role {role!r}", param=f"{where}.role")
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        parts: list[dict] = []
        for j, block in enumerate(blocks or ()):
            parts.extend(_block(block, f"{where}.content.{j}", role, names))
        _append(out["contents"], "model" if role == "assistant" else "user", parts)
    _required(out["contents"])
    stops = body.get("stop_sequences")
    _generation(out, maxOutputTokens=body.get("max_tokens"), temperature=_number(body, "temperature"),
                topP=_number(body, "top_p"), topK=_number(body, "top_k"), stopSequences=list(stops) if stops else None)
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        if thinking.get("type") == "enabled" and type(thinking.get("budget_tokens")) is int:
            _generation(out, thinkingConfig={"thinkingBudget": thinking["budget_tokens"]})
        elif thinking.get("type") == "disabled":
            _generation(out, thinkingConfig={"thinkingBudget": 0})
    tools = body.get("tools")
    if tools:
        decls = []
        for i, t in enumerate(tools):
            if t.get("type", "custom") != "custom":
                raise BadRequest("only custom tools with a name are supported for this model", param=f"tools.{i}")
            decls.append(_declaration(t.get("name"), t.get("description"), t.get("input_schema"), f"tools.{i}"))
        out["tools"] = [{"functionDeclarations": decls}]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        modes = {"auto": {"mode": "AUTO"}, "any": {"mode": "ANY"}, "none": {"mode": "NONE"},
                 "tool": {"mode": "ANY", "allowedFunctionNames": [choice.get("name")]}}
        if kind not in modes:
            raise BadRequest(f"unsupported tool_choice type {kind!r}", param="tool_choice")
        out["toolConfig"] = {"functionCallingConfig": modes[kind]}
    return out


def _block(block: dict, where: str, role: str, names: dict[str, str]) -> list[dict]:
    kind = block.get("type")
    if kind == "text":
        return [{"text": block["text"]}] if block.get("text") else []
    if kind in ("thinking", "redacted_thinking"):
        return []  # Anthropic's signed reasoning means nothing to a Gemini model (docs/providers.md)
    if kind == "tool_use" and role == "assistant":
        names[block.get("id") or ""] = block.get("name") or ""
        return [_function_call(block.get("id"), block.get("name") or "", _args(block.get("input"), where))]
    if role != "user":
        raise BadRequest(f"unsupported content block {kind!r} in an assistant turn for this model", param=where)
    if kind in ("image", "document"):
        source = block.get("source") or {}
        if source.get("type") == "base64":
            return [_inline(source.get("media_type"), source.get("data"), where)]
        if source.get("type") == "text" and kind == "document":
            return [{"text": source.get("data") or ""}]
        raise BadRequest("images and documents for Gemini models must be base64 (or text documents)", param=where)
    if kind == "tool_result":
        name = names.get(block.get("tool_use_id") or "")
        if name is None:
            raise BadRequest("a tool_result must answer a tool_use of an earlier assistant turn",
                             param=f"{where}.tool_use_id")
        content = block.get("content")
        if isinstance(content, list):
            texts = []
            for b in content:
                if not isinstance(b, dict) or b.get("type") != "text":
                    raise BadRequest("tool_result content must be text for this model", param=where)
                texts.append(b.get("text") or "")
            content = "\n".join(texts)
        return [_function_response(name, content or "", error=block.get("is_error") is True)]
    raise BadRequest(f"unsupported content block {kind!r} for this model", param=where)
