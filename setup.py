"""Builds the injection detector's optional C accelerator; all package metadata lives in pyproject.toml.

`optional=True`: where the extension cannot be compiled (no compiler, as in the python:*-slim image), the
install still succeeds and gateway.guardrails.injection runs its pure-Python path, which is the reference.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway.guardrails.injection._fast",
            sources=["gateway/guardrails/injection/_fast.c"],
            optional=True,
        )
    ]
)
