"""What ``zkelect`` says about its input, through the real command: one line naming the flag
(or environment variable) and the real cause, at once when the cause is known; options from
the environment; and the dev ensemble found when no hosts are given.

Every process runs with HOME in tmp_path and no ZKELECT_* or XDG_STATE_HOME of the user's, so
nothing here reads or writes the real ~/.zkelect. Processes are stopped by PID.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import cli_env

from zkelect.ops.cli.ensemble_state import STATE_FILE, alive, cmdline
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble, ZooKeeperInstall

WAIT = 30.0
# Far above anything these commands should take: a wait for it is the bug, not the test.
NEVER = "600"


def _die_with_test() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = cli_env()
    for name in ("XDG_STATE_HOME", "ZOOKEEPER_HOME"):
        env.pop(name, None)
    env["HOME"] = str(home)
    env.update(extra)
    return env


def zkelect(
    home: Path, *args: str, die_with_test: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", *args],
        env=clean_env(home, **env),
        capture_output=True,
        text=True,
        timeout=90,
        # `ensemble up` must exit while its keeper lives on: not tied to the test.
        preexec_fn=_die_with_test if die_with_test else None,
    )


# One interpreter running zkelect's entry point (main(), what the console script calls) for
# several command lines: the checks below cost one process start, not one each.
_BATCH = """
import contextlib, io, json, os, sys
from zkelect.ops.cli.main import main
results = []
for argv, env in json.loads(sys.argv[1]):
    saved = dict(os.environ)
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    os.environ.clear()
    os.environ.update(saved)
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def zkelect_batch(
    home: Path, *calls: tuple[list[str], dict[str, str]]
) -> list[subprocess.CompletedProcess[str]]:
    """Run each (argv, extra environment) through zkelect's main() in one subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", _BATCH, json.dumps(calls)],
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=90,
        preexec_fn=_die_with_test,
    )
    assert done.returncode == 0, done.stderr
    return [
        subprocess.CompletedProcess(argv, code, out, err)
        for (argv, _), (code, out, err) in zip(calls, json.loads(done.stdout), strict=True)
    ]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def error_line(text: str) -> str:
    """The one error line of a command that may also log (zkelect run's timestamped lines)."""
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("zkelect: ")]
    assert len(errors) == 1, text
    return errors[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_member() -> Iterator[str]:
    """host:port of a listener that accepts and never answers: a member that times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


# -- usage ------------------------------------------------------------------------------------


def test_usage_errors_name_the_flag_or_variable_and_the_cause(tmp_path: Path) -> None:
    bare = zkelect(tmp_path)  # the console script's own process, once
    assert bare.returncode == 2
    assert "Usage: zkelect" in bare.stdout  # the help, then why it is not enough
    assert one_line(bare.stderr).startswith("zkelect: missing command: one of run, demo, serve")

    ensemble, options, blank, semicolons, scheme, grace, on_exit = zkelect_batch(
        tmp_path,
        (["ensemble"], {}),
        (["run", "/x", "ls", "-la"], {}),
        (["run", "/x", "--id", "", "--", "true"], {}),
        (["status", "/x", "--hosts", "zk1:2181;zk2:2181"], {}),
        (["run", "/x", "--", "true"], {"ZKELECT_HOSTS": "http://zk1:2181"}),
        (["run", "/x", "--", "true"], {"ZKELECT_GRACE": "soon"}),
        (["run", "/x", "--", "true"], {"ZKELECT_ON_EXIT": "explode"}),
    )
    assert ensemble.returncode == 2
    assert one_line(ensemble.stderr) == (
        "zkelect: missing command: one of up, down, status (try 'zkelect ensemble --help')"
    )
    assert options.returncode == 2
    assert one_line(options.stderr) == (
        "zkelect: No such option: -l: put the command after '--': "
        "zkelect run PATH [OPTIONS] -- CMD [ARGS]..."
    )
    assert blank.returncode == 2
    assert one_line(blank.stderr).startswith("zkelect: Invalid value for '--id': must not be")
    assert "candidate_id" not in blank.stderr

    assert semicolons.returncode == 2
    line = one_line(semicolons.stderr)
    assert line.startswith("zkelect: Invalid value for '--hosts': ")
    assert "separate the host:port pairs with commas, not ';'" in line and "IPv6" not in line
    assert scheme.returncode == 2
    line = one_line(scheme.stderr)
    assert line.startswith("zkelect: Invalid value for '--hosts' (env var: 'ZKELECT_HOSTS'): ")
    assert "starts with a URL scheme (http://)" in line and "chroot" not in line

    assert grace.returncode == 2  # a bad value from the environment names the variable
    assert one_line(grace.stderr).startswith(
        "zkelect: Invalid value for '--grace' (env var: 'ZKELECT_GRACE'): "
    )
    assert on_exit.returncode == 2
    assert "(env var: 'ZKELECT_ON_EXIT')" in one_line(on_exit.stderr)


# -- connecting: the cause, at once when it is known --------------------------------------------


def test_refused_and_unresolvable_members_are_reported_at_once(tmp_path: Path) -> None:
    port = closed_port()
    refused, unknown = zkelect_batch(
        tmp_path,
        (["status", "/x", "--hosts", f"127.0.0.1:{port}", "--timeout", NEVER], {}),
        (
            ["run", "/x", "--timeout", NEVER, "--", "true"],
            {"ZKELECT_HOSTS": f"nowhere.invalid:2181,127.0.0.1:{port}"},
        ),
    )
    assert refused.returncode == 1
    line = one_line(refused.stderr)
    assert f"127.0.0.1:{port} refused the connection (Connection refused)" in line
    assert "quorum" not in line

    assert unknown.returncode == 1
    line = error_line(unknown.stderr)
    assert "nowhere.invalid:2181: the name does not resolve" in line
    assert f"127.0.0.1:{port} refused the connection" in line


def test_a_member_that_times_out_is_waited_for(tmp_path: Path, silent_member: str) -> None:
    """One member refuses, one accepts and never answers: that one may yet answer, so the
    command waits out --timeout; its message names the flags, not Python keywords."""
    hosts = f"127.0.0.1:{closed_port()},{silent_member}"
    run = zkelect(tmp_path, "run", "/x", "--hosts", hosts, "--timeout", "1", "--", "true")
    assert run.returncode == 1
    line = error_line(run.stderr)
    assert f"could not connect to ZooKeeper at {hosts} within 1s" in line
    assert "--tls-ca" in line and "tls=" not in line


# -- options from the environment -------------------------------------------------------------


def test_run_takes_its_options_from_the_environment(
    tmp_path: Path, ensemble: LocalEnsemble, zk_path: str
) -> None:
    seen = tmp_path / "seen"
    env = clean_env(
        tmp_path,
        ZKELECT_HOSTS=ensemble.hosts,
        ZKELECT_ID="from-the-environment",
        ZKELECT_SESSION_TIMEOUT="4",
        ZKELECT_HTTP_PORT="0",
        ZKELECT_GRACE="2",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zkelect.ops.cli.main",
            "run",
            zk_path,
            "--",
            sys.executable,
            "-c",
            f"import os, time; open({str(seen)!r}, 'w').write(os.environ['ZKELECT_ID']); "
            "time.sleep(600)",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_die_with_test,
    )
    try:
        wait_for(lambda: seen.exists() and seen.read_text() != "", WAIT, message="CMD started")
        assert seen.read_text() == "from-the-environment"
        status = zkelect(tmp_path, "status", zk_path, "--json", ZKELECT_HOSTS=ensemble.hosts)
        assert status.returncode == 0, status.stderr
        assert "from-the-environment" in status.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=WAIT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err


# -- the dev ensemble, found; and removed whole ---------------------------------------------


def _ensemble_pids(directory: Path) -> list[int]:
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [int(state["keeper_pid"])] + [int(m["pid"]) for m in state["members"]]


def _ours(pid: int, directory: Path) -> bool:
    return any(str(directory) in arg for arg in cmdline(pid) or [])


@pytest.fixture
def home(tmp_path: Path, zookeeper_install: ZooKeeperInstall) -> Iterator[Path]:
    """A HOME for `zkelect ensemble` (its default dir: HOME/.zkelect/ensemble); whatever
    still runs from it at teardown is SIGKILLed by recorded PID, checked in /proc first."""
    home = tmp_path / "home"
    home.mkdir()
    directory = home / ".zkelect" / "ensemble"
    seen: list[int] = []
    try:
        yield home
    finally:
        seen += _ensemble_pids(directory)
        for pid in seen:
            if _ours(pid, directory):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in seen), WAIT, message="leftovers gone")


def test_commands_given_no_hosts_use_the_running_dev_ensemble(home: Path) -> None:
    directory = home / ".zkelect" / "ensemble"
    up = zkelect(home, "ensemble", "up", "--size", "1", die_with_test=False)
    assert up.returncode == 0, up.stderr
    *_, tells, export = up.stdout.strip().splitlines()
    assert tells == "zkelect commands given no --hosts use it; for other shells and tools:"
    hosts = export.removeprefix("export ZKELECT_HOSTS=")
    assert (
        hosts.startswith("127.0.0.1:")
        and hosts == json.loads((directory / STATE_FILE).read_text())["hosts"]
    )
    note = (
        f"zkelect: note: using the dev ensemble at {hosts} in {directory} (zkelect ensemble "
        "up); pass --hosts to choose"
    )

    pids = _ensemble_pids(directory)
    found, missing, given, down, gone = zkelect_batch(
        home,
        (["doctor", "--json"], {}),
        (["status", "/no/such/election"], {}),
        (["status", "/x", "--timeout", "1"], {"ZKELECT_HOSTS": f"127.0.0.1:{closed_port()}"}),
        (["ensemble", "down"], {}),
        (["status", "/x", "--timeout", "1"], {}),  # none running now: 127.0.0.1:2181
    )
    assert found.stderr.splitlines()[0] == note, found.stderr
    checks = {c["check"]: c for c in json.loads(found.stdout)}
    assert checks["quorum"]["status"] == "ok", checks["quorum"]
    assert missing.returncode == 0, missing.stderr  # it connected: the path is just empty
    assert missing.stderr.splitlines()[0] == note
    assert "does not exist" in missing.stderr.splitlines()[1]
    assert "dev ensemble" not in given.stderr  # the environment chose: no guess, no note

    assert down.returncode == 0, down.stderr
    wait_for(lambda: not any(alive(p) for p in pids), WAIT, message="the ensemble stopped")
    assert sorted(p.name for p in home.iterdir()) == []  # no empty ~/.zkelect left behind
    assert gone.returncode != 0 and "dev ensemble" not in gone.stderr


def test_down_after_a_failed_up_removes_its_lock_and_log(tmp_path: Path) -> None:
    directory = tmp_path / "ens"
    failed = zkelect(
        tmp_path, "ensemble", "up", "--dir", str(directory), ZOOKEEPER_HOME=str(tmp_path / "none")
    )
    assert failed.returncode == 1
    assert one_line(failed.stderr).startswith("zkelect: the ensemble did not start: ")
    assert directory.is_dir()  # what the failed start left: its lock and its log

    down = zkelect(tmp_path, "ensemble", "down", "--dir", str(directory))
    assert down.returncode == 0
    assert "removed the files of one that did not start" in one_line(down.stderr)
    assert not directory.exists()
