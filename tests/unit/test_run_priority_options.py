"""``zkelect run --priority/--priority-settle/--priority-interval``, in-process: parsed from
flags and ZKELECT_* variables onto the supervisor's ElectionConfig, bad values refused in
one line naming the flag (and the variable it came from), exit 2. No ZooKeeper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_args_support import UNREACHABLE, clean_cli_env, run_cli

from zkelect.config import ElectionConfig
from zkelect.ops.cli import run as cli_run
from zkelect.ops.supervisor import Supervisor, SupervisorOptions


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_cli_env(monkeypatch, tmp_path)


_run = run_cli


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> dict[str, ElectionConfig]:
    """The ElectionConfig the real Supervisor builds from what `zkelect run` parsed; the
    supervisor does not run."""
    seen: dict[str, ElectionConfig] = {}

    class Recording(Supervisor):
        def run(self) -> int:
            seen["config"] = self.config
            return 0

    monkeypatch.setattr(cli_run, "Supervisor", Recording)
    monkeypatch.setattr(cli_run, "_configure_logging", lambda *a, **k: None)
    return seen


def test_defaults_are_the_librarys(
    capsys: pytest.CaptureFixture[str], built: dict[str, ElectionConfig]
) -> None:
    code, _, err = _run(capsys, "run", "/x", "--", "true")
    assert code == 0, err
    config, library = built["config"], ElectionConfig()
    assert (config.priority, config.priority_settle, config.priority_interval) == (
        library.priority,
        library.priority_settle,
        library.priority_interval,
    )


def test_flags_and_variables_reach_the_election(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    built: dict[str, ElectionConfig],
) -> None:
    monkeypatch.setenv("ZKELECT_PRIORITY", "7")
    monkeypatch.setenv("ZKELECT_PRIORITY_SETTLE", "2.5")
    monkeypatch.setenv("ZKELECT_PRIORITY_INTERVAL", "30")
    code, _, err = _run(capsys, "run", "/x", "--priority-interval", "45", "--", "true")
    assert code == 0, err
    config = built["config"]
    assert (config.priority, config.priority_settle) == (7, 2.5)
    assert config.priority_interval == 45.0  # the flag wins over its variable
    code, _, err = _run(capsys, "run", "/x", "--priority", "-3", "--", "true")
    assert code == 0, err
    assert built["config"].priority == -3  # below the default: never asks to lead


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--priority", "high"], {}, "Invalid value for '--priority'"),
        (["--priority", "1.5"], {}, "Invalid value for '--priority'"),
        (["--priority", "1000001"], {}, "--priority"),
        (["--priority", "-1000001"], {}, "--priority"),
        ([], {"ZKELECT_PRIORITY": "x"}, "'--priority' (env var: 'ZKELECT_PRIORITY')"),
        (["--priority-settle", "-1"], {}, "--priority-settle"),
        (["--priority-settle", "soon"], {}, "--priority-settle"),
        (
            [],
            {"ZKELECT_PRIORITY_SETTLE": "nan"},
            "(env var: 'ZKELECT_PRIORITY_SETTLE')",
        ),
        (["--priority-interval", "86401"], {}, "--priority-interval"),
        (
            [],
            {"ZKELECT_PRIORITY_INTERVAL": "-5"},
            "'--priority-interval' (env var: 'ZKELECT_PRIORITY_INTERVAL')",
        ),
    ],
)
def test_bad_values_are_one_line_naming_the_option_exit_2(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = _run(capsys, "run", "/x", *argv, "--", "true")
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("zkelect: "), err
    assert expected in lines[0]


def test_a_value_the_election_refuses_names_the_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What only ElectionConfig checks comes back in the option's words, not its own."""

    def refuse(options: SupervisorOptions) -> Supervisor:
        ElectionConfig(priority_settle=-1.0)  # raises ConfigurationError("priority_settle ...")
        raise AssertionError("ElectionConfig took a negative settle time")

    monkeypatch.setattr(cli_run, "Supervisor", refuse)
    code, _, err = _run(capsys, "run", "/x", "--", "true")
    assert code == 2, err
    assert err.startswith("zkelect: --priority-settle must be >= 0 seconds"), err


def test_help_shows_the_options_and_their_variables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich cuts long option names in a narrow table
    code, out, _ = _run(capsys, "run", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for flag, variable in [
        ("--priority ", "ZKELECT_PRIORITY]"),
        ("--priority-settle", "ZKELECT_PRIORITY_SETTLE"),
        ("--priority-interval", "ZKELECT_PRIORITY_INTERVAL"),
    ]:
        assert flag in flat and variable in flat, flag


def test_the_drain_deadline_covers_a_whole_chosen_stop() -> None:
    """The library deletes the node at drain_timeout whatever the callback does: it must
    cover --grace and the wait for a SIGKILLed child to be reaped, never cut them short."""
    for grace in (0.0, 1.0, 30.0):
        options = SupervisorOptions(hosts=UNREACHABLE, path="/x", command=["true"], grace=grace)
        config: Any = Supervisor(options, handle_signals=False).config
        assert config.drain_timeout >= grace + 10.0
