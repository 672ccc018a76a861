"""An answer as the cache stores it: its neutral events (gateway.events), compacted and redacted at rest.

Stored form (orjson): `{"v": 1, "model", "provider", "usage": [in, out, cached], "cost", "ev": [...]}`
with one short list per event: `["t", choice, text]`, `["c", choice, index, id, name, arguments]`,
`["p", choice, tool]`, `["f", choice, reason]`. Adjacent pieces of one text or one tool call's arguments
are joined, so a detector sees a value whole however the upstream split it, and a hit replays few events.
Usage is kept beside the events (a hit reports it to the caller, and its cost is what the hit saved).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.context import Usage
from gateway.events import Event, Finish, PartEnd, Start, TextDelta, ToolCallDelta, UsageReport

VERSION = 1


class NotStorable(Exception):
    """An answer the cache must not keep (a block rule matched it at rest)."""


@dataclass(slots=True)
class Entry:
    model: str
    provider: str
    usage: Usage
    cost_usd: float
    events: list[Event]
    body: bytes | None = None  # a whole-body API's answer (embeddings) as the upstream sent it: no events

    def replay_events(self) -> list[Event]:
        """Fresh event objects for one replay (filters rewrite text in place)."""
        out: list[Event] = [Start(None, self.model)]
        for ev in self.events:
            if isinstance(ev, TextDelta):
                out.append(TextDelta(ev.choice, ev.text))
            elif isinstance(ev, ToolCallDelta):
                out.append(ToolCallDelta(ev.choice, ev.index, ev.id, ev.name, ev.arguments))
            else:
                out.append(ev)  # PartEnd and Finish are never rewritten
        u = self.usage
        out.append(UsageReport(Usage(u.input_tokens, u.output_tokens, u.cached_tokens), True))
        return out


def compact(events: list[Event]) -> list[Event]:
    """Adjacent text pieces of one choice, and argument pieces of one tool call, joined (new objects)."""
    out: list[Event] = []
    for ev in events:
        last = out[-1] if out else None
        if isinstance(ev, TextDelta):
            if isinstance(last, TextDelta) and last.choice == ev.choice:
                last.text += ev.text
            elif ev.text:
                out.append(TextDelta(ev.choice, ev.text))
        elif isinstance(ev, ToolCallDelta):
            if (isinstance(last, ToolCallDelta) and last.choice == ev.choice and last.index == ev.index
                    and ev.id is None and ev.name is None):
                last.arguments += ev.arguments
            else:
                out.append(ToolCallDelta(ev.choice, ev.index, ev.id, ev.name, ev.arguments))
        elif isinstance(ev, (PartEnd, Finish)):
            out.append(ev)
    return out


def redact_at_rest(events: list[Event], scrub: Callable[[str], str]) -> None:
    """Every text and tool call's arguments through `scrub` (the request's output rules without pseudonym
    restoration, then the provider-key scrub), in place."""
    for ev in events:
        if isinstance(ev, TextDelta):
            ev.text = scrub(ev.text)
        elif isinstance(ev, ToolCallDelta) and ev.arguments:
            ev.arguments = scrub(ev.arguments)


def dumps(entry: Entry) -> bytes:
    ev: list[list[Any]] = []
    for e in entry.events:
        if isinstance(e, TextDelta):
            ev.append(["t", e.choice, e.text])
        elif isinstance(e, ToolCallDelta):
            ev.append(["c", e.choice, e.index, e.id, e.name, e.arguments])
        elif isinstance(e, PartEnd):
            ev.append(["p", e.choice, e.tool])
        elif isinstance(e, Finish):
            ev.append(["f", e.choice, e.reason])
    u = entry.usage
    data = {"v": VERSION, "model": entry.model, "provider": entry.provider,
            "usage": [u.input_tokens, u.output_tokens, u.cached_tokens], "cost": entry.cost_usd, "ev": ev}
    if entry.body is not None:
        data["body"] = entry.body.decode("utf-8", "replace")
    return orjson.dumps(data)


def loads(raw: bytes) -> Entry | None:
    """The entry in `raw`, or None for anything this version did not write (treated as a miss)."""
    try:
        data = orjson.loads(raw)
        if data.get("v") != VERSION:
            return None
        events: list[Event] = []
        for e in data["ev"]:
            tag = e[0]
            if tag == "t":
                events.append(TextDelta(int(e[1]), str(e[2])))
            elif tag == "c":
                events.append(ToolCallDelta(int(e[1]), int(e[2]), e[3], e[4], str(e[5])))
            elif tag == "p":
                events.append(PartEnd(int(e[1]), e[2]))
            elif tag == "f":
                events.append(Finish(int(e[1]), e[2]))
        i, o, c = data["usage"]
        body = data.get("body")
        return Entry(str(data["model"]), str(data["provider"]), Usage(int(i), int(o), int(c)), float(data["cost"]),
                     events, body.encode("utf-8") if isinstance(body, str) else None)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
