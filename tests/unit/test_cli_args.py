"""Argument parsing and pure logic of ``zkelect status/watch/resign/exporter/ensemble``, in-process.

No ZooKeeper: every case here fails (or succeeds) before a connection is attempted. The same
commands run as real subprocesses against real servers in tests/integration/test_cli_*.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from cli_args_support import UNREACHABLE, clean_cli_env

from zkelect._election.contenders import parse_contender
from zkelect._election.nodes import Contender
from zkelect._election.reader import Snapshot
from zkelect.ops.cli import _election_view as view
from zkelect.ops.cli import ensemble as cli_ensemble
from zkelect.ops.cli import ensemble_state
from zkelect.ops.cli import inspect as cli_inspect
from zkelect.ops.cli._election_view import status_json
from zkelect.ops.cli._where import Whereabouts
from zkelect.ops.cli.common import CliError
from zkelect.ops.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_cli_env(monkeypatch, tmp_path)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], "Missing argument"),
        (["status", "elections/x"], "absolute path"),
        (["status", "/x/"], "must not end with '/'"),
        (["status", "/zookeeper/quota"], "reserved"),
        (["status", "/x", "--timeout", "0"], "--timeout"),
        (["status", "/x", "--hosts", "no port here"], ""),
        (["status", "/x", "--auth", "digest"], "--auth must be SCHEME:CREDENTIAL"),
        (["status", "/x", "--bogus"], "No such option"),
        (["watch"], "Missing argument"),
        (["watch", "x"], "absolute path"),
        (["watch", "/x", "--count", "0"], "--count"),
        (["watch", "/x", "--count", "many"], "--count"),
        (["resign"], "Missing argument"),
        (["resign", "/x", "--id", ""], "--id must not be empty"),
        (["resign", "/x", "--id"], "--id"),
        (["resign", "/x", "--timeout", "-1"], "--timeout"),
        (["exporter"], "Missing option '--path'"),
        (["exporter", "--path", "x"], "absolute path"),
        (["exporter", "--path", "/x", "--port", "70000"], "--port"),
        (["exporter", "--path", "/x", "--port", "http"], "--port"),
        (["exporter", "--path", "/x", "--log-level", "loud"], "--log-level"),
        (["exporter", "--path", "/x", "--refresh-interval", "0"], "--refresh-interval"),
        (["ensemble", "up", "--size", "0"], "--size"),
        (["ensemble", "up", "--size", "10"], "--size"),
        (["ensemble", "up", "--tick-ms", "fast"], "--tick-ms"),
        (["ensemble", "up", "--timeout", "0"], "--timeout"),
        (["ensemble", "sideways"], "No such command"),
        (["ensemble", "down", "--size", "3"], "No such option"),
        (["serve"], "Missing option '--path'"),
        (["serve", "--path", "x"], "absolute path"),
        (["serve", "--path", "/x", "--port", "70000"], "--port"),
        (["serve", "--path", "/x", "--session-timeout", "0"], "--session-timeout"),
        (["serve", "--path", "/x", "--hosts", "h:notaport"], "notaport"),
        (["serve", "--path", "/x", "--auth", "ip:10.0.0.1"], "--auth: a candidate"),
        (["run", "/x", "--auth", "ip:10.0.0.1", "--", "true"], "--auth: a candidate"),
        (["run", "/x", "--acl-no-read", "--", "true"], "--acl-no-read needs --acl-writer"),
        (["run", "/x", "--acl-writer", "self", "--", "true"], "--acl-writer self needs"),
        (["run", "/x", "--acl-writer", "ip:1", "--", "true"], "--acl-writer: "),
        (["status", "/x", "--acl-writer", "self"], "No such option"),  # a reader creates nothing
        (["status", "/x", "--auth", "digest:alice:"], "--auth digest:USER:PASSWORD needs"),
        (["watch", "/x", "--sasl-user", ""], "--sasl-user must not be empty"),
        (["doctor", "--lease-margin", "1"], "--lease-margin must be a fraction"),
        (["doctor", "--lease-margin", "0.9"], "--lease-margin 0.9 with --session-timeout 10"),
        (["doctor", "--session-timeout", "-1"], "--session-timeout must be"),
        (["demo-worker"], "Missing option '--db'"),
        (["ensemble", "keeper"], "Missing option '--dir'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zkelect: ")
    assert expected in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--help"],
        ["watch", "--help"],
        ["resign", "--help"],
        ["exporter", "--help"],
        ["ensemble", "--help"],
        ["ensemble", "up", "--help"],
        ["ensemble", "down", "--help"],
        ["ensemble", "status", "--help"],
    ],
)
def test_help_renders(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "Usage: zkelect " in out


def test_the_commands_join_the_root_command(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from zkelect.ops.cli.main import app

    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"status", "watch", "resign", "exporter", "ensemble", "serve"} <= names
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "serve" in out
    assert "demo-worker" not in out  # the programs zkelect starts itself are hidden
    code, out, _ = run(capsys, "ensemble", "--help")
    assert code == 0 and "keeper" not in out


def _security_options(command: Any) -> dict[str, tuple[tuple[str, ...], str | None]]:
    """name -> (flags, help) of the options in a command's "Security" help panel."""
    return {
        str(p.name): (tuple(p.opts), getattr(p, "help", None))
        for p in command.params
        if getattr(p, "rich_help_panel", None) == "Security"
    }


