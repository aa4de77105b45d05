"""The chaos runner's pure parts: the seeded schedule and the history files' line handling."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from chaos import history
from chaos.events import EventLog, read_new_lines
from chaos.nemesis import FAULT_KINDS, PARTITION_KINDS, Nemesis, schedule


def test_every_fault_kind_has_an_injector() -> None:
    assert FAULT_KINDS is history.FAULT_KINDS
    assert set(FAULT_KINDS) >= PARTITION_KINDS
    for kind in FAULT_KINDS:
        assert callable(getattr(Nemesis, "_" + kind.replace("-", "_"), None)), kind


def test_every_round_of_the_schedule_is_a_permutation_of_every_kind() -> None:
    kinds = list(FAULT_KINDS)
    drawn = list(itertools.islice(schedule(kinds, random.Random("7/schedule")), 4 * len(kinds)))
    rounds = [drawn[i : i + len(kinds)] for i in range(0, len(drawn), len(kinds))]
    for round_ in rounds:
        assert sorted(round_) == sorted(kinds)
    assert len({tuple(r) for r in rounds}) > 1  # shuffled anew each round


def test_the_same_seed_replays_the_same_schedule_and_another_does_not() -> None:
    def first(seed: str) -> list[str]:
        return list(itertools.islice(schedule(FAULT_KINDS, random.Random(seed)), 40))

    assert first("7/schedule") == first("7/schedule")
    assert first("7/schedule") != first("8/schedule")


def test_skipped_kinds_are_never_scheduled() -> None:
    kinds = [k for k in FAULT_KINDS if k not in PARTITION_KINDS]
    drawn = set(itertools.islice(schedule(kinds, random.Random(1)), 100))
    assert drawn == set(kinds)


def test_event_log_appends_one_json_line_per_event_with_a_monotonic_time(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "sub" / "c0.jsonl")
    first = log.emit("start", cand="c0", inc=1, pid=42)
    log.emit("exit", t=first["t"] + 1.0, cand="c0", inc=1)
    log.close()
    log.emit("ignored-after-close")
    lines = (tmp_path / "sub" / "c0.jsonl").read_text().splitlines()
    assert [json.loads(line)["ev"] for line in lines] == ["start", "exit"]
    assert json.loads(lines[1])["t"] == first["t"] + 1.0


def test_read_new_lines_leaves_an_unfinished_line_for_later_and_skips_a_torn_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c1.jsonl"
    events, offset = read_new_lines(path, 0)
    assert (events, offset) == ([], 0)  # no file yet
    path.write_bytes(b'{"ev": "start"}\n{"ev": "ses')
    events, offset = read_new_lines(path, 0)
    assert events == [{"ev": "start"}] and offset == len(b'{"ev": "start"}\n')
    with open(path, "ab") as file:
        file.write(b'sion"}\n{torn\n{"ev": "exit"}\n')
    events, offset = read_new_lines(path, offset)
    assert events == [{"ev": "session"}, {"ev": "exit"}]
    assert offset == path.stat().st_size
