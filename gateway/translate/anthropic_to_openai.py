"""An Anthropic Messages caller's (/v1/messages) request for an OpenAI Chat Completions provider:
`messages_to_chat_request` builds the upstream body. (The answer is read back by the chat decoder and
written by the Messages encoder: gateway.codecs.)
"""

from __future__ import annotations

import orjson

from gateway.errors import BadRequest


# -- request ---------------------------------------------------------------------------------------
def messages_to_chat_request(body: dict, upstream_model: str, *, max_tokens_field: str = "max_tokens") -> dict:
    """`max_tokens_field`: OpenAI's own reasoning models want "max_completion_tokens"; many
    OpenAI-compatible servers only know "max_tokens", so that is the default."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty array", param="messages")
    out_messages: list[dict] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n".join(
            b.get("text") or "" for b in system if isinstance(b, dict) and b.get("type") == "text")
        if text:
            out_messages.append({"role": "system", "content": text})
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise BadRequest("each message must be an object", param=f"messages.{i}")
        role = msg.get("role")
        if role == "user":
            out_messages.extend(_user(msg.get("content"), i))
        elif role == "assistant":
            out_messages.append(_assistant(msg.get("content"), i))
        else:
            raise BadRequest(f"unsupported message role {role!r}", param=f"messages.{i}.role")

    out: dict = {"model": upstream_model, "messages": out_messages}
    if body.get("max_tokens") is not None:
        out[max_tokens_field] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = str(user)
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            kind = choice.get("type")
            if kind == "auto":
                out["tool_choice"] = "auto"
            elif kind == "any":
                out["tool_choice"] = "required"
            elif kind == "none":
                out["tool_choice"] = "none"
            elif kind == "tool":
                out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
            else:
                raise BadRequest(f"unsupported tool_choice type {kind!r}", param="tool_choice")
            if choice.get("disable_parallel_tool_use") and kind != "none":
                out["parallel_tool_calls"] = False
    return out


def _blocks(content: object, i: int) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise BadRequest("message content must be a string or an array", param=f"messages.{i}.content")
    return [b for b in content if isinstance(b, dict)]


def _user(content: object, i: int) -> list[dict]:
    """One user turn: its tool results become tool messages, which OpenAI wants first, right
    after the assistant's tool calls; the rest becomes one user message."""
    tool_messages: list[dict] = []
    parts: list[dict] = []
    for block in _blocks(content, i):
        kind = block.get("type")
        if kind == "tool_result":
            tool_messages.append({
                "role": "tool",
                "tool_call_id": block.get("tool_use_id") or "",
                "content": _tool_result_text(block.get("content"), i),
            })
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _source_url(block.get("source"), i)}})
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") != "base64":
                raise BadRequest("only base64 documents are supported for this model", param=f"messages.{i}.content")
            parts.append({"type": "file", "file": {
                "filename": block.get("title") or "document.pdf",
                "file_data": f"data:{source.get('media_type')};base64,{source.get('data')}",
            }})
        else:
            raise BadRequest(f"unsupported content block {kind!r} for this model", param=f"messages.{i}.content")
    out = tool_messages
    if parts:
        plain = all(p["type"] == "text" for p in parts)
        content_out: object = "".join(p["text"] for p in parts) if plain and len(parts) == 1 else parts
        out.append({"role": "user", "content": content_out})
    return out


def _tool_result_text(content: object, i: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "text":
            texts.append(block.get("text") or "")
        else:
            # Chat Completions tool messages carry text only.
            raise BadRequest("tool_result content must be text for this model", param=f"messages.{i}.content")
    return "\n".join(texts)


def _source_url(source: object, i: int) -> str:
    if isinstance(source, dict):
        if source.get("type") == "base64":
            return f"data:{source.get('media_type')};base64,{source.get('data')}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return source["url"]
    raise BadRequest("image source must be base64 or url", param=f"messages.{i}.content")


def _assistant(content: object, i: int) -> dict:
    texts: list[str] = []
    calls: list[dict] = []
    for block in _blocks(content, i):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append({
                "id": block.get("id") or "",
                "type": "function",
                "function": {"name": block.get("name") or "", "arguments": arguments},
            })
        elif kind in ("thinking", "redacted_thinking"):
            continue  # signed reasoning means nothing to another vendor's model
        else:
            raise BadRequest(f"unsupported content block {kind!r} for this model", param=f"messages.{i}.content")
    msg: dict = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _tool(tool: object, i: int) -> dict:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom" or not tool.get("name"):
        # Anthropic server tools (web_search_..., bash_..., computer_...) run on Anthropic only.
        raise BadRequest("only custom tools with a name are supported for this model", param=f"tools.{i}")
    fn: dict = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}
