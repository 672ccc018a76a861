"""An OpenAI Chat Completions caller's request for an Anthropic Messages provider:
`chat_to_messages_request` builds the upstream body. (The answer is read back by the Anthropic decoder
and written by the chat encoder: gateway.codecs.)
"""

from __future__ import annotations

import orjson

from gateway.errors import BadRequest

# Anthropic requires max_tokens; OpenAI callers usually leave it out.
DEFAULT_MAX_TOKENS = 4096

# -- request ---------------------------------------------------------------------------------------
def chat_to_messages_request(body: dict, upstream_model: str) -> dict:
    n = body.get("n")
    if n is not None and n != 1:
        raise BadRequest("n other than 1 is not supported for this model", param="n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")

    system: list[dict] = []
    turns: list[dict] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise BadRequest("each message must be an object", param=f"messages[{i}]")
        role = msg.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(msg.get("content"), i, text_only=True))
        elif role == "user":
            _append(turns, "user", _parts(msg.get("content"), i))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(msg, i))
        elif role == "tool":
            result: dict = {"type": "tool_result", "tool_use_id": msg.get("tool_call_id") or ""}
            content = _parts(msg.get("content"), i)
            if content:
                result["content"] = content
            _append(turns, "user", [result])
        else:
            raise BadRequest(f"unsupported message role {role!r}", param=f"messages[{i}].role")

    out: dict = {
        "model": upstream_model,
        "messages": turns,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        plain = len(system) == 1 and "cache_control" not in system[0]
        out["system"] = system[0]["text"] if plain else system
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        stops = [stop] if isinstance(stop, str) else list(stop)
        # Anthropic rejects stop sequences made only of whitespace.
        stops = [s for s in stops if isinstance(s, str) and s.strip()]
        if stops:
            out["stop_sequences"] = stops
    if body.get("stream"):
        out["stream"] = True
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _append(turns: list[dict], role: str, blocks: list[dict]) -> None:
    """Add a turn, merging it into the previous one of the same role (Anthropic alternates roles)."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _parts(content: object, i: int, *, text_only: bool = False) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest("message content must be a string or an array", param=f"messages[{i}].content")
    blocks: list[dict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not part.get("text"):
                continue
            block: dict = {"type": "text", "text": part["text"]}
        elif kind == "image_url" and not text_only:
            block = {"type": "image", "source": _image_source(part.get("image_url"), i)}
        elif kind == "file" and not text_only:
            block = _document(part.get("file"), i)
        else:
            raise BadRequest(f"unsupported content part {kind!r} for this model", param=f"messages[{i}].content")
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image_source(image: object, i: int) -> dict:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise BadRequest("image_url.url must be a string", param=f"messages[{i}].content")
    if url.startswith("data:"):
        media_type, data = _data_url(url, i)
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise BadRequest("image_url.url must be an http(s) or base64 data URL", param=f"messages[{i}].content")


def _document(file: object, i: int) -> dict:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise BadRequest("file parts need file_data as a base64 data URL", param=f"messages[{i}].content")
    media_type, data = _data_url(data_url, i)
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _data_url(url: str, i: int) -> tuple[str, str]:
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not media_type:
        raise BadRequest("data URLs must be base64 with a media type", param=f"messages[{i}].content")
    return media_type, data


def _assistant_blocks(msg: dict, i: int) -> list[dict]:
    content = msg.get("content")
    if isinstance(content, list):  # assistant parts may hold refusals, which are text to Anthropic
        content = [{"type": "text", "text": p.get("refusal") or ""} if p.get("type") == "refusal" else p
                   for p in content if isinstance(p, dict)]
    blocks = _parts(content, i, text_only=True)
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        blocks.append({
            "type": "tool_use",
            "id": call.get("id") or "",
            "name": fn.get("name") or "",
            "input": _arguments(fn.get("arguments"), i),
        })
    return blocks


def _arguments(raw: object, i: int) -> dict:
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except orjson.JSONDecodeError:
        raise BadRequest("tool call arguments must be a JSON object", param=f"messages[{i}].tool_calls") from None
    if not isinstance(value, dict):
        raise BadRequest("tool call arguments must be a JSON object", param=f"messages[{i}].tool_calls")
    return value


def _tool(tool: dict, i: int) -> dict:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if tool.get("type", "function") != "function" or not isinstance(fn, dict) or not fn.get("name"):
        raise BadRequest("only function tools with a name are supported for this model", param=f"tools[{i}]")
    out: dict = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: object, parallel: object) -> dict | None:
    if choice is None or choice == "auto":
        out: dict = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise BadRequest("unsupported tool_choice", param="tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # leave Anthropic's default
    return out
