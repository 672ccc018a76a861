"""Routing: model aliases to weighted targets, with retries, fallbacks and circuit breakers."""
