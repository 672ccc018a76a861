"""Filters: the per-request chain of output work between a response's decoder and its encoder.

A filter sees the neutral events of gateway.events, never a provider's format, through one interface:

    on_events(events) -> events   for each upstream event's events (or a whole answer's), in order:
                                  rewrite them, hold text back (return less), or add events
    on_end() -> events            the upstream finished: what the filter still holds
    close()                       the request is over, however it ended (always called)

`gateway.filters.chain.Chain.compose` builds the chain once per request from the policy, in this order
(the order matters: each filter sees what the ones before it returned):

    usage fallback  -> output guardrails -> first-token timing

Usage counts what the upstream sent, before guardrails rewrite it; first-token timing marks when the
client gets text, after guardrails held some back. Byte-level work comes after the encoder
(gateway.filters.byte_stages): provider-key scrubbing, then payload capture of what the client got.
A filter raising a `GatewayError` (a guardrail blocking) ends the stream with that error; raising
anything else is a gateway bug, logged with the request id and ended with an in-band error event.
"""

from __future__ import annotations

from gateway.events import Event


class Filter:
    __slots__ = ()

    def on_events(self, events: list[Event]) -> list[Event]:
        return events

    def on_end(self) -> list[Event]:
        return []

    def close(self) -> None:
        pass
