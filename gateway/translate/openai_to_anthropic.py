"""An OpenAI Chat Completions caller reaching an Anthropic Messages provider.

`chat_to_messages_request` builds the upstream body, `messages_response_to_chat` reads a whole
response back, `MessagesStreamToChat` turns upstream stream events into `chat.completion.chunk`
objects one event at a time, and `anthropic_error_to_gateway` maps upstream errors.
"""

from __future__ import annotations

import time

import orjson

from gateway.context import Usage
from gateway.errors import BadRequest, GatewayError
from gateway.translate import upstream_error
from gateway.translate.sse import SSEEvent

# Anthropic requires max_tokens; OpenAI callers usually leave it out.
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


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


# -- response --------------------------------------------------------------------------------------
def anthropic_usage(raw: dict | None) -> Usage:
    """Anthropic counts cached input apart from input_tokens; OpenAI's prompt_tokens includes it."""
    raw = raw or {}
    read = raw.get("cache_read_input_tokens") or 0
    written = raw.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(raw.get("input_tokens") or 0) + read + written,
        output_tokens=raw.get("output_tokens") or 0,
        cached_tokens=read,
    )


def usage_to_chat(usage: Usage) -> dict:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def messages_response_to_chat(
    resp: dict, model: str, request_id: str, created: int | None = None
) -> tuple[dict, Usage]:
    texts: list[str] = []
    calls: list[dict] = []
    for block in resp.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append({
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()},
            })
        # thinking, redacted_thinking and server tool blocks have no Chat Completions form.
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    usage = anthropic_usage(resp.get("usage"))
    chat = {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": FINISH_REASONS.get(resp.get("stop_reason") or "", "stop"),
        }],
        "usage": usage_to_chat(usage),
    }
    return chat, usage


# -- stream ----------------------------------------------------------------------------------------
class MessagesStreamToChat:
    """Per-request translator from Anthropic stream events to chat.completion.chunk objects.

    After an `error` event, `error` holds the upstream's error object and nothing more is emitted;
    the relay ends the caller's stream with an error. If the upstream stream ends before
    `message_stop`, `done()` sets `error` too: a cut stream must not look like a finished answer.
    """

    __slots__ = ("model", "request_id", "created", "include_usage", "usage", "error",
                 "_tools", "_finished")

    def __init__(self, model: str, request_id: str, created: int, include_usage: bool) -> None:
        self.model = model
        self.request_id = request_id
        self.created = created
        self.include_usage = include_usage
        self.usage = Usage()
        self.error: dict | None = None
        self._tools: dict[int, int] = {}  # Anthropic content block index -> OpenAI tool_calls index
        self._finished = False

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        chunk = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI sends it on every chunk but the last
        return chunk

    def feed(self, event: SSEEvent) -> list[dict]:
        if self.error is not None or self._finished:
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            self.error = {"type": "api_error", "message": "the upstream sent a malformed stream event"}
            return []
        kind = event.event or data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})] if delta.get("text") else []
            if dkind == "input_json_delta":
                index = self._tools.get(data.get("index", -1))
                if index is None or not delta.get("partial_json"):
                    return []
                return [self._chunk({"tool_calls": [
                    {"index": index, "function": {"arguments": delta["partial_json"]}}]})]
            return []  # thinking, signature and citation deltas have no Chat Completions form
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tools[data.get("index", len(self._tools))] = len(self._tools)
                call = {"index": index, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}}
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "message_start":
            self.usage = anthropic_usage((data.get("message") or {}).get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            self._delta_usage(data.get("usage"))
            reason = (data.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, FINISH_REASONS.get(reason or "", "stop"))]
        if kind == "message_stop":
            self._finished = True
            if not self.include_usage:
                return []
            return [{
                "id": self.request_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_to_chat(self.usage),
            }]
        if kind == "error":
            err = data.get("error")
            self.error = err if isinstance(err, dict) else {"type": "api_error", "message": "upstream stream error"}
            return []
        return []  # ping, content_block_stop, and event types added after this was written

    def _delta_usage(self, raw: dict | None) -> None:
        # message_delta usage is cumulative; input counts appear there only on some API versions.
        if not raw:
            return
        if raw.get("output_tokens") is not None:
            self.usage.output_tokens = raw["output_tokens"]
        if any(raw.get(k) is not None for k in
               ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")):
            merged = anthropic_usage(raw)
            if merged.input_tokens:
                self.usage.input_tokens = merged.input_tokens
                self.usage.cached_tokens = merged.cached_tokens

    def done(self) -> list[dict]:
        """The upstream stream ended (no more events)."""
        if not self._finished and self.error is None:
            self.error = {"type": "api_error", "message": "the upstream stream ended before the message was complete"}
        return []

    def gateway_error(self) -> GatewayError | None:
        """The stream's error as a gateway error, for the relay's closing error event."""
        if self.error is None:
            return None
        return _from_anthropic_error(200, self.error)


# -- errors ----------------------------------------------------------------------------------------
_STATUS_OF_TYPE = {  # for errors that arrive inside a 200 stream
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
    "timeout_error": 504,
}


def anthropic_error_to_gateway(status: int, body: bytes) -> GatewayError:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    return _from_anthropic_error(status, err if isinstance(err, dict) else {})


def _from_anthropic_error(status: int, err: dict) -> GatewayError:
    if status < 400:
        status = _STATUS_OF_TYPE.get(err.get("type") or "", 500)
    return upstream_error(status, err.get("message"))
