"""An AWS session token is a credential as much as the secret key it comes with: an upstream (or a proxy
before it) that quotes it, in an error or a streamed answer, plain or JSON-escaped, shows it to no
caller. Real SigV4 signing with botocore against the fake Bedrock over a real socket; the openai SDK."""

from __future__ import annotations

import openai
import pytest

import tests.support.fake_bedrock as fb
from tests.integration.test_providers_bedrock import MSGS, aws_env, bedrock, bedrock_config, chat  # noqa: F401

SESSION = "FwoGZXIvYXdzEFAKE-session-token-0123456789abcdef"


@pytest.fixture
def gw(make_gateway, bedrock, aws_env):  # noqa: F811
    aws_env.setenv("AWS_SESSION_TOKEN", SESSION)
    return make_gateway(extra=bedrock_config(bedrock.url))


@pytest.mark.parametrize("form", [SESSION, SESSION.replace("-", "\\u002d")])
def test_the_session_token_quoted_by_the_upstream_reaches_no_caller(gw, bedrock, form):
    bedrock.push(fb.error(400, "ValidationException", f"bad token {form}; key {fb.SECRET_KEY}"))
    with pytest.raises(openai.BadRequestError) as exc:
        chat(gw).chat.completions.create(model="haiku", messages=MSGS)
    assert bedrock.requests[-1].headers["X-Amz-Security-Token"] == SESSION
    shown = str(exc.value.body)
    assert "session-token" not in shown and fb.SECRET_KEY not in shown and "[redacted]" in shown
    cut = len(SESSION) // 2
    bedrock.push(fb.BedrockReply(body=fb.converse([{"text": f"token {form} ok"}], fb.usage(5, 5))),
                 fb.BedrockReply(frames=fb.text_stream(["token ", SESSION[:cut], SESSION[cut:] + " ok"], fb.usage(5, 5))))
    texts = [chat(gw).chat.completions.create(model="haiku", messages=MSGS).choices[0].message.content,
             "".join(c.choices[0].delta.content or "" for c in chat(gw).chat.completions.create(
                 model="haiku", messages=MSGS, stream=True) if c.choices)]
    for text in texts:
        assert "session-token" not in text and "[redacted]" in text, text
