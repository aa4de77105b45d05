"""Figures stated in the docs, checked against the code's own constants."""

from __future__ import annotations

import re
from pathlib import Path

from zkelect import ElectionConfig
from zkelect._lease import lease_figures

DOCS = Path(__file__).resolve().parents[2] / "docs"
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?) s\b")


def _seconds(cell: str) -> float:
    match = _SECONDS.match(cell.strip())
    assert match, f"not a figure in seconds: {cell!r}"
    return float(match.group(1))


def lease_rows() -> list[list[str]]:
    """The rows of the table under the ``lease-figures`` marker of docs/safety.md."""
    lines = (DOCS / "safety.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "lease-figures" in line)
    rows = []
    for line in lines[start + 3 :]:  # the marker, the header, the separator
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_safety_md_states_the_lease_the_code_applies() -> None:
    margin = ElectionConfig().lease_margin_ratio
    rows = lease_rows()
    assert len(rows) >= 3
    assert rows[0][0].startswith(f"{ElectionConfig().session_timeout:g} s (default)")
    for timeout, heartbeat, after, before, lead in rows:
        figures = lease_figures(_seconds(timeout), margin)
        stated = [_seconds(cell) for cell in (heartbeat, after, before, lead)]
        computed = [
            figures.heartbeat,
            figures.after_renewal,
            figures.before_renewal,
            figures.margin,
        ]
        assert stated == [round(value, 3) for value in computed], timeout