def test_every_connecting_command_takes_the_same_security_options() -> None:
    import typer

    from zkelect.ops.cli.main import app

    root: Any = typer.main.get_command(app)
    readers = ("status", "watch", "resign", "exporter", "doctor")
    candidates = ("run", "serve")
    options = {name: _security_options(root.commands[name]) for name in readers + candidates}
    connection = options["status"]
    assert [flags[0] for flags, _ in connection.values()] == [
        "--auth", "--tls", "--tls-ca", "--tls-cert", "--tls-key", "--tls-no-verify-hostname",
        "--sasl-user",
    ]  # fmt: skip
    for name in readers:
        assert options[name] == connection, name
    for name in candidates:
        acl = {k: v for k, v in options[name].items() if k not in connection}
        assert options[name] == {**connection, **acl}, name
        assert [flags[0] for flags, _ in acl.values()] == ["--acl-writer", "--acl-no-read"]
    ensemble: Any = root.commands["ensemble"]
    assert not any(_security_options(c) for c in ensemble.commands.values())


def test_tls_file_errors_name_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pem = tmp_path / "client.pem"
    pem.write_text("not a certificate")
    for argv, says in (
        (["--tls-ca", str(tmp_path / "missing.pem")], "--tls-ca: no such file"),
        (["--tls-cert", str(pem)], "give --tls-cert and --tls-key together"),
        (["--tls-cert", str(tmp_path / "gone.pem"), "--tls-key", str(pem)], "--tls-cert: no such"),
        (["--tls-ca", str(pem)], "--tls-ca: TlsOptions: cannot load"),
    ):
        code, out, err = run(capsys, "status", "/x", *argv)
        assert code == 2, err
        assert out == "" and len(err.splitlines()) == 1 and says in err, err


# -- status / resign logic ---------------------------------------------------------------------

_NAMES = [
    "_c_2b0c5a0e-5b1e-4c55-9a41-0d5c0d1c8a11-latch-0000000007",
    "_c_9f3b1f7e-0d1a-4a0e-8a3c-2a2f4a7b9c10-latch-0000000009",
    "_c_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-latch-0000000012",
]


def _candidate(name: str, candidate_id: str, czxid: int, ctime_ms: int = 1_000) -> Contender:
    contender = parse_contender(name)
    assert contender is not None
    return contender._replace(
        data=candidate_id.encode(),
        epoch=czxid,
        session_id=0x1000 + czxid,
        ctime_ms=ctime_ms,
        version=0,
    )


