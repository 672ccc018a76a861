"""Secrets as people paste them, through the HTTP surface with the official SDK: a database URL with its
password inside a pasted config is refused under the demo policy (block) in the prompt and stops a
streamed answer; under a redacting rule only the password is replaced, in the prompt and in a stream
that splits it across chunks."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.integration.test_guardrails_http import client, sse_answer
from tests.support.fake_upstream import Reply

DEMO = {"guardrails.toml": (Path(__file__).resolve().parents[2] / "policies" / "guardrails.toml").read_text()}
REDACT = {"guardrails.toml": """
[[guardrails]]
id = "secrets"
type = "secrets"
action = "redact"
direction = "both"

[[guardrails]]
id = "contact-pii"
type = "pii"
entities = ["EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS"]
action = "redact"
direction = "both"
"""}
PASSWORD = "Xk9-vR2q_Lm7"
CONFIG = f"""Why does the worker crash on start? Here is my docker-compose.yml:

services:
  worker:
    image: acme/worker:1.4
    environment:
      DATABASE_URL: postgres://app:{PASSWORD}@db.internal:5432/orders
      LOG_LEVEL: info
"""


def test_pasted_config_with_a_database_password_is_refused_by_the_demo_policy(make_gateway, upstream):
    gw = make_gateway(policies=DEMO)
    with pytest.raises(openai.BadRequestError) as exc:
        client(gw).chat.completions.create(model="gpt", messages=[{"role": "user", "content": CONFIG}])
    assert exc.value.body["code"] == "content_policy_violation"
    assert PASSWORD not in str(exc.value.body)
    assert upstream.requests == []


def test_streamed_answer_with_a_database_password_is_stopped_by_the_demo_policy(make_gateway, upstream):
    gw = make_gateway(policies=DEMO)
    answer = ["Use this in your .env:\n", "DATABASE_URL=postgres://app:", PASSWORD[:5], PASSWORD[5:],
              "@db.internal:5432/orders\n", "then restart the worker."]
    upstream.push(Reply(sse=sse_answer(answer)))
    got = []
    with pytest.raises(openai.APIError):
        for c in client(gw).chat.completions.create(model="gpt", stream=True,
                                                     messages=[{"role": "user", "content": "env?"}]):
            got.append(c.choices[0].delta.content or "" if c.choices else "")
    assert PASSWORD[:3] not in "".join(got)


def test_a_redacting_rule_replaces_only_the_password_in_prompt_and_stream(make_gateway, upstream):
    gw = make_gateway(policies=REDACT)
    answer = ["Set DB_PASSWORD=", PASSWORD[:4], PASSWORD[4:], "\nand redis://:", "s3cr3t-Redis", "@cache:6379/0 too."]
    upstream.push(Reply(sse=sse_answer(answer)))
    stream = client(gw).chat.completions.create(model="gpt", stream=True,
                                                messages=[{"role": "user", "content": CONFIG}])
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    sent = upstream.requests[-1].body["messages"][0]["content"]
    assert PASSWORD not in sent
    assert "DATABASE_URL: postgres://app:<SECRET>@db.internal:5432/orders" in sent
    assert text == "Set DB_PASSWORD=<SECRET>\nand redis://:<SECRET>@cache:6379/0 too."
