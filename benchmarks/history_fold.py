"""Cost per record of the dashboard history's background fold (gateway/records/history.py), grouped against
writing out every record (the fold before, kept as the test oracle in tests/unit/test_history.py).

    PYTHONPATH=. python benchmarks/history_fold.py

Records as a pass-through benchmark makes them (one key, one alias, latencies of a few ms, one minute) and
as a mixed fleet does (10 keys, 5 aliases, 3 statuses, latencies spread over 1-5,000 ms, some entities).
"""

import random
import time
import timeit

from gateway.records.history import fold
from tests.unit.test_history import _fold_one_by_one

rng = random.Random(7)
now = time.time()


def record(key: str, alias: str, status: int, lat: float, entities: dict) -> dict:
    return {"time": now, "status": status, "latency_ms": lat, "ttft_ms": None, "alias": alias, "provider": "mock",
            "key_id": key, "team": "t1", "model": "mock-1", "cost_usd": 0.00002, "input_tokens": 12,
            "output_tokens": 9, "guardrail_action": "allow", "block_reason": None, "entities": entities}


passthrough = [record("k1", "demo", 200, rng.uniform(0.4, 4.0), {}) for _ in range(1000)]
mixed = [record(f"k{rng.randint(1, 10)}", f"a{rng.randint(1, 5)}", rng.choice([200, 200, 200, 429, 502]),
                rng.uniform(1, 5000), rng.choice([{}, {}, {"EMAIL_ADDRESS": 1}])) for _ in range(1000)]
for name, records in (("pass-through", passthrough), ("mixed", mixed)):
    for label, f in (("one by one", _fold_one_by_one), ("grouped", fold)):
        best = min(timeit.repeat(lambda: f(records), number=20, repeat=5)) / 20 / len(records) * 1e6
        print(f"{name:13s} {label:11s} {best:6.2f} us a record")
