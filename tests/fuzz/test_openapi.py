"""openapi/gateway.yaml checked against a running gateway with schemathesis: generated requests for
every operation (positive and negative: valid and invalid bodies), no 5xx, responses conforming to the document (status,
content type, schema), and errors in the caller's shape.

Schemathesis's pytest plugin (`schemathesis.pytest.from_fixture`) fails under pytest 9 here
(`'Function' object has no attribute '_nodeid'`), so the operations' hypothesis strategies are driven
directly, which is the same generation and the same checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from tests.faults.wire import error_shape  # noqa: E402
from tests.support.gateway import TEST_KEY, TEST_SERVER  # noqa: E402

MAX_BODY_BYTES = int(TEST_SERVER["max_body_bytes"])
SPEC = Path(__file__).resolve().parents[2] / "openapi" / "gateway.yaml"


@pytest.fixture
def gateway(servers, upstream, tmp_path):
    """The shared test gateway plus a file audit sink, so the request log's endpoints answer too."""
    from tests.support.gateway import base_config, start_gateway

    gw = start_gateway(servers, tmp_path, base_config(upstream.url, extra=AUDIT))
    yield gw
    servers.stop_app(gw.url)


# Every model priced: a schema-valid key with a USD budget is then accepted (over an unpriced model the
# admin API refuses it, as a [[budgets]] rule is refused at load).
AUDIT = """
[pricing."*"]
input = 1.0
output = 1.0

[audit]
flush_interval_ms = 2
[[audit.sinks]]
type = "file"
path = "audit/records.jsonl"
"""


def cases():
    """(operation, mode): positive for every operation, negative (invalid bodies) for the /v1 POSTs and
    the key changes under /admin/keys; the others take no input that could be made invalid."""
    schema = schemathesis.openapi.from_path(SPEC)
    out = []
    for result in schema.get_all_operations():
        op = result.ok()
        name = f"{op.method.upper()} {op.path}"
        out.append(pytest.param(op, schemathesis.GenerationMode.POSITIVE, id=f"{name} positive"))
        if (op.method == "post" and op.path.startswith("/v1/")) or (
                op.path.startswith("/admin/keys") and "requestBody" in op.definition.raw):
            out.append(pytest.param(op, schemathesis.GenerationMode.NEGATIVE, id=f"{name} negative"))
    return out


@pytest.mark.parametrize("operation,mode", cases())
def test_gateway_conforms_to_its_openapi_document(gateway, operation, mode):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        response = case.call(base_url=gateway.url, headers={"Authorization": f"Bearer {TEST_KEY}"})
        if response.status_code == 413:
            # A schema-valid body can still be larger than the server's `max_body_bytes`: then, and only
            # then, 413 in the caller's shape is the right answer.
            assert len(response.request.body or b"") > MAX_BODY_BYTES, (case.path, response.content[:300])
            error_shape(case.path, response.content)
            return
        # A cursor is opaque: one the gateway did not hand out is rightly refused (400), schema-valid or not.
        excluded = [positive_data_acceptance] if "cursor" in (case.query or {}) else None
        case.validate_response(response, headers={"Authorization": f"Bearer {TEST_KEY}"}, excluded_checks=excluded)
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.content[:300])
        if response.status_code >= 400 and case.path.startswith(("/v1/", "/admin/keys")):
            error_shape(case.path, response.content)

    check()


CACHED_OPS = ("/v1/chat/completions", "/v1/messages", "/v1/embeddings")


@pytest.mark.parametrize("operation", [pytest.param(p.values[0], id=p.id) for p in cases()
                                       if p.values[0].path in CACHED_OPS
                                       and p.values[1] == schemathesis.GenerationMode.POSITIVE])
def test_cache_headers_conform_under_a_cache_rule(make_gateway, operation):
    """With a [[cache]] rule (#18) the documented `Cache-Control` request header is generated and the
    `x-gateway-cache` response header is checked against its enum, with every response still conforming."""
    gw = make_gateway(policies={"cache.toml": '[[cache]]\nid = "all"\nttl_s = 60\nmax_temperature = 2.0\n'})
    seen: set[str] = set()

    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        if isinstance(case.body, dict):
            case.body["model"] = "demo"  # a routed alias, so that generated bodies reach the cache
        response = case.call(base_url=gw.url, headers={"Authorization": f"Bearer {TEST_KEY}"})
        assert response.status_code < 500, (case.path, response.status_code, response.content[:300])
        values = response.headers.get("x-gateway-cache") or []  # schemathesis keeps each header as a list
        outcome = values[0] if values else None
        if response.status_code == 200:
            # (A routed alias lets the mock provider judge bodies the document allows loosely, e.g. an empty
            # role: a 400 then is in the caller's shape, which the test above checks for every operation.
            # Streams are not validated: the document gives SSE bodies as `{type: string}`, which schemathesis
            # applies to each event's JSON data.)
            if not response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
                case.validate_response(response, headers={"Authorization": f"Bearer {TEST_KEY}"})
            assert outcome in ("hit", "miss", "bypass"), (case.path, dict(response.headers))
        if outcome is not None:
            seen.add(outcome)

    check()
    assert seen, "some generated request reached the cache"
