"""The wire-neutral events a response is made of, between a provider's decoder and the caller's encoder.

A decoder (gateway.codecs, one per provider wire) turns each upstream event or whole response into a
short list of these; the request's filter chain (gateway.filters) reads and rewrites them; an encoder
(one per caller API) turns them into the caller's bytes. A few kinds are enough for every API pair:

    Start           the answer began: its id and model, as the upstream named them
    TextDelta       text of one choice (a streamed piece, or a whole answer's text)
    ToolCallDelta   a tool call of one choice: its id and name when it starts, then argument text
    PartEnd         a text part or one tool call's arguments are complete (Anthropic's block stop)
    Finish          a choice finished, with a reason in Chat Completions' words (stop, length,
                    tool_calls, content_filter)
    UsageReport     usage as the upstream reported it so far; `complete` once output is final
    Error           the upstream reported an error inside a 200 answer (or cut the stream)
    End             the upstream finished the answer normally ([DONE], message_stop)
    Raw             an upstream event as a whole: beside a stream event's events (the decoder's
                    `raw`), first in a whole answer's events

Fidelity: the neutral kinds do not model everything a provider sends (ids, created, logprobs,
system_fingerprint, thinking blocks, fields added next year). So events keep a reference to where they
came from: `src` on a text or tool event is the upstream dict its text lives in (a chat delta, an
Anthropic delta or content block), and a `Raw` holds each upstream event's parsed dict and bytes. A
stream's `Raw` travels beside its events (decoder `raw` -> `encoder.encode(events, raw)`), so filters
never loop over it. An encoder of the same wire writes the (possibly rewritten) text back into `src`
and re-emits the `Raw`, as the upstream's own bytes when nothing in it changed; an encoder of another
wire builds its own events and ignores `src` and `Raw`. Events a filter adds (text it held back, now
released) have no `src`. Filters never read `src` or `Raw`: they see one API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.context import Usage


@dataclass(slots=True)
class Start:
    id: str | None
    model: str | None


@dataclass(slots=True)
class TextDelta:
    choice: int
    text: str
    src: dict[str, Any] | None = None  # the upstream dict holding this text, for a same-wire encoder
    # Signed text (an Anthropic thinking block): filters may read it, hold it back and release it in
    # other pieces, but never change it (its signature covers the exact text); encoders of another wire
    # leave it out (it has no form there).
    signed: bool = False


@dataclass(slots=True)
class ToolCallDelta:
    choice: int
    index: int  # the call's position among the choice's tool calls (not a provider's block index)
    id: str | None = None  # set on the call's first event
    name: str | None = None
    arguments: str = ""  # argument text (JSON, possibly in pieces)
    src: dict[str, Any] | None = None


@dataclass(slots=True)
class PartEnd:
    choice: int
    tool: int | None = None  # None: the choice's text part; else the tool call's index


@dataclass(slots=True)
class Finish:
    choice: int
    reason: str | None  # Chat Completions' finish_reason vocabulary


@dataclass(slots=True)
class UsageReport:
    usage: Usage
    complete: bool  # output tokens are final (not just the input count an answer starts with)


@dataclass(slots=True)
class Error:
    message: str
    code: str
    detail: dict[str, Any] | None = None  # the upstream's own error object
    src: bytes | None = None  # the upstream event's bytes, which a same-wire encoder relays


@dataclass(slots=True)
class End:
    pass


@dataclass(slots=True)
class Raw:
    data: dict[str, Any] | None  # the parsed upstream event (None: nothing in it was parsed)
    raw: bytes  # its bytes as received
    name: str | None = None  # its SSE `event:` name


Event = Start | TextDelta | ToolCallDelta | PartEnd | Finish | UsageReport | Error | End | Raw
