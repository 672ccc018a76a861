"""An Anthropic Messages request for AWS Bedrock's Converse API: `messages_to_converse` builds the
upstream body (the model is in the URL). Chat Completions callers go through
`openai_to_anthropic.chat_to_messages_request` first, so both APIs share one mapping, stated field by
field in docs/providers.md ("AWS Bedrock"). What Converse cannot carry is refused with a 400 naming
the field, never dropped silently; the few fields that are dropped are listed there.
"""

from __future__ import annotations

from gateway.errors import BadRequest

_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
_CACHE_POINT = {"cachePoint": {"type": "default"}}
# Top-level Messages fields with no Converse form that change what the model does: refused.
_REFUSED = ("mcp_servers", "container")


def messages_to_converse(body: dict) -> dict:
    for key in _REFUSED:
        if body.get(key):
            raise BadRequest(f"'{key}' is not supported by AWS Bedrock's Converse API", param=key)
    out: dict = {"messages": [_message(m, i) for i, m in enumerate(body.get("messages") or ())]}
    system = body.get("system")
    if isinstance(system, str):
        out["system"] = [{"text": system}] if system else []
    elif isinstance(system, list):
        out["system"] = _system_blocks(system)
    if not out.get("system"):
        out.pop("system", None)
    config: dict = {}
    if body.get("max_tokens") is not None:
        config["maxTokens"] = body["max_tokens"]
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    if body.get("stop_sequences"):
        config["stopSequences"] = list(body["stop_sequences"])
    if config:
        out["inferenceConfig"] = config
    extra: dict = {}
    if body.get("top_k") is not None:
        extra["top_k"] = body["top_k"]  # no Converse field: passed to the model (Anthropic models read it)
    if body.get("thinking"):
        extra["thinking"] = body["thinking"]
    if extra:
        out["additionalModelRequestFields"] = extra
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        out["requestMetadata"] = {"user_id": user[:256]}
    tools = body.get("tools")
    if tools:
        out["toolConfig"] = _tool_config(tools, body.get("tool_choice"))
    elif (body.get("tool_choice") or {}).get("type") not in (None, "auto", "none"):
        raise BadRequest("tool_choice needs tools", param="tool_choice")
    return out


def _system_blocks(blocks: list) -> list[dict]:
    out: list[dict] = []
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise BadRequest("system blocks must be text for AWS Bedrock", param=f"system[{i}]")
        if block.get("text"):
            out.append({"text": block["text"]})
        if block.get("cache_control"):
            out.append(_CACHE_POINT)
    return out


def _message(msg: dict, i: int) -> dict:
    content = msg.get("content")
    if isinstance(content, str):
        return {"role": msg["role"], "content": [{"text": content}]}
    blocks: list[dict] = []
    for j, block in enumerate(content or ()):
        blocks.append(_block(block, f"messages[{i}].content[{j}]"))
        if block.get("cache_control"):
            blocks.append(_CACHE_POINT)
    return {"role": msg["role"], "content": blocks}


def _block(block: dict, where: str) -> dict:
    kind = block.get("type")
    if kind == "text":
        return {"text": block.get("text") or ""}
    if kind == "image":
        return {"image": _image(block.get("source") or {}, where)}
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") != "base64" or source.get("media_type") != "application/pdf":
            raise BadRequest("AWS Bedrock takes documents as base64 PDF data", param=where)
        return {"document": {"format": "pdf", "name": _doc_name(block, where), "source": {"bytes": source.get("data")}}}
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block.get("id") or "", "name": block.get("name") or "",
                            "input": block.get("input") if block.get("input") is not None else {}}}
    if kind == "tool_result":
        result: dict = {"toolUseId": block.get("tool_use_id") or "", "content": _result_content(block, where)}
        if block.get("is_error"):
            result["status"] = "error"
        return {"toolResult": result}
    if kind == "thinking":
        text: dict = {"text": block.get("thinking") or ""}
        if block.get("signature"):
            text["signature"] = block["signature"]
        return {"reasoningContent": {"reasoningText": text}}
    if kind == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block.get("data") or ""}}
    raise BadRequest(f"content blocks of type {kind!r} are not supported by AWS Bedrock's Converse API", param=where)


def _doc_name(block: dict, where: str) -> str:
    # Converse requires a name: letters, digits, spaces, hyphens, parentheses and brackets only.
    title = block.get("title")
    name = "".join(c for c in title if c.isalnum() or c in " -()[]") if isinstance(title, str) else ""
    return name.strip()[:200] or "document-" + "".join(c for c in where if c.isdigit())


def _image(source: dict, where: str) -> dict:
    if source.get("type") != "base64":
        raise BadRequest("AWS Bedrock takes images as base64 data, not URLs", param=where)
    fmt = _IMAGE_FORMATS.get(source.get("media_type") or "")
    if fmt is None:
        raise BadRequest("AWS Bedrock takes png, jpeg, gif or webp images", param=where)
    return {"format": fmt, "source": {"bytes": source.get("data")}}  # a blob is base64 text in JSON


def _result_content(block: dict, where: str) -> list[dict]:
    content = block.get("content")
    if content is None or content == "":
        return [{"text": ""}]
    if isinstance(content, str):
        return [{"text": content}]
    out: list[dict] = []
    for k, part in enumerate(content):
        if part.get("type") == "text":
            out.append({"text": part.get("text") or ""})
        elif part.get("type") == "image":
            out.append({"image": _image(part.get("source") or {}, f"{where}.content[{k}]")})
        else:
            raise BadRequest("tool results for AWS Bedrock hold text or images", param=f"{where}.content[{k}]")
    return out or [{"text": ""}]


def _tool_config(tools: list, choice: dict | None) -> dict:
    specs: list[dict] = []
    for i, tool in enumerate(tools):
        if tool.get("type") not in (None, "custom") or not tool.get("name"):
            raise BadRequest("AWS Bedrock takes client tools (a name and an input_schema), not server tools",
                             param=f"tools[{i}]")
        spec: dict = {"name": tool["name"], "inputSchema": {"json": tool.get("input_schema") or {"type": "object"}}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        specs.append({"toolSpec": spec})
        if tool.get("cache_control"):
            specs.append(_CACHE_POINT)
    config: dict = {"tools": specs}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "any":
        config["toolChoice"] = {"any": {}}
    elif kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:  # Converse requires a tool name of at least one character
            raise BadRequest("tool_choice of type 'tool' needs the tool's name", param="tool_choice.name")
        config["toolChoice"] = {"tool": {"name": name}}
    elif kind == "none":
        raise BadRequest("tool_choice 'none' has no AWS Bedrock form: send the request without tools",
                         param="tool_choice")
    elif kind == "auto":
        config["toolChoice"] = {"auto": {}}
    return config
