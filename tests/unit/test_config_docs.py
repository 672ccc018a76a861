"""docs/configuration.md is generated from the config schemas: regenerating it must give the committed
file, so a new or changed key cannot ship undocumented (run scripts/gen_config_docs.py to update)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_configuration_reference_is_in_sync_with_the_schemas():
    gen = _generator()
    assert (ROOT / "docs" / "configuration.md").read_text() == gen.build(), (
        "docs/configuration.md is out of date: run .venv/bin/python scripts/gen_config_docs.py")


def test_reference_covers_every_table_and_the_alerts_schema():
    text = (ROOT / "docs" / "configuration.md").read_text()
    for heading in ("[server]", "[admin]", "[store]", "[providers.NAME]", "[models.ALIAS]", "[pricing.MODEL]",
                    "[audit]", "[[keys]]", "[[rate_limits]]", "[[budgets]]", "[[guardrails]]", "[[alerts]]"):
        assert f"### `{heading}`" in text, heading
    for key in ("`watch_config`", "`url_env`", "`for`", "`percent`", "`chunk_delay_ms`", "`phrases`"):
        assert key in text, key
