"""Caller APIs by route name. A new API: one module in gateway/apis, one line here (then its route in
gateway/http/app.py and its adapters in gateway/adapters/registry.py)."""

from __future__ import annotations

from gateway.apis.base import ApiSpec
from gateway.apis.chat import ChatSpec
from gateway.apis.completions import CompletionsSpec
from gateway.apis.count_tokens import CountTokensSpec
from gateway.apis.embeddings import EmbeddingsSpec
from gateway.apis.messages import MessagesSpec
from gateway.apis.models import ModelsSpec
from gateway.apis.moderations import ModerationsSpec
from gateway.apis.responses import ResponsesSpec

APIS: dict[str, ApiSpec] = {spec.name: spec for spec in (
    ChatSpec(),
    MessagesSpec(),
    ResponsesSpec(),
    EmbeddingsSpec(),
    ModelsSpec(),
    CompletionsSpec(),
    ModerationsSpec(),
    CountTokensSpec(),
)}
