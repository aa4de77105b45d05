"""The chaos runner's pure parts: the seeded schedule and the history files' line handling."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from chaos import history
from chaos.candidate import election_config, member_ports, parse_args
from chaos.cluster import PROFILES
from chaos.events import EventLog, read_new_lines
from chaos.nemesis import FAULT_KINDS, PARTITION_KINDS, Nemesis, schedule
from chaos.run import main
from zkelect import ElectionConfig


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


def test_a_connection_s_member_is_the_position_of_its_proxy_in_the_connect_string() -> None:
    assert member_ports("10.9.0.1:4001,10.9.0.1:4007,10.9.0.1:4003") == {4001: 0, 4007: 1, 4003: 2}


def test_the_default_profile_tunes_nothing() -> None:
    default, short = PROFILES["default"], PROFILES["short"]
    # ZooKeeper's own tickTime and session bounds (2 and 20 ticks), zkelect's own timeouts.
    assert (default.tick_ms, default.min_session_timeout_ms, default.max_session_timeout_ms) == (
        2000,
        None,
        None,
    )
    assert default.candidate_args() == []
    assert default.effective_session_timeout == ElectionConfig().session_timeout == 10.0
    assert short.candidate_args() == [
        "--session-timeout",
        "2",
        "--request-timeout",
        "4",
        "--connect-timeout",
        "10",
    ]

    def config(args: list[str]) -> ElectionConfig:
        required = ["--cand", "c0", "--hosts", "h:1", "--path", "/p", "--store", "s", "--out", "o"]
        return election_config(parse_args([*required, *args]))

    assert config(default.candidate_args()) == ElectionConfig()
    short_config = config(short.candidate_args())
    assert (short_config.session_timeout, short_config.request_timeout) == (2.0, 4.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "kill-leader,no-such-kind"], "--kinds: unknown ['no-such-kind']"),
        (["--profile", "default", "--session-timeout", "2"], "outside the servers' bounds"),
        (["--profile", "both", "--session-timeout", "4"], "needs one --profile"),
    ],
)
def test_bad_run_arguments_are_refused_before_anything_starts(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_profile_both_runs_short_then_default_each_for_half_the_minutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chaos import run

    configs: list[run.RunConfig] = []

    class FakeRunner:
        """Records what it was asked to run; the default profile "fails"."""

        def __init__(self, config: run.RunConfig) -> None:
            self.config = config
            configs.append(config)

        def run(self) -> int:
            return 1 if self.config.profile.name == "default" else 0

    monkeypatch.setattr(run, "Runner", FakeRunner)
    monkeypatch.setattr(run, "netns_available", lambda: False)
    code = main(
        [
            "--profile",
            "both",
            "--minutes",
            "4",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--kinds",
            "silent-member,kill-leader",
        ]
    )
    assert code == 1  # the worse of the two verdicts
    assert [(c.profile.name, c.run_dir, c.duration_s) for c in configs] == [
        ("short", (tmp_path / "short").resolve(), 120.0),
        ("default", (tmp_path / "default").resolve(), 120.0),
    ]
    assert [c.session_timeout for c in configs] == [2.0, 10.0]
    assert [c.heal_bound_s for c in configs] == [7.0, 15.0]
    assert all(c.seed == 3 and c.kinds == ("kill-leader", "silent-member") for c in configs)
