"""Adapters: one per (caller's API, provider's wire) pair, registered in `registry.py`.

An adapter builds the upstream request body from the caller's, and names the codecs of its pair: the
provider wire's decoder and the caller API's encoder (gateway.codecs), with a raw-bytes fast lane when
the two are the same API. `pipeline.py` runs decoder -> filter chain -> encoder for a stream or a
whole answer. Files are named `<caller api>_<provider wire>.py`.
"""
