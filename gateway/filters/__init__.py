"""Filters: the per-request chain of output work between a response's decoder and its encoder.

A filter sees the neutral events of gateway.events, never a provider's format. It overrides only the
hooks for the kinds it reads; the chain calls a hook only for its kind, and never calls a filter for a
kind it has no hook for (so a filter costs nothing on the events it ignores):

    on_text(ev: TextDelta)            a choice's text: read it, or rewrite `ev.text` in place
                                      ("" holds it all back)
    on_tool(ev: ToolCallDelta)        a tool call: read it, or rewrite `ev.arguments` in place
    on_usage(ev: UsageReport)         usage as the upstream reported it
    on_part_end(ev: PartEnd | Finish) -> events
                                      a part or a choice ends: events to send before it (what the
                                      filter held back)
    on_end() -> events                the upstream finished: what the filter still holds
    close()                           the request is over, however it ended (always called)

`gateway.filters.chain.Chain.compose` builds the chain once per request from the policy, in this order
(the order matters: each filter sees events as the ones before it left them, and the events they added):

    usage fallback  -> output guardrails -> first-token timing

Usage counts what the upstream sent, before guardrails rewrite it; first-token timing marks when the
client gets text, after guardrails held some back (and leaves the chain once it fired). Byte-level work
comes after the encoder (gateway.filters.byte_stages): provider-key scrubbing, then payload capture of
what the client got. A filter raising a `GatewayError` (a guardrail blocking) ends the stream with that
error; raising anything else is a gateway bug, logged with the request id and ended with an in-band
error event.
"""

from __future__ import annotations

from gateway.events import Event, Finish, PartEnd, TextDelta, ToolCallDelta, UsageReport


class Filter:
    __slots__ = ()

    def on_text(self, ev: TextDelta) -> None:
        pass

    def on_tool(self, ev: ToolCallDelta) -> None:
        pass

    def on_usage(self, ev: UsageReport) -> None:
        pass

    def on_part_end(self, ev: PartEnd | Finish) -> list[Event]:
        return []

    def on_end(self) -> list[Event]:
        return []

    def close(self) -> None:
        pass


HOOKS = ("on_text", "on_tool", "on_usage", "on_part_end", "on_end", "close")
_HOOKS_OF: dict[type, frozenset[str]] = {}


def hooks(f: Filter) -> frozenset[str]:
    """The hooks `f` has (overrides): the chain calls only those. Cached per class."""
    cls = type(f)
    names = _HOOKS_OF.get(cls)
    if names is None:
        names = _HOOKS_OF[cls] = frozenset(h for h in HOOKS if getattr(cls, h) is not getattr(Filter, h))
    return names