def _snapshot(*ids: str) -> Snapshot:
    return Snapshot(
        "/e",
        True,
        tuple(_candidate(n, i, 100 + k) for k, (n, i) in enumerate(zip(_NAMES, ids, strict=False))),
    )


def test_status_json_shape() -> None:
    report = status_json(_snapshot("a", "b"), now_ms=4_500)
    assert list(report) == [
        "path", "leader", "candidates", "switchover", "exists", "ignored", "sequence_wrap",
        "members",
    ]  # fmt: skip
    unknown_where = {"host": None, "client": None, "member": None, "session_connected": None}
    assert report["leader"] == {
        "id": "a",
        "epoch": "100",
        "epoch_hex": "0x64",
        "node": _NAMES[0],
        "session": hex(0x1000 + 100),
        "kind": "latch",
        "priority": 0,
        "joined_ms_ago": 3_500,
        "elected_ms_ago": None,
        "elected_known": False,
        "elected_from": "unknown",
        **unknown_where,
    }
    assert report["candidates"][1] == {
        "id": "b",
        "node": _NAMES[1],
        "sequence": 9,
        "session": hex(0x1000 + 101),
        "kind": "latch",
        "epoch": "101",
        "epoch_hex": "0x65",
        "priority": 0,
        "joined_ms_ago": 3_500,
        **unknown_where,
    }
    assert report["sequence_wrap"] == {
        "wrapped": False,
        "orders_differ": False,
        "string_order_first": _NAMES[0],
    }
    json.dumps(report)  # serialisable as is
    empty = status_json(Snapshot("/e", False, ()), now_ms=0)
    assert empty == {
        "path": "/e",
        "leader": None,
        "candidates": [],
        "switchover": None,
        "exists": False,
        "ignored": [],
        "sequence_wrap": {"wrapped": False, "orders_differ": False, "string_order_first": None},
        "members": [],
    }


def test_resign_target_is_the_leader_or_a_named_candidate() -> None:
    snap = _snapshot("a", "b", "c")
    assert cli_inspect._target(snap, None).candidate_id == "a"
    assert cli_inspect._target(snap, "b").candidate_id == "b"
    assert cli_inspect._target(snap, _NAMES[2]).candidate_id == "c"  # by node name
    with pytest.raises(CliError, match=r"no candidate 'z' under /e; candidates: 'a', 'b', 'c'"):
        cli_inspect._target(snap, "z")
    with pytest.raises(CliError, match=r"2 candidates have id 'same'.*pass one node name"):
        cli_inspect._target(_snapshot("same", "same", "c"), "same")


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0.0s ago"), (1_234, "1.2s ago"), (-5, "0.0s ago"), (61_000, "1m01s ago"),
     (3_660_000, "1h01m ago"), (90_000_000, "1d01h ago")],
)  # fmt: skip
def test_joined_ago(ms: int, text: str) -> None:
    assert view.ago(ms) == text


def test_auth_parsing() -> None:
    from zkelect.ops.cli.security_options import client_security
    from zkelect.security import DigestAuth

    assert client_security(auth=None).auth == ()
    assert client_security(auth="digest:user:pw").auth == (DigestAuth("user", "pw"),)
    assert client_security(auth="ip:127.0.0.1").other_auth == (("ip", "127.0.0.1"),)


# -- ensemble: state dir and PID checks --------------------------------------------------------


def test_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert ensemble_state.default_dir() == tmp_path / "state" / "zkelect" / "ensemble"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ensemble_state.default_dir() == tmp_path / "home" / ".zkelect" / "ensemble"


def test_nothing_running_is_exit_0_with_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "ensemble", "down")
    assert (code, out) == (0, "")
    assert (
        err
        == f"zkelect: note: no ensemble is running in {tmp_path / 'ensemble'}: nothing to stop\n"
    )
    code, out, err = run(capsys, "ensemble", "status", "--json")
    assert code == 0
    assert json.loads(out) == {"running": False, "dir": str(tmp_path / "ensemble")}


