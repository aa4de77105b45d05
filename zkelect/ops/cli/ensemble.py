"""``zkelect ensemble up|down|status``: a local, real ZooKeeper ensemble that outlives the command.

How it survives the command: ``up`` starts a small *keeper* process in its own session
(the hidden command ``zkelect ensemble keeper --dir DIR ...``), which runs a LocalEnsemble
and waits for SIGTERM. LocalEnsemble ties each member JVM to the process that started it (Linux
PR_SET_PDEATHSIG, plus an atexit hook), which is what keeps tests from leaking JVMs; the keeper
is that process, so the members live exactly as long as the keeper, and a SIGKILLed keeper
still takes its members with it. ``up`` returns once the keeper reports that the quorum
serves and a write commits.

The state file ``DIR/ensemble.json`` records the keeper's and the members' PIDs, ports and
directories. ``down`` stops the ensemble by those PIDs only, each after checking in
/proc/PID/cmdline that it still is that keeper (or a QuorumPeerMain of that DIR), so a
recycled PID is never signalled; it never kills by name. The keeper holds an exclusive
flock on ``DIR/keeper.lock`` for its lifetime: two ``up`` in one DIR cannot both run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from zkelect._lifeline import sigterm_as_interrupt
from zkelect.config import MAX_SECONDS
from zkelect.errors import ZkElectError
from zkelect.ops.cli.common import CliError, JsonOption, echo_json
from zkelect.ops.cli.ensemble_state import (
    ENSEMBLE_DIR_ENV,
    KEEPER_COMMAND,
    STATE_FILE,
    STATE_VERSION,
    alive,
    default_dir,
    discovery_dir,
    is_keeper,
    is_member,
    is_running,
    read_state,
    resolve_dir,
)

if TYPE_CHECKING:
    from zkelect.testing.ensemble import LocalEnsemble

__all__ = ["app", "default_dir"]  # default_dir: ensemble_state.py's, named here too

app = typer.Typer()
ensemble_app = typer.Typer(
    name="ensemble",
    help="A local, real ZooKeeper ensemble for development: up, status, down.\n\n"
    "The members run on 127.0.0.1 after 'up' returns, until 'down'. Their data, logs and "
    "the state file (PIDs, ports) live in --dir.",
    no_args_is_help=True,
)

_UP_HELP = (
    "Start a ZooKeeper ensemble on 127.0.0.1 that keeps running after this command.\n\n"
    "Returns once the quorum serves and a write commits, and prints the connect string "
    "(the last line is 'export ZKELECT_HOSTS=...'). The other zkelect commands, given "
    "neither --hosts nor ZKELECT_HOSTS, use the ensemble of $ZKELECT_ENSEMBLE_DIR or the "
    "default --dir, and say so. The members run under a small keeper process; 'down' stops "
    "them. Sessions may last from 2 ticks to max(20 ticks, 60 s). "
    "Exit 1 if an ensemble already runs in --dir."
)
_DOWN_HELP = (
    "Stop the ensemble in --dir by its recorded PIDs and remove its data and logs.\n\n"
    "Each PID is checked first (/proc/PID/cmdline must still be that keeper, or a "
    "QuorumPeerMain of --dir), so a recycled PID is never signalled; nothing is killed by "
    "name. Nothing running: exit 0, with a note."
)
_STATUS_HELP = (
    "Show the ensemble in --dir: each member's address, PID and mode, and the quorum.\n\n"
    "Modes come from the srvr four-letter word (leader, follower, standalone, or not "
    "serving). --json prints {running, dir, hosts, keeper_pid, size, serving, quorum, "
    "members: [{myid, address, pid, mode, dir}]}; with nothing running, {running: false, "
    "dir}. Exit 0 either way."
)
app.add_typer(ensemble_app, name="ensemble")

LOCK_FILE = "keeper.lock"
KEEPER_LOG = "keeper.log"
_STOP_GRACE = 10.0  # seconds for the keeper to stop its members before it is killed


DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        envvar=ENSEMBLE_DIR_ENV,
        show_envvar=True,
        help="Where the members' data, logs and the state file live (default "
        "$XDG_STATE_HOME/zkelect/ensemble, else ~/.zkelect/ensemble).",
        show_default=False,
        file_okay=False,
    ),
]


# -- processes, checked by /proc/PID/cmdline ----------------------------------------------------


def _wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait (a pidfd each, where the kernel has them) until ``pids`` exit; the ones left."""
    deadline = time.monotonic() + timeout
    left = []
    for pid in pids:
        if not _await_exit(pid, max(0.0, deadline - time.monotonic())):
            left.append(pid)
    return left


