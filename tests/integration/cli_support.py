"""What the CLI and HTTP tests share: JSON parsed the way jq and JavaScript would need it."""

from __future__ import annotations

import json
from typing import Any

from zkelect.ops.json_ids import MAX_SAFE_INTEGER

__all__ = ["loads_strict"]


def _exact_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise AssertionError(f"JSON integer {text} exceeds 2^53: jq and JavaScript round it")
    return value


def loads_strict(text: str) -> Any:
    """``json.loads`` that fails on any integer a double cannot hold exactly."""
    return json.loads(text, parse_int=_exact_int)