def test_a_recorded_pid_that_is_not_ours_is_never_signalled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The state names this very test process as keeper and member (a recycled PID): `down`
    must see from /proc/PID/cmdline that neither is what it recorded, and only clean up."""
    directory = tmp_path / "ensemble"
    (directory / "member-1").mkdir(parents=True)
    me = os.getpid()
    state = {
        "version": 1,
        "dir": str(directory),
        "hosts": "127.0.0.1:1",
        "keeper_pid": me,
        "members": [{"myid": 1, "client_port": 1, "pid": me, "dir": str(directory / "member-1")}],
    }
    (directory / "ensemble.json").write_text(json.dumps(state))
    assert not ensemble_state.is_keeper(me, directory)
    assert not ensemble_state.is_member(me, directory, str(directory / "member-1"))

    code, out, err = run(capsys, "ensemble", "status")
    assert (code, out) == (0, f"no ensemble running in {directory}\n")

    code, out, err = run(capsys, "ensemble", "down")  # we are still alive to check:
    assert code == 0, err
    assert "no longer running; removed its state" in err
    assert not directory.exists()


def test_a_corrupt_state_file_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = tmp_path / "ensemble"
    directory.mkdir()
    (directory / "ensemble.json").write_text("{not json")
    code, _, err = run(capsys, "ensemble", "down")
    assert code == 1
    assert err.startswith(f"zkelect: cannot read {directory / 'ensemble.json'}")
    assert len(err.splitlines()) == 1


def test_processes_are_recognised_by_their_command_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keeper = ["python", "-m", "zkelect.ops.cli.main", "ensemble", "keeper", "--dir", str(tmp_path)]
    member_dir = str(tmp_path / "member-1")
    member = ["java", "-cp", "x", "org.apache.zookeeper.server.quorum.QuorumPeerMain"]
    cmdlines = {
        1: keeper,
        2: [*keeper[:-1], str(tmp_path / "other")],
        3: [*member, f"{member_dir}/zoo.cfg"],
        4: [*member, f"{tmp_path}/elsewhere/zoo.cfg"],
    }
    monkeypatch.setattr(ensemble_state, "cmdline", cmdlines.get)
    assert ensemble_state.is_keeper(1, tmp_path)
    assert not ensemble_state.is_keeper(2, tmp_path)
    assert not ensemble_state.is_keeper(5, tmp_path)  # gone
    assert ensemble_state.is_member(3, tmp_path, member_dir)
    assert not ensemble_state.is_member(4, tmp_path, member_dir)
    assert not ensemble_state.is_member(1, tmp_path, member_dir)
    assert not ensemble_state.is_member(3, tmp_path / "member-1", member_dir)


def test_candidate_ids_are_shown_as_data_not_markup(capsys: pytest.CaptureFixture[str]) -> None:
    """Node data is anything a client wrote: rich markup, control characters, a megabyte."""
    assert view.shown("") == "(no id)"
    assert view.shown("a\nb\x1b[31m") == "a?b?[31m"
    assert view.shown("x" * 1000) == "x" * 63 + "…"
    view.print_status(_snapshot("[/chroot] [bold]", "10.0.0.7"), 2_000, None, Whereabouts(()))
    out = capsys.readouterr().out
    assert "leader [/chroot] [bold], epoch 0x64, 2 candidates" in out
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert [row[:3] for row in rows] == [
        ["1", "[/chroot]", "[bold]"],
        ["2", "10.0.0.7", "waiting"],
    ]


def test_down_removes_only_what_an_ensemble_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = tmp_path / "ensemble"
    for name in ("member-1", "member-2", "member-list"):
        (directory / name).mkdir(parents=True)
    (directory / "member-1" / "zoo.cfg").write_text("tickTime=200\n")
    (directory / "member-list" / "zoo.cfg").write_text("not ours\n")
    (directory / "notes.txt").write_text("mine\n")
    assert cli_ensemble._member_dirs(directory) == [directory / "member-1"]

    code, _, err = run(capsys, "ensemble", "down")

    assert code == 0
    assert "removed the files of one that did not start" in err
    assert sorted(p.name for p in directory.iterdir()) == ["member-2", "member-list", "notes.txt"]


# -- configuration by environment, and the dev ensemble found ------------------------------------


def _options(name: str) -> dict[str, Any]:
    import typer

    from zkelect.ops.cli.main import app

    group = typer.main.get_command(app)
    command = group.commands[name]  # type: ignore[attr-defined]
    return {str(p.name): p for p in command.params if p.param_type_name == "option"}


# Options that say what one invocation prints, not how a deployment is configured (the log
# options have their own variables: docs/logging.md).
_NOT_CONFIGURATION = {"help", "json_output", "output", "verbose", "log_format", "count"}


@pytest.mark.parametrize(
    "command", ["run", "serve", "status", "watch", "resign", "exporter", "doctor"]
)
def test_every_configuration_option_reads_an_environment_variable(command: str) -> None:
    options = _options(command)
    missing = [
        name
        for name, option in options.items()
        if name not in _NOT_CONFIGURATION
        and not (command == "resign" and name == "candidate")  # whom to resign: no default
        and not (option.envvar and option.show_envvar)
    ]
    assert missing == []
    for shared, variable in [
        ("hosts", "ZKELECT_HOSTS"),
        ("timeout", "ZKELECT_TIMEOUT"),
        ("session_timeout", "ZKELECT_SESSION_TIMEOUT"),
        ("grace", "ZKELECT_GRACE"),
        ("auth", "ZKELECT_AUTH"),
    ]:
        if shared in options:  # one name per meaning, whichever command reads it
            assert options[shared].envvar == variable


def test_run_options_come_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from zkelect.ops.cli import run as cli_run

    seen: dict[str, Any] = {}

    class Recording:
        def __init__(self, options: Any) -> None:
            seen["options"] = options

        def run(self) -> int:
            return 0

    monkeypatch.setattr(cli_run, "Supervisor", Recording)
    monkeypatch.setattr(cli_run, "_configure_logging", lambda *a, **k: None)
    for name, value in {
        "ZKELECT_ID": "from-env",
        "ZKELECT_HTTP_PORT": "9100",
        "ZKELECT_HTTP_BIND": "0.0.0.0",
        "ZKELECT_GRACE": "3",
        "ZKELECT_ON_EXIT": "restart",
        "ZKELECT_SESSION_TIMEOUT": "6",
        "ZKELECT_TIMEOUT": "7",
    }.items():
        monkeypatch.setenv(name, value)
    code, _, err = run(capsys, "run", "/x", "--grace", "4", "--", "true")
    assert code == 0, err
    options = seen["options"]
    assert (options.candidate_id, options.http_port, options.http_bind) == (
        "from-env",
        9100,
        "0.0.0.0",
    )
    assert (options.grace, options.on_exit.value) == (4.0, "restart")  # the flag wins
    assert (options.session_timeout, options.connect_timeout) == (6.0, 7.0)
    assert options.hosts == UNREACHABLE


def _fake_keeper(
    monkeypatch: pytest.MonkeyPatch, directory: Path, hosts: str = "127.0.0.1:1111"
) -> None:
    from zkelect.ops.cli import ensemble_state

    directory.mkdir(parents=True)
    state = {"version": 1, "hosts": hosts, "keeper_pid": 424242, "members": []}
    (directory / "ensemble.json").write_text(json.dumps(state))
    keeper = ["python", *ensemble_state.KEEPER_COMMAND, "--dir", str(directory)]
    monkeypatch.setattr(ensemble_state, "cmdline", {424242: keeper}.get)


def test_the_running_dev_ensemble_is_found_by_its_state_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = tmp_path / "ensemble"  # $ZKELECT_ENSEMBLE_DIR (the autouse fixture)
    assert ensemble_state.running_ensemble() is None
    _fake_keeper(monkeypatch, directory)
    assert ensemble_state.running_ensemble() == (directory, "127.0.0.1:1111")
    monkeypatch.setattr(ensemble_state, "cmdline", lambda pid: None)  # the keeper is gone
    assert ensemble_state.running_ensemble() is None
    (directory / "ensemble.json").write_text("{not json")
    assert ensemble_state.running_ensemble() is None  # `ensemble status` says why


def test_no_hosts_given_means_the_dev_ensemble_with_a_note(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from zkelect.ops.cli import run as cli_run

    seen: list[str] = []
    monkeypatch.setattr(cli_run, "Supervisor", lambda o: seen.append(o.hosts) or _Done())
    monkeypatch.setattr(cli_run, "_configure_logging", lambda *a, **k: None)
    monkeypatch.delenv("ZKELECT_HOSTS")
    code, _, err = run(capsys, "run", "/x", "--", "true")
    assert (code, err, seen) == (0, "", ["127.0.0.1:2181"])

    _fake_keeper(monkeypatch, tmp_path / "ensemble")
    code, _, err = run(capsys, "run", "/x", "--", "true")
    assert code == 0
    assert err == (
        f"zkelect: note: using the dev ensemble at 127.0.0.1:1111 in {tmp_path / 'ensemble'} "
        "(zkelect ensemble up); pass --hosts to choose\n"
    )
    code, _, err = run(capsys, "run", "/x", "--hosts", "h:2", "--", "true")
    assert (code, err) == (0, "")
    monkeypatch.setenv("ZKELECT_HOSTS", "h:3")
    code, _, err = run(capsys, "run", "/x", "--", "true")
    assert (code, err) == (0, "")
    assert seen == ["127.0.0.1:2181", "127.0.0.1:1111", "h:2", "h:3"]


class _Done:
    def run(self) -> int:
        return 0


@pytest.mark.parametrize(
    ("hosts", "says"),
    [
        ("a:1;b:2", "with commas, not ';'"),
        ("a:1 b:2", "with commas, not ' '"),
        ("a:1|b:2", "with commas, not '|'"),
        ("http://a:1", "URL scheme (http://)"),
        ("zk://a:1,b:2/apps", "URL scheme (zk://)"),
        ("h :2181", "bad host 'h '"),  # a stray blank inside one entry is not a separator
    ],
)
def test_connect_string_mistakes_are_named(hosts: str, says: str) -> None:
    from zkelect.config import validate_connect_string
    from zkelect.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=re.escape(says)):
        validate_connect_string(hosts)
    assert validate_connect_string("a:1, b:2/apps") == "a:1, b:2/apps"


def test_the_command_line_audience_reads_flags_not_keywords() -> None:
    from zkelect._zookeeper import connect

    assert connect._say("tls=", "--tls-ca") == "tls= (CLI: --tls-ca)"
    with connect.command_line_audience():
        assert connect._say("tls=", "--tls-ca") == "--tls-ca"
    assert connect._say("tls=", "--tls-ca") == "tls= (CLI: --tls-ca)"


def test_down_removes_a_failed_ups_lock_and_log_and_an_empty_zkelect_dir(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What an `up` that failed before any member started leaves: the keeper's lock and
    log. In the default dir, the ~/.zkelect that holds it goes too once empty; a dir of
    the user's own beside it stays, and so does anything else in ~/.zkelect."""
    monkeypatch.delenv("ZKELECT_ENSEMBLE_DIR")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    directory = tmp_path / "home" / ".zkelect" / "ensemble"
    directory.mkdir(parents=True)
    for name in ("keeper.lock", "keeper.log"):
        (directory / name).write_text("")

    code, _, err = run(capsys, "ensemble", "down")

    assert code == 0
    assert "removed the files of one that did not start" in err
    assert list((tmp_path / "home").iterdir()) == []

    kept = tmp_path / "home" / ".zkelect"
    (kept / "ensemble").mkdir(parents=True)
    (kept / "ensemble" / "keeper.log").write_text("")
    (kept / "notes.txt").write_text("mine\n")
    assert run(capsys, "ensemble", "down")[0] == 0
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]
