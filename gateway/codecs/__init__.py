"""Codecs: one decoder per provider wire, one encoder per caller API (the wire-neutral event model is
gateway.events; the filters between them are gateway.filters).

A decoder reads upstream SSE events (`feed`, `end`) or a whole JSON body (`whole`) into events; an
encoder writes events as the caller's SSE bytes (`encode`, `finish`) or whole body (`whole`).
Translating between APIs is decoding with one wire's decoder and encoding with the other API's
encoder; a same-API pair re-uses the upstream's own objects and bytes (see gateway.events on fidelity).

Ownership of failures: a decoder raises `Malformed` (and only that) for upstream data it cannot read;
the pipe turns it into the upstream's fault. Anything an encoder or a filter raises that is not a
`GatewayError` is a gateway bug.
"""


class Malformed(Exception):
    """Upstream data a decoder cannot read."""
