"""An Anthropic Messages caller (/v1/messages) reaching an OpenAI Chat Completions provider.

`messages_to_chat_request` builds the upstream body, `chat_response_to_messages` reads a whole
response back, `ChatStreamToMessages` turns upstream chunks into Anthropic stream events, and
`openai_error_to_gateway` maps upstream errors.
"""

from __future__ import annotations

import uuid

import orjson

from gateway.context import Usage
from gateway.errors import BadRequest, GatewayError, UpstreamError
from gateway.translate import upstream_error

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


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


# -- response --------------------------------------------------------------------------------------
def _usage(raw: dict | None) -> Usage:
    raw = raw or {}
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cached_tokens=details.get("cached_tokens") or 0,
    )


def usage_to_messages(usage: Usage) -> dict:
    """Anthropic's input_tokens leaves out cached input, which OpenAI's prompt_tokens includes."""
    return {
        "input_tokens": usage.input_tokens - usage.cached_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def message_id(openai_id: object) -> str:
    if isinstance(openai_id, str) and openai_id:
        return "msg_" + openai_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def chat_response_to_messages(resp: dict, model: str) -> tuple[dict, Usage]:
    choices = resp.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    content: list[dict] = []
    text = message.get("content") or message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({
            "type": "tool_use",
            "id": call.get("id") or "toolu_" + uuid.uuid4().hex,
            "name": fn.get("name") or "",
            "input": _parse_arguments(fn.get("arguments"), truncated=finish == "length"),
        })
    usage = _usage(resp.get("usage"))
    out = {
        "id": message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(finish or "", "end_turn"),
        "stop_sequence": None,
        "usage": usage_to_messages(usage),
    }
    return out, usage


def _parse_arguments(raw: object, *, truncated: bool) -> dict:
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    if truncated:  # cut by max_tokens: Anthropic also returns what there is
        return {}
    raise UpstreamError("the upstream model returned tool arguments that are not a JSON object")


# -- stream ----------------------------------------------------------------------------------------
class ChatStreamToMessages:
    """Per-request translator from chat.completion.chunk objects to Anthropic stream events.

    Anthropic's `message_delta` carries the stop reason and usage together, while OpenAI sends the
    usage chunk after the finish chunk, so both wait for `done()` (the upstream's `[DONE]` or end).
    A chunk with an `error` object sets `error`; `done()` without a finish reason sets it too.
    """

    __slots__ = ("model", "message_id", "usage", "error", "_started", "_block", "_open",
                 "_tools", "_next", "_finish", "_closed")

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id
        self.usage = Usage()
        self.error: dict | None = None
        self._started = False
        self._block = -1  # index of the open Anthropic content block, -1 when none is open
        self._open: str | None = None  # "text" or "tool" for the open block
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index -> Anthropic block index
        self._next = 0  # index of the next Anthropic content block
        self._finish: str | None = None
        self._closed = False

    def feed(self, chunk: dict) -> list[tuple[str, dict]]:
        if self.error is not None or self._closed:
            return []
        if "error" in chunk:
            err = chunk["error"]
            self.error = err if isinstance(err, dict) else {"message": str(err)}
            return []
        events: list[tuple[str, dict]] = []
        if not self._started:
            self._started = True
            if self.message_id is None:
                self.message_id = message_id(chunk.get("id"))
            events.append(("message_start", {"type": "message_start", "message": {
                "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}))
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                if self._open != "text":
                    self._start(events, "text", {"type": "text", "text": ""})
                events.append(("content_block_delta", {"type": "content_block_delta", "index": self._block,
                                                        "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or ():
                self._tool_delta(events, call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._stop(events)
        return events

    def _tool_delta(self, events: list[tuple[str, dict]], call: dict) -> None:
        index = call.get("index", 0)
        fn = call.get("function") or {}
        block = self._tools.get(index)
        if block is None:
            self._start(events, "tool", {"type": "tool_use", "id": call.get("id") or "toolu_" + uuid.uuid4().hex,
                                         "name": fn.get("name") or "", "input": {}})
            block = self._tools[index] = self._block
        if fn.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": fn["arguments"]}
            events.append(("content_block_delta", {"type": "content_block_delta", "index": block, "delta": delta}))

    def _start(self, events: list[tuple[str, dict]], kind: str, block: dict) -> None:
        self._stop(events)
        self._block = self._next
        self._next += 1
        self._open = kind
        events.append(("content_block_start", {"type": "content_block_start", "index": self._block,
                                                "content_block": block}))

    def _stop(self, events: list[tuple[str, dict]]) -> None:
        if self._open is not None:
            events.append(("content_block_stop", {"type": "content_block_stop", "index": self._block}))
            self._open = None

    def done(self) -> list[tuple[str, dict]]:
        """The upstream stream ended: `[DONE]` or the end of the body."""
        if self._closed or self.error is not None:
            return []
        if self._finish is None:
            self.error = {"type": "api_error", "message": "the upstream stream ended before the message was complete"}
            return []
        self._closed = True
        events: list[tuple[str, dict]] = []
        self._stop(events)
        usage = usage_to_messages(self.usage)
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": STOP_REASONS.get(self._finish, "end_turn"), "stop_sequence": None},
            "usage": usage,
        }))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def gateway_error(self) -> GatewayError | None:
        if self.error is None:
            return None
        return _from_openai_error(500, self.error)


# -- errors ----------------------------------------------------------------------------------------
def openai_error_to_gateway(status: int, body: bytes) -> GatewayError:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    return _from_openai_error(status, err if isinstance(err, dict) else {})


def _from_openai_error(status: int, err: dict) -> GatewayError:
    code = err.get("code")
    if not isinstance(code, str):
        code = err.get("type") if err.get("type") == "insufficient_quota" else None
    return upstream_error(status, err.get("message"), code=code)
