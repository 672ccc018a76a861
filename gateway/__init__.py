"""Inline LLM gateway.

Importing this package does no I/O: sessions, pools, stores and detectors are built at start-up by
`gateway.http.app.build_app`, and owned by the application's cleanup context.
"""

__version__ = "0.1.0"
