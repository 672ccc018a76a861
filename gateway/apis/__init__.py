"""Caller APIs: one module per API the gateway serves (`chat.py`, `messages.py`, `responses.py`,
`embeddings.py`, `models.py`), each an `ApiSpec` registered in `registry.py`.

A spec owns what the rest of the gateway needs to know about its API: the error shape, checking a
body (every field a policy, translator or provider reads), the input text slots guardrails scan and
rewrite, the prompt's token count, the output reservation (max tokens, number of answers) and, once
the event model lands, the encoder of events into the API's wire format. Adding an API is one module
here and one line in `registry.py`; see docs/architecture.md.
"""
