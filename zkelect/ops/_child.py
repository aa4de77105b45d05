"""The command ``zkelect run`` supervises (the *child*): how it is started, signalled and
reaped, and how its end is described. The order of things around it is supervisor.py's.

The child leads a process group of its own (``start_new_session``), so a signal reaches
everything it started; it is tied to the supervisor's life (zkelect/_lifeline.py), so a
SIGKILLed supervisor takes it along; a thread reaps it and reports its exit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from zkelect._lifeline import popen_tied

__all__ = [
    "Child",
    "command_problem",
    "describe_exit",
    "exit_status",
    "group_alive",
    "signal_name",
    "start_child",
]


def exit_status(returncode: int) -> int:
    """A child's Popen returncode as a shell would report it: 128+N for signal N."""
    return 128 - returncode if returncode < 0 else returncode


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 99`` for a number Python has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal_name(-returncode)}"
    return f"code={returncode}"


def command_problem(command: Sequence[str], env: Mapping[str, str] | None = None) -> str | None:
    """Why ``command[0]`` cannot be run, or None if it looks runnable."""
    program = command[0]
    if os.sep in program:
        if not Path(program).is_file():
            return f"command not found: {program}"
        if not os.access(program, os.X_OK):
            return f"command is not executable: {program}"
        return None
    search = (env or os.environ).get("PATH", os.defpath)
    if shutil.which(program, path=search) is None:
        return f"command not found on PATH: {program}"
    return None


def _process_group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) processes in group ``pgid``; None if /proc cannot tell."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any live process is left in process group ``pgid``."""
    members = _process_group_members(pgid)
    if members is not None:
        return bool(members)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Child:
    """One run of the command, leader of its own process group, reaped by a thread."""

    def __init__(
        self, proc: subprocess.Popen[bytes], epoch: int, on_exit: Callable[[Child], None]
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.pgid = proc.pid  # start_new_session: the child leads a new session and group
        self.epoch = epoch
        self.started = time.monotonic()
        self.done = threading.Event()
        self._on_exit = on_exit
        threading.Thread(target=self._reap, name=f"zkelect-reap-{self.pid}", daemon=True).start()

    def _reap(self) -> None:
        self.proc.wait()
        self.done.set()
        self._on_exit(self)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.done.is_set() else None

    def signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the child's whole process group; False if nothing is left."""
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - a member changed its credentials
            return True
        return True

    def finished(self) -> bool:
        """The child was reaped and nothing is left in its process group."""
        return self.done.is_set() and not group_alive(self.pgid)


def start_child(command: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session (so its own process group, away from our
    terminal's Ctrl-C), with PR_SET_PDEATHSIG(SIGKILL) so it cannot outlive us.

    Forked from zkelect's long-lived spawner thread: the kernel sends the parent-death
    signal when the *thread* that forked the child exits, not the process (zkelect/_lifeline.py).
    """
    return popen_tied(
        list(command),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
