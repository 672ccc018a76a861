"""The exact response cache (`[[cache]]` rules).

    rules.py    which requests a rule caches: scope, determinism, Cache-Control (`CacheRules.plan`)
    key.py      the entry key: the canonical request after input guardrails, a keyed digest of the
                values they redacted, the alias and the caller's namespace
    entry.py    an answer as stored: its neutral events, compacted and redacted at rest
    stores.py   where entries live: the process's bounded LRU, or the shared Redis store with a TTL
    flight.py   single flight: identical concurrent misses wait for the one upstream call
    request.py  one request's cache work: lookup, fill, the outcome (`CachedRequest`)
    replay.py   a hit, through the request's filter chain and the caller's encoder

The fill is a filter (gateway/filters/cache_fill.py) placed before output guardrails: it collects the
answer's events as the upstream sent them (pseudonym placeholders not yet restored). When the answer
completed, the flow stores them, redacted by the request's output rules so that no value a rule detects
is ever at rest. A hit replays the events through the request's own chain (output guardrails scan it and
restore that request's pseudonyms) and the encoder of the caller's API, as a stream or a whole body.
"""