def _await_exit(pid: int, timeout: float) -> bool:
    fd: int | None = None
    with contextlib.suppress(OSError, AttributeError):
        fd = os.pidfd_open(pid)
    if fd is not None:
        try:
            select.select([fd], [], [], timeout)  # readable once the process has exited
        finally:
            os.close(fd)
        return not alive(pid)
    deadline = time.monotonic() + timeout  # no pidfd: poll under the deadline
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        raise CliError(f"no permission to signal PID {pid}") from None
    return True


# -- the state file ---------------------------------------------------------------------------


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    tmp = directory / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(directory / STATE_FILE)


def _live_members(directory: Path, state: dict[str, Any]) -> list[int]:
    return [
        int(m["pid"])
        for m in state.get("members", [])
        if m.get("pid") and is_member(int(m["pid"]), directory, str(m["dir"]))
    ]


_OWN_FILES = (STATE_FILE, f".{STATE_FILE}.tmp", LOCK_FILE, KEEPER_LOG)


def _clean(directory: Path, state: dict[str, Any] | None) -> None:
    """Remove what ``up`` made in ``directory``: member dirs, logs, state and lock files;
    then the directory if nothing else is in it, and its parent too when that is zkelect's
    own (~/.zkelect, $XDG_STATE_HOME/zkelect: the default --dir's) and left empty."""
    members = [Path(m["dir"]) for m in (state or {}).get("members", [])]
    for member in [*members, *_member_dirs(directory)]:
        if member.parent == directory:
            shutil.rmtree(member, ignore_errors=True)
    for name in _OWN_FILES:
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()  # only if nothing else is in it
        if directory == resolve_dir(None):
            directory.parent.rmdir()  # idem


def _leftovers(directory: Path) -> bool:
    """Whether ``directory`` holds files of an ensemble that did not start (a failed or
    interrupted 'up': member dirs, the keeper's log and lock)."""
    return directory.is_dir() and bool(
        _member_dirs(directory) or any((directory / name).exists() for name in _OWN_FILES)
    )


def _member_dirs(directory: Path) -> list[Path]:
    """The member directories LocalEnsemble made in ``directory``: ``member-N`` holding one of
    the files it writes (``data/myid`` and ``conf/`` come first, ``zoo.cfg`` last, so an
    interrupted start may leave only the former); nothing else there is ever removed."""
    markers = ("zoo.cfg", "data/myid", "conf/log4j.properties")
    return [
        p
        for p in sorted(directory.glob("member-*"))
        if p.name.removeprefix("member-").isdigit()
        and any((p / marker).is_file() for marker in markers)
    ]


def _note(message: str) -> None:
    sys.stderr.write(f"zkelect: note: {message}\n")


# -- up ----------------------------------------------------------------------------------------


@ensemble_app.command("up", help=_UP_HELP)
def up(
    size: Annotated[int, typer.Option("--size", min=1, max=9, help="Number of members.")] = 3,
    directory: DirOption = None,
    tick_ms: Annotated[
        int, typer.Option("--tick-ms", min=10, max=60_000, help="ZooKeeper tickTime (ms).")
    ] = 200,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1.0, max=MAX_SECONDS, help="Seconds to wait for the quorum."),
    ] = 60.0,
    json_output: JsonOption = False,
) -> None:
    home = resolve_dir(directory)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {home}: {exc.strerror or exc}") from None
    state = read_state(home)
    if state is not None:
        if is_running(home, state):
            raise CliError(
                f"an ensemble is already running in {home} (connect string {state['hosts']}): "
                f"'zkelect ensemble down --dir {home}' first, or use another --dir"
            )
        _stop_members(home, state)
        _clean(home, state)
        home.mkdir(parents=True, exist_ok=True)
        _note(f"removed the state of an ensemble in {home} that was no longer running")
    if _locked(home):
        raise CliError(f"another 'zkelect ensemble up' is starting an ensemble in {home}")
    if size > 1 and size % 2 == 0:
        _note(f"{size} members tolerate no more failures than {size - 1}: an odd size is better")
    state = _start_keeper(home, size, tick_ms, timeout)
    if json_output:
        echo_json(state)
        return
    out = sys.stdout
    out.write(
        f"ZooKeeper ensemble of {size} serving, in {home} (keeper PID {state['keeper_pid']})\n"
    )
    for m in state["members"]:
        out.write(f"  member {m['myid']}  127.0.0.1:{m['client_port']}  PID {m['pid']}\n")
    out.write(f"stop it with: zkelect ensemble down --dir {home}\n")
    if home == discovery_dir():  # where the other commands look when given no hosts
        out.write("zkelect commands given no --hosts use it; for other shells and tools:\n")
    out.write(f"export ZKELECT_HOSTS={state['hosts']}\n")


