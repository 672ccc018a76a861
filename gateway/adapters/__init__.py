"""Adapters: one per (caller's API, provider's wire) pair, registered in `registry.py`.

An adapter turns the caller's parsed body into the upstream's request body, and the upstream's
response (whole or streamed) back into the caller's format, reading usage on the way and applying the
request's output scanner to the text it relays. Same-format pairs are pass-throughs.
"""
