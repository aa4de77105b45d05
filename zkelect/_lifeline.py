"""Child processes that cannot outlive us: ZooKeeper members, `zkelect run` commands,
demo candidates.

On Linux the child asks the kernel for SIGKILL when its parent dies (PR_SET_PDEATHSIG),
and re-checks its parent afterwards in case the parent died first. The kernel fires that
signal when the *thread* that forked the child exits, not the process, so every child is
forked from one daemon thread that lives as long as the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

__all__ = ["PRCTL", "die_with_parent", "popen_tied", "sigterm_as_interrupt", "spawn"]


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


PRCTL = _load_prctl()


def die_with_parent(parent: int) -> None:
    """In the forked child, before exec: have the kernel SIGKILL it when ``parent`` dies."""
    if PRCTL is not None:
        PRCTL(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


_SpawnJob = tuple[Callable[[], "subprocess.Popen[Any]"], "Future[subprocess.Popen[Any]]"]
_spawn_jobs: queue.SimpleQueue[_SpawnJob] = queue.SimpleQueue()
_spawner_lock = threading.Lock()
_spawner: threading.Thread | None = None


def spawn(start: Callable[[], subprocess.Popen[Any]]) -> subprocess.Popen[Any]:
    """Run ``start`` (which forks) on the long-lived spawner thread; its Popen."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:

            def serve() -> None:
                while True:
                    job, result = _spawn_jobs.get()
                    try:
                        result.set_result(job())
                    except BaseException as exc:  # handed to the caller
                        result.set_exception(exc)

            _spawner = threading.Thread(target=serve, name="zkelect-spawner", daemon=True)
            _spawner.start()
    result: Future[subprocess.Popen[Any]] = Future()
    _spawn_jobs.put((start, result))
    return result.result()


def popen_tied(args: list[str], **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **popen)`` for a child that dies with this process."""
    parent = os.getpid()
    preexec = (lambda: die_with_parent(parent)) if PRCTL is not None else None
    return spawn(lambda: subprocess.Popen(args, preexec_fn=preexec, **popen))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C meanwhile, so ``finally`` blocks stop the children that
    were started (only the main thread may set a signal handler; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
