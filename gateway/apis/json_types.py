"""Names for parsed JSON, as the specs see a caller's body: any value may be anything until checked."""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]
JsonArray = list[Any]
