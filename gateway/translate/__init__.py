"""Request translation between the OpenAI Chat Completions and Anthropic Messages wires.

Pure functions, no I/O:
- `openai_to_anthropic`: an OpenAI-format caller's request for an Anthropic provider.
- `anthropic_to_openai`: an Anthropic-format caller's (/v1/messages) request for an OpenAI-format provider.
- `upstream_errors`: the one mapping from an upstream error to the gateway's error hierarchy.
- `sse`: the event-stream parser and encoder.

Responses and streams are translated by decoding with one wire's codec and encoding with the other's
(gateway.codecs); the functions here that read responses are that composition.
"""
