"""Managed keys: the store's documents and version (same body on memory and on Redis), the local table
that authentication reads, and a key's limits compiled as the TOML rules they mirror."""

from __future__ import annotations

import hashlib
import time

import pytest

from gateway.auth import KeyTable
from gateway.config.validate import ConfigError, SourcedRule
from gateway.errors import Unauthorized
from gateway.limits.key_limits import compile_key_limits
from gateway.limits.rules import RateRule
from gateway.managed_keys import KeyDoc, ManagedKeys, SecretDigest
from tests.conftest_redis import redis_server, redis_url, store  # noqa: F401  (also a suite plugin)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def doc(key_id: str, secret: str, **kw) -> KeyDoc:
    return KeyDoc(id=key_id, secrets=[SecretDigest(sha256=digest(secret), created_at=time.time())], **kw)


async def test_documents_and_version_on_both_stores(store):
    assert await store.keys_version() == 0 and await store.keys_load() == {}
    assert await store.key_put("a", b'{"id":"a"}', create=True) is True
    v1 = await store.keys_version()
    assert v1 > 0
    assert await store.key_put("a", b'{"id":"a","team":"x"}', create=True) is False  # exists: untouched
    assert (await store.keys_load())["a"] == b'{"id":"a"}'
    assert await store.key_put("a", b'{"id":"a","team":"y"}') is True
    assert await store.keys_version() > v1
    assert await store.keys_load() == {"a": b'{"id":"a","team":"y"}'}


async def test_the_table_follows_the_store_and_authenticates_locally(store):
    managed = ManagedKeys()
    await managed.start(store, poll_s=3600)  # no polling: refresh() is called by hand
    try:
        table = KeyTable({}, managed)
        other = ManagedKeys()  # a second gateway on the same store
        await other.start(store, poll_s=3600)
        await managed.write(doc("k1", "sk-one", team="t"))
        headers = {"Authorization": "Bearer sk-one"}
        assert table.authenticate(headers).team == "t"
        assert other.lookup(hashlib.sha256(b"sk-one").digest()) is None  # not yet refreshed
        await other.refresh()
        assert other.lookup(hashlib.sha256(b"sk-one").digest()).principal.key_id == "k1"
        await managed.write(doc("k1", "sk-one", revoked=True))
        with pytest.raises(Unauthorized) as exc:
            table.authenticate(headers)
        assert exc.value.code == "revoked_api_key"
        rotated = doc("k1", "sk-two")
        rotated.secrets.insert(0, SecretDigest(sha256=digest("sk-one"), created_at=0, not_after=time.time() - 1))
        await managed.write(rotated)
        with pytest.raises(Unauthorized) as exc:
            table.authenticate(headers)
        assert exc.value.code == "expired_api_key"
        assert table.authenticate({"Authorization": "Bearer sk-two"}).key_id == "k1"
        with pytest.raises(Unauthorized) as exc:
            table.authenticate({"Authorization": "Bearer sk-unknown"})
        assert exc.value.code == "invalid_api_key"
        await other.close()
    finally:
        await managed.close()


async def test_an_unreadable_document_is_refused_and_the_others_still_load(store):
    await store.key_put("bad", b"{not json")
    await store.key_put("good", doc("good", "sk-good").dump())
    managed = ManagedKeys()
    await managed.start(store, poll_s=3600)
    try:
        assert [d.id for d in managed.docs()] == ["good"]
    finally:
        await managed.close()


def test_key_limits_are_the_toml_scope_key_rules():
    limits = compile_key_limits("svc", {"rpm": 3, "tpm": 100, "concurrency": 2, "budget_usd": 5.0,
                                        "budget_window": "day"})
    assert limits is not None and limits.needs_prompt_tokens
    (rate,) = limits.rates
    toml = RateRule(SourcedRule("f", "rate_limits[0]", {"scope": "key", "keys": ["svc"], "rpm": 3, "tpm": 100,
                                                        "concurrency": 2}), "t")
    assert [(x.kind, x.limit, x.period_ms) for x in rate.limiters] == [(x.kind, x.limit, x.period_ms)
                                                                       for x in toml.limiters]
    assert rate.scope == "key" and rate.keys == frozenset({"svc"})
    (budget,) = limits.budgets
    assert (budget.limit, budget.window, budget.usd, budget.scope) == (5.0, "day", True, "key")
    assert compile_key_limits("svc", None) is None and compile_key_limits("svc", {}) is None
    rpm_only = compile_key_limits("svc", {"rpm": 1})
    assert rpm_only is not None and not rpm_only.needs_prompt_tokens
    with pytest.raises(ConfigError):
        compile_key_limits("svc", {"budget_usd": 1.0, "budget_window": "year"})


def test_the_key_change_record_is_documented_field_for_field():
    from gateway.records.chain import Chain
    from gateway.records.schema import KEY_CHANGE_FIELDS, build_key_change
    from tests.unit.test_records_schema import _doc_table

    import orjson

    rec = build_key_change("rotate", "svc", "api", {"id": "admin", "role": "admin", "via": "key"},
                           {"grace_s": 0}, "req_1")
    line = Chain("w:1:x").seal(rec)
    assert list(orjson.loads(line)) and set(orjson.loads(line)) == {f for f, _, _ in KEY_CHANGE_FIELDS}
    assert _doc_table("key-change-fields") == [f for f, _, _ in KEY_CHANGE_FIELDS]