def _locked(directory: Path) -> bool:
    """Whether a keeper (or a starting one) holds DIR's lock."""
    try:
        with open(directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    return False


def _start_keeper(home: Path, size: int, tick_ms: int, timeout: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        *KEEPER_COMMAND,
        "--dir",
        str(home),
        "--size",
        str(size),
        "--tick-ms",
        str(tick_ms),
        "--timeout",
        str(timeout),
    ]
    with open(home / KEEPER_LOG, "ab") as log:
        keeper = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=home,
            start_new_session=True,  # not in our process group: a Ctrl-C later is not its
        )
    assert keeper.stdout is not None
    try:
        with sigterm_as_interrupt():
            line = _read_line(keeper.stdout, timeout + 15.0)
    except BaseException as exc:  # a timeout, Ctrl-C, SIGTERM: never leave a half-start
        _stop_keeper(keeper)
        if isinstance(exc, KeyboardInterrupt):
            sys.stderr.write("zkelect: interrupted: stopped the ensemble being started\n")
        raise
    finally:
        keeper.stdout.close()
    try:
        report = json.loads(line) if line else {}
    except ValueError:
        report = {}
    if report.get("ok") is True:
        keeper.returncode = 0  # it runs on, detached: no "still running" warning at exit
        return dict(report["state"])
    _stop_keeper(keeper)
    error = report.get("error") or f"the keeper exited without a report{_log_tail(home)}"
    raise CliError(f"the ensemble did not start: {error}")


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """One line from the keeper (its report), or "" at EOF; CliError at the deadline."""
    deadline = time.monotonic() + timeout
    buffer = b""
    fd = stream.fileno()
    while not buffer.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise CliError(f"the ensemble did not report serving within {timeout:g}s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
    return buffer.decode(errors="replace").strip()


def _stop_keeper(keeper: subprocess.Popen[bytes]) -> None:
    if keeper.poll() is None:
        keeper.terminate()
        try:
            keeper.wait(_STOP_GRACE)
        except subprocess.TimeoutExpired:
            keeper.kill()  # its members die with it (PR_SET_PDEATHSIG)
            keeper.wait()


def _log_tail(home: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [ln for ln in (home / KEEPER_LOG).read_text().splitlines() if ln.strip()]
        if lines:
            return f" (last line of {home / KEEPER_LOG}: {lines[-1].strip()})"
    return ""


# -- down --------------------------------------------------------------------------------------


@ensemble_app.command("down", help=_DOWN_HELP)
def down(directory: DirOption = None) -> None:
    home = resolve_dir(directory)
    state = read_state(home) if home.is_dir() else None
    if state is None:
        if _leftovers(home) and not _locked(home):
            _clean(home, None)  # what a start that failed or was interrupted left behind
            _note(f"no ensemble is running in {home}; removed the files of one that did not start")
            return
        _note(f"no ensemble is running in {home}: nothing to stop")
        return
    keeper = int(state["keeper_pid"])
    stopped = []
    if is_keeper(keeper, home):
        _signal(keeper, signal.SIGTERM)  # it stops its members (TERM, then KILL) and exits
        if _wait_gone([keeper], _STOP_GRACE) and is_keeper(keeper, home):
            _signal(keeper, signal.SIGKILL)  # its members get SIGKILL from the kernel
            _wait_gone([keeper], 5.0)
        stopped.append(keeper)
    stopped += _stop_members(home, state)  # none, normally: the keeper stopped them
    left = [pid for pid in stopped if alive(pid)]
    if left:
        raise CliError(f"could not stop PIDs {', '.join(map(str, left))}; see {home}")
    _clean(home, state)
    if not stopped:
        _note(f"the ensemble in {home} was no longer running; removed its state")
        return
    sys.stdout.write(f"stopped the ensemble in {home} (PIDs {', '.join(map(str, stopped))})\n")


def _stop_members(home: Path, state: dict[str, Any]) -> list[int]:
    """TERM, then KILL, any recorded member still running (after the keeper has gone, none
    should be). Returns the PIDs that were signalled."""
    live = _live_members(home, state)
    for pid in live:
        _signal(pid, signal.SIGTERM)
    for pid in _wait_gone(live, 5.0):
        if is_member(pid, home, _member_dir(state, pid)):
            _signal(pid, signal.SIGKILL)
    _wait_gone(live, 5.0)
    return live


def _member_dir(state: dict[str, Any], pid: int) -> str:
    return next(str(m["dir"]) for m in state["members"] if int(m["pid"]) == pid)


# -- status ------------------------------------------------------------------------------------


@ensemble_app.command("status", help=_STATUS_HELP)
def ensemble_status(directory: DirOption = None, json_output: JsonOption = False) -> None:
    home = resolve_dir(directory)
    state = read_state(home) if home.is_dir() else None
    if state is None or not is_running(home, state):
        if state is not None:
            _note(f"the ensemble recorded in {home} is no longer running")
        if json_output:
            echo_json({"running": False, "dir": str(home)})
        else:
            sys.stdout.write(f"no ensemble running in {home}\n")
        return
    members = [_member_view(home, m) for m in state["members"]]
    serving = sum(1 for m in members if m["mode"] != "not serving")
    report = {
        "running": True,
        "dir": str(home),
        "hosts": state["hosts"],
        "keeper_pid": state["keeper_pid"],
        "size": len(members),
        "serving": serving,
        "quorum": serving > len(members) // 2,
        "members": members,
    }
    if json_output:
        echo_json(report)
    else:
        _print_status(report)


def _member_view(home: Path, member: dict[str, Any]) -> dict[str, Any]:
    """One member as ``status`` shows it; its mode from the srvr four-letter word."""
    from zkelect._zookeeper.words import four_letter_word, server_mode

    pid = int(member["pid"])
    address = f"127.0.0.1:{member['client_port']}"
    running = is_member(pid, home, str(member["dir"]))
    mode = ""
    if running:
        with contextlib.suppress(ZkElectError):
            reply = four_letter_word(("127.0.0.1", int(member["client_port"])), "srvr", timeout=2.0)
            mode = server_mode(reply) or ""
    return {
        "myid": member["myid"],
        "address": address,
        "pid": pid if running else None,
        "mode": mode or "not serving",
        "dir": member["dir"],
    }


def _print_status(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    members = report["members"]
    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    console.print(
        f"ensemble in {report['dir']}: {report['serving']} of {len(members)} members serving "
        f"({'quorum' if report['quorum'] else 'NO QUORUM'}), keeper PID {report['keeper_pid']}",
        markup=False,
    )
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("myid", "address", "PID", "mode"):
        table.add_column(column, no_wrap=True)
    for m in members:
        table.add_row(
            *(Text(str(v)) for v in (m["myid"], m["address"], m["pid"] or "-", m["mode"]))
        )
    console.print(table)
    console.print(f"export ZKELECT_HOSTS={report['hosts']}", markup=False)


# -- the keeper process ------------------------------------------------------------------------


@ensemble_app.command("keeper", hidden=True)
def keeper(
    directory: Annotated[Path, typer.Option("--dir", help="The ensemble's directory.")],
    size: Annotated[int, typer.Option("--size", min=1, max=9)] = 3,
    tick_ms: Annotated[int, typer.Option("--tick-ms", min=10, max=60_000)] = 200,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0, max=MAX_SECONDS)] = 60.0,
) -> None:
    """The keeper process 'up' starts (``zkelect ensemble keeper --dir DIR ...``): run a
    LocalEnsemble until SIGTERM/SIGINT/SIGHUP. Reports one JSON line on stdout
    (``{"ok": true, "state": ...}`` once serving, or ``{"ok": false, "error": ...}``), then
    detaches stdout; logs go to stderr (DIR/keeper.log)."""
    raise typer.Exit(_run_keeper(directory, size, tick_ms, timeout))


def _run_keeper(home: Path, size: int, tick_ms: int, timeout: float) -> int:
    """The keeper's life: hold DIR's lock, start the members, report, wait for a signal,
    stop them. Returns the exit code."""
    lock = open(home / LOCK_FILE, "a")  # noqa: SIM115 - held for the keeper's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _report({"ok": False, "error": f"another ensemble is running or starting in {home}"})
        return 1
    if not (home / STATE_FILE).exists():
        # Left by a start that failed (kept for its logs) or a keeper killed with SIGKILL:
        # this is a fresh ensemble, with fresh data.
        for leftover in _member_dirs(home):
            shutil.rmtree(leftover, ignore_errors=True)
    with _stop_signals() as (stop_fd, phase):
        from zkelect.testing.ensemble import LocalEnsemble

        try:
            ensemble = LocalEnsemble(
                size,
                base_dir=home,
                tick_time_ms=tick_ms,
                min_session_timeout_ms=2 * tick_ms,
                max_session_timeout_ms=max(20 * tick_ms, 60_000),
                start_timeout=timeout,
            ).start()  # a signal meanwhile raises KeyboardInterrupt; start() cleans up
        except KeyboardInterrupt:
            _report({"ok": False, "error": "interrupted while starting"})
            return 1
        except Exception as exc:  # one line for 'up' to print
            _report({"ok": False, "error": str(exc).splitlines()[0] if str(exc) else repr(exc)})
            return 1
        try:
            phase["starting"] = False  # from now on a signal only wakes stop_fd
            _serve(home, ensemble, stop_fd)
        except KeyboardInterrupt:
            pass  # a signal that arrived just as the start finished
        finally:
            ensemble.stop()
            _forget_state(home)
    return 0


def _report(message: dict[str, Any]) -> None:
    """The keeper's one line to 'up', after which its stdout goes nowhere: the 'up' command
    that reads the pipe is about to exit."""
    with contextlib.suppress(OSError):
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _serve(home: Path, ensemble: LocalEnsemble, stop_fd: int) -> None:
    """Record the running ensemble, report it, and wait until a signal wakes ``stop_fd``."""
    state = {
        "version": STATE_VERSION,
        "dir": str(home),
        "hosts": ensemble.hosts,
        "size": ensemble.size,
        "tick_ms": ensemble.tick_time_ms,
        "keeper_pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "members": [
            {
                "myid": i + 1,
                "client_port": ensemble.client_port(i),
                "pid": ensemble.pid(i),
                "dir": str(ensemble.member_dir(i)),
            }
            for i in range(ensemble.size)
        ],
    }
    _write_state(home, state)
    _report({"ok": True, "state": state})
    while not select.select([stop_fd], [], [])[0]:
        pass


def _forget_state(home: Path) -> None:
    """Remove the state file if it is this keeper's (a newer keeper may have written it)."""
    with contextlib.suppress(FileNotFoundError, ValueError, OSError):
        recorded = json.loads((home / STATE_FILE).read_text())
        if recorded.get("keeper_pid") == os.getpid():
            (home / STATE_FILE).unlink()


@contextlib.contextmanager
def _stop_signals() -> Iterator[tuple[int, dict[str, bool]]]:
    """SIGTERM, SIGINT and SIGHUP: while ``phase["starting"]`` they raise KeyboardInterrupt
    (LocalEnsemble.start() then stops what it started); afterwards they only make the
    returned file descriptor readable. No race between a check and a wait: the kernel-level
    handler writes to the descriptor the moment a signal arrives."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    phase = {"starting": True}

    def on_signal(signum: int, frame: Any) -> None:
        if phase["starting"]:
            raise KeyboardInterrupt

    previous_fd = signal.set_wakeup_fd(write_fd)
    handlers = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        yield read_fd, phase
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(read_fd)
        os.close(write_fd)
