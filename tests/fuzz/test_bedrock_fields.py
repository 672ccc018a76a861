"""tests/fuzz/test_translated_fields.py's properties for the `bedrock` provider type: every field the
Converse translation reads, with a wrong type, is the caller's 400 naming it before Bedrock sees the
request; any value in such a field is never a 5xx; and each template is served (200), its Converse
body accepted by the fake Bedrock's botocore model check."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.faults.wire import error_shape
from tests.fuzz.test_bad_input import check, json_values, send
from tests.fuzz.test_message_parts import PATHS
from tests.fuzz.test_translated_fields import CASES, CATCH_ALL, FIELDS, FUZZ, _body, _set, wrong_fields
from tests.integration.test_providers_bedrock import aws_env, bedrock, bedrock_config  # noqa: F401 (fixtures)

CALLER_APIS = ("chat", "messages")  # Bedrock serves these two; the others are refused as unsupported


@pytest.fixture
def gw(make_gateway, bedrock, aws_env):  # noqa: F811
    return make_gateway(extra=bedrock_config(bedrock.url))


@pytest.mark.parametrize("stream", [False, True])
def test_every_template_is_served(gw, bedrock, stream):  # noqa: F811
    for api, valid, _ in CASES:
        status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps(_body(api, valid, "haiku", stream)))
        check(PATHS[api], status, headers, raw)
        if api in CALLER_APIS:
            assert status == 200, (api, stream, raw[:300])
        else:
            assert error_shape(PATHS[api], raw).get("code") == "unsupported_api"
    assert bedrock.invalid == [] and bedrock.refused == []


@FUZZ
@given(case=wrong_fields(), stream=st.booleans())
def test_a_wrongly_typed_field_is_a_400_naming_it(gw, bedrock, case, stream):  # noqa: F811
    api, body, param = case
    body = {"model": "haiku", **body}
    if stream and api != "embeddings" and param != "stream":
        body["stream"] = True
    seen = len(bedrock.requests)
    status, _, raw = send(gw, "POST", PATHS[api], orjson.dumps(body))
    assert status == 400, (status, param, body, raw[:300])
    assert len(bedrock.requests) == seen, "Bedrock never saw the request"


@FUZZ
@given(field=st.sampled_from([f for f in FIELDS if f[0] in CALLER_APIS]), stream=st.booleans(), value=json_values)
def test_any_value_in_a_read_field_is_never_a_5xx(gw, bedrock, field, stream, value):  # noqa: F811
    api, valid, path, _ = field
    body = _set(_body(api, valid, "haiku", stream), path, value)
    status, headers, raw = send(gw, "POST", PATHS[api], orjson.dumps(body))
    check(PATHS[api], status, headers, raw)
    assert CATCH_ALL not in raw, (api, path, value, raw[:300])
    assert bedrock.invalid == [], "what the spec admits, the translation turns into a body Bedrock's model accepts"
