"""The correctness rules table in docs/safety.md: the one place the rules that code comments
cite (R1, R7, ...) are defined. Every rule cited in the code is in it, and every test it names
as proof exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAFETY = REPO / "docs" / "safety.md"
MARKER = "<!-- rules-table:"
# A rule number as comments cite it: R7, R1b (not part of a longer word such as "R2D2").
RULE = re.compile(r"\bR\d+[a-z]?\b")
ROW = re.compile(r"^\| (R\d+[a-z]?) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")
TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
MODULE = re.compile(r"`([\w/]+\.py)`")


def rules_table() -> dict[str, tuple[str, str, str]]:
    """Rule id -> (the rule, where it is enforced, the tests), from the table after the marker."""
    lines = SAFETY.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(MARKER))
    assert lines[start + 1].startswith("| Rule |") and lines[start + 2].startswith("|---")
    rows: dict[str, tuple[str, str, str]] = {}
    for line in lines[start + 3 :]:
        if not line.startswith("|"):
            break
        match = ROW.match(line)
        assert match, f"not a rule row: {line[:80]}"
        rule, text, modules, tests = match.groups()
        assert rule not in rows, f"{rule} is in the table twice"
        rows[rule] = (text.strip(), modules, tests)
    return rows


def cited_rules() -> dict[str, list[str]]:
    """Rule id -> where it is cited (file:line), over the code, the chaos suite and the tests."""
    cited: dict[str, list[str]] = {}
    for folder in ("zkelect", "chaos", "tests"):
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), 1):
                for rule in RULE.findall(line):
                    cited.setdefault(rule, []).append(f"{path.relative_to(REPO)}:{number}")
    return cited


def test_the_table_holds_the_rules_of_the_design() -> None:
    rows = rules_table()
    assert set(rows) == {"R1", "R1b", *(f"R{n}" for n in range(2, 15))}  # R13: issue 14, R14: 17
    for rule, (text, modules, tests) in rows.items():
        assert text, f"{rule} has no text"
        assert MODULE.findall(modules), f"{rule} names no module"
        assert TEST.findall(tests), f"{rule} names no test"


def test_every_rule_cited_in_the_code_is_in_the_table() -> None:
    cited = cited_rules()
    assert "R7" in cited  # the scan finds citations at all
    missing = {rule: where for rule, where in cited.items() if rule not in rules_table()}
    assert not missing, f"cited but not in docs/safety.md's table: {missing}"


def test_every_module_named_in_the_table_exists() -> None:
    for rule, (_, modules, _) in rules_table().items():
        for module in MODULE.findall(modules):
            assert (REPO / "zkelect" / module).is_file(), f"{rule}: zkelect/{module} not found"


@pytest.mark.parametrize(
    ("rule", "file", "name"),
    [
        pytest.param(rule, file, name, id=f"{rule}-{name}")
        for rule, (_, _, tests) in rules_table().items()
        for file, name in TEST.findall(tests)
    ],
)
def test_every_test_named_in_the_table_exists(rule: str, file: str, name: str) -> None:
    path = REPO / file
    assert path.is_file(), f"{rule}: {file} not found"
    defined = re.search(rf"^(async )?def {name}\(", path.read_text(encoding="utf-8"), re.M)
    assert defined, f"{rule}: no test {name} in {file}"
