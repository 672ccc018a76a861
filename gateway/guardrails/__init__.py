"""Guardrails: request and stream policies that inspect prompts and model output."""
