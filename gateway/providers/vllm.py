"""vLLM's OpenAI-compatible server: the whole provider is a preset of the OpenAI one.

This file is the template for any OpenAI-compatible server (Ollama, LM Studio, SGLang, TGI, ...):
subclass `OpenAIProvider`, set what differs, and add one line to `registry.py`. Then:

    [providers.local]
    type = "vllm"                      # base_url defaults to http://127.0.0.1:8000/v1
    # api_key_env = "VLLM_API_KEY"     # only if the server was started with --api-key

    [models.llama]
    targets = [{ provider = "local", model = "meta-llama/Llama-3.1-8B-Instruct" }]
"""

from __future__ import annotations

from gateway.providers.openai import OpenAIProvider


class VLLMProvider(OpenAIProvider):
    default_base_url = "http://127.0.0.1:8000/v1"
    # The key is optional (no api_key_env: no Authorization header), as vLLM runs without one by
    # default; everything else — paths, bearer auth, error mapping — is OpenAI's.
