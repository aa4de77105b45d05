"""``zkelect switchover``'s command line, in-process: usage errors (exit 2, one line naming
the flag) before any connection, its help, and its options (the same connection and
security options as ``resign``, each configuration option with its environment variable).
The command itself runs against real ZooKeeper in tests/integration/test_cli_switchover.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from cli_args_support import clean_cli_env, run_cli

from zkelect.ops.cli.main import app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_cli_env(monkeypatch, tmp_path)


_run = run_cli


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["switchover"], "Missing argument"),
        (["switchover", "elections/x"], "absolute path"),
        (["switchover", "/x", "--to", ""], "--to must not be empty"),
        (["switchover", "/x", "--to", "  "], "--to must not be empty"),
        (["switchover", "/x", "--to"], "--to"),
        (["switchover", "/x", "--timeout", "0"], "--timeout"),
        (["switchover", "/x", "--timeout", "-1"], "--timeout"),
        (["switchover", "/x", "--timeout", "soon"], "--timeout"),
        (["switchover", "/x", "--timeout", "1e12"], "--timeout"),
        (["switchover", "/x", "--connect-timeout", "0"], "--connect-timeout"),
        (["switchover", "/x", "--force", "yes"], "unexpected extra argument"),
        (["switchover", "/x", "--auth", "digest"], "--auth must be SCHEME:CREDENTIAL"),
        (["switchover", "/x", "--acl-writer", "self"], "No such option"),  # creates no path
    ],
)
def test_usage_errors_exit_2_with_one_line_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zkelect: ") and expected in lines[0]
    assert "Traceback" not in err


def test_the_environment_timeout_is_checked_as_the_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZKELECT_SWITCHOVER_TIMEOUT", "0")
    code, _, err = _run(capsys, "switchover", "/x")
    assert code == 2
    assert "'--timeout' (env var: 'ZKELECT_SWITCHOVER_TIMEOUT')" in err


def test_help_renders_and_the_command_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "switchover", "--help")
    assert code == 0, err
    assert "Usage: zkelect switchover" in out
    for flag in ("--to", "--timeout", "--force", "--json", "--connect-timeout", "--auth"):
        assert flag in out
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "switchover" in out and "exporter" in out


def _options(name: str) -> dict[str, Any]:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {str(p.name): p for p in command.params if p.param_type_name == "option"}


def test_the_same_connection_and_security_options_as_resign() -> None:
    switchover, resign = _options("switchover"), _options("resign")

    def security(options: dict[str, Any]) -> dict[str, Any]:
        return {
            name: (tuple(p.opts), p.envvar, p.help)
            for name, p in options.items()
            if getattr(p, "rich_help_panel", None) == "Security"
        }

    assert security(switchover) == security(resign)
    assert switchover["hosts"].envvar == resign["hosts"].envvar == "ZKELECT_HOSTS"
    # --timeout bounds the switchover; ZooKeeper's connect timeout keeps its variable.
    assert switchover["switchover_timeout"].opts == ["--timeout"]
    assert switchover["switchover_timeout"].envvar == "ZKELECT_SWITCHOVER_TIMEOUT"
    assert switchover["switchover_timeout"].default == 30.0
    assert switchover["timeout"].opts == ["--connect-timeout"]
    assert switchover["timeout"].envvar == resign["timeout"].envvar == "ZKELECT_TIMEOUT"
    per_call = {"help", "json_output", "to", "force"}  # what one invocation does
    assert [
        name for name, p in switchover.items() if name not in per_call and not p.show_envvar
    ] == []
