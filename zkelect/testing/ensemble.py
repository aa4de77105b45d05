"""LocalEnsemble: real ZooKeeper servers (1..N) on loopback, for dev, demo, tests and the CLI.

Why real servers: election correctness rests on session expiry, ephemeral deletion and watch
delivery, which only a real quorum reproduces; fakes hide exactly the bugs that matter. Each member
is a plain ``QuorumPeerMain`` JVM with its own dataDir, myid, ports and logs, tracked by PID, so a
test can SIGKILL, SIGSTOP or restart one member at a time. Members are indexed 0..size-1 (myid is
index + 1).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from kazoo.client import KazooClient

from zkelect._lifeline import popen_tied
from zkelect._zookeeper.words import four_letter_word, server_mode
from zkelect.config import check_seconds
from zkelect.errors import ConfigurationError, ConnectionFailedError
from zkelect.testing._install import ZooKeeperInstall, find_zookeeper
from zkelect.testing._member import (
    LOG_NAMES,
    Member,
    ServerSasl,
    ServerSpec,
    ServerTls,
    check_extra_config,
    proc_state,
    why_exited,
    write_member_files,
)

__all__ = ["LocalEnsemble", "ServerSasl", "ServerTls", "ZooKeeperInstall", "find_zookeeper"]

_JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.jmx.log4j.disable=true",
)


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, below the kernel's ephemeral range when possible.

    Why below: a port picked from the ephemeral range can be taken by any outgoing connection (a
    kazoo client, say) between our check and the JVM's bind, or while a member is down before a
    restart. SystemRandom, because tests may seed the global ``random``.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng, held, ports = random.SystemRandom(), list[socket.socket](), list[int]()
    tries = 500 if low > 21_000 else 0  # then fall back to port 0: the kernel's choice
    try:
        for attempt in range(tries + count):
            if len(ports) == count:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)  # held until the end: no duplicates, even for port 0
            try:
                sock.bind(("127.0.0.1", rng.randint(20_000, low - 1) if attempt < tries else 0))
            except OSError:
                continue
            ports.append(int(sock.getsockname()[1]))
    finally:
        for sock in held:
            sock.close()
    return ports


_LIVE: set[LocalEnsemble] = set()


@atexit.register
def _stop_all() -> None:
    for ensemble in list(_LIVE):
        with contextlib.suppress(Exception):  # best effort at exit: keep stopping the others
            ensemble.stop()


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return value


class LocalEnsemble:
    """1..9 ZooKeeper members on 127.0.0.1; ``size == 1`` runs standalone.

    ``start()`` returns once every member serves and a write commits; ``stop()`` ends them by PID
    (SIGTERM, then SIGKILL) and is idempotent. Also a context manager. A temporary ``base_dir`` is
    removed on stop, except after a failed start (its logs are named in the error).
    """

    def __init__(
        self,
        size: int = 3,
        *,
        base_dir: str | Path | None = None,
        tick_time_ms: int = 200,
        min_session_timeout_ms: int | None = None,
        max_session_timeout_ms: int | None = None,
        zookeeper_home: str | None = None,
        start_timeout: float = 60.0,
        extra_config: Mapping[str, str] | None = None,
        jvm_heap_mb: int = 128,
        tls: ServerTls | None = None,
        sasl: ServerSasl | None = None,
    ) -> None:
        self._size = _check_int("size", size, 1, 9)
        self._tick = _check_int("tick_time_ms", tick_time_ms, 1, 60_000)
        self._min_st = _check_int(
            "min_session_timeout_ms",
            2 * self._tick if min_session_timeout_ms is None else min_session_timeout_ms,
            1,
            2**31 - 1,
        )
        self._max_st = _check_int(
            "max_session_timeout_ms",
            20 * self._tick if max_session_timeout_ms is None else max_session_timeout_ms,
            self._min_st,
            2**31 - 1,
        )
        self._heap = _check_int("jvm_heap_mb", jvm_heap_mb, 16, 65_536)
        self._start_timeout = check_seconds("start_timeout", start_timeout)
        if base_dir is not None and not isinstance(base_dir, (str, os.PathLike)):
            raise ConfigurationError(f"base_dir must be a directory path, got {base_dir!r}")
        if zookeeper_home is not None and not isinstance(zookeeper_home, str):
            raise ConfigurationError(f"zookeeper_home must be a str, got {zookeeper_home!r}")
        self._extra = check_extra_config(extra_config)
        if tls is not None and not isinstance(tls, ServerTls):
            raise ConfigurationError(f"tls must be a ServerTls, got {tls!r}")
        if sasl is not None and not isinstance(sasl, ServerSasl):
            raise ConfigurationError(f"sasl must be a ServerSasl, got {sasl!r}")
        self._tls = tls
        self._sasl = sasl
        self._install = find_zookeeper(zookeeper_home)
        self._base_arg = Path(base_dir) if base_dir is not None else None
        self._base: Path | None = None
        self._keep_base = False
        self._members: list[Member] = []
        self._lock = threading.RLock()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> LocalEnsemble:
        """Start all members concurrently; return once they serve and a write commits."""
        with self._lock:
            if self._members:
                raise ConfigurationError("this LocalEnsemble is already started")
            self._base = self._base_arg or Path(tempfile.mkdtemp(prefix="zkelect-ensemble-"))
            self._keep_base = False
            _LIVE.add(self)
        deadline = time.monotonic() + self._start_timeout
        for attempt in range(3):  # retry only if another process grabbed one of our ports
            per = 4 if self._tls is not None else 3
            ports = _free_ports(per * self._size)
            self._members = [
                Member(
                    i,
                    self._base / f"member-{i + 1}",
                    ports[per * i],
                    ports[per * i + 1],
                    ports[per * i + 2],
                    ports[per * i + 3] if self._tls is not None else None,
                )
                for i in range(self._size)
            ]
            try:
                for m in self._members:
                    self._write_config(m)
                    self._launch(m)
                self._wait(self._members, deadline, write=True)
                return self
            except BaseException as exc:  # also Ctrl-C: never leave members running
                failed = isinstance(exc, ConnectionFailedError)
                if failed and attempt < 2 and "Address already in use" in str(exc):
                    self._stop_processes()
                    continue
                self._keep_base = failed  # keep the logs the error names
                self.stop()
                raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop every member by PID: SIGCONT (if paused), SIGTERM, up to ~5 s, then SIGKILL."""
        with self._lock:
            self._stop_processes()
            self._members = []
            _LIVE.discard(self)
            if self._base is not None and self._base_arg is None and not self._keep_base:
                shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def __enter__(self) -> LocalEnsemble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self._size

    @property
    def tick_time_ms(self) -> int:
        return self._tick

    @property
    def min_session_timeout_ms(self) -> int:
        return self._min_st

    @property
    def max_session_timeout_ms(self) -> int:
        return self._max_st

    @property
    def install(self) -> ZooKeeperInstall:
        return self._install

    @property
    def hosts(self) -> str:
        """Connect string for the whole ensemble: ``127.0.0.1:p1,127.0.0.1:p2,...``."""
        return ",".join(self.member_hosts(i) for i in range(self._size))

    def member_hosts(self, i: int) -> str:
        return f"127.0.0.1:{self.client_port(i)}"

    def client_port(self, i: int) -> int:
        return self._member(i).client_port

    @property
    def secure_hosts(self) -> str:
        """Connect string of the members' TLS client ports (needs ``tls=``)."""
        return ",".join(f"127.0.0.1:{self.secure_client_port(i)}" for i in range(self._size))

    def secure_client_port(self, i: int) -> int:
        port = self._member(i).secure_port
        if port is None:
            raise ConfigurationError("this LocalEnsemble has no TLS port: build it with tls=")
        return port

    @property
    def sasl(self) -> ServerSasl | None:
        return self._sasl

    def member_dir(self, i: int) -> Path:
        return self._member(i).dir

    def pid(self, i: int) -> int | None:
        """PID of member ``i``'s JVM, or None if it is not running (killed or stopped)."""
        m = self._member(i)
        return m.proc.pid if m.proc is not None and m.running() else None

    # -- faults -----------------------------------------------------------------------------
    def kill(self, i: int) -> None:
        """SIGKILL member ``i`` and reap it: a crash, no goodbye to peers or clients."""
        with self._lock:
            m = self._member(i)
            if m.proc is not None:
                m.proc.kill()
                m.proc.wait()
            m.proc, m.paused = None, False

    def pause(self, i: int) -> None:
        """SIGSTOP member ``i``: it holds its sockets open but answers nothing (a GC pause)."""
        self._signal(i, signal.SIGSTOP, paused=True)

    def resume(self, i: int) -> None:
        self._signal(i, signal.SIGCONT, paused=False)

    def restart(self, i: int, timeout: float | None = None) -> None:
        """Kill member ``i`` if running, start it on the same dataDir and ports, wait until it
        serves (which needs a quorum of the others)."""
        self.kill(i)
        m = self._member(i)
        self._launch(m)
        self._wait([m], time.monotonic() + (timeout or self._start_timeout), write=False)

    def wait_serving(self, timeout: float | None = None) -> None:
        """Wait until every running, unpaused member serves and a write commits."""
        live = [m for m in self._started() if m.running() and not m.paused]
        if not live:
            raise ConnectionFailedError("no ZooKeeper member is running (all killed or paused)")
        self._wait(live, time.monotonic() + (timeout or self._start_timeout), write=True)

    # -- inspection -------------------------------------------------------------------------
    def four_letter(self, i: int, cmd: str, timeout: float = 5.0) -> str:
        """Send a four-letter word (srvr, mntr, cons, ...) to member ``i``; return the reply
        (:func:`zkelect._zookeeper.words.four_letter_word`, whose errors it raises)."""
        return four_letter_word(("127.0.0.1", self.client_port(i)), cmd, timeout=timeout)

    def mode(self, i: int) -> str:
        """ "leader", "follower" or "standalone" per ``srvr``; "" if not serving (or paused)."""
        m = self._member(i)
        if not m.running() or m.paused:
            return ""
        try:
            reply = self.four_letter(i, "srvr", timeout=2.0)
        except ConnectionFailedError:
            return ""
        return server_mode(reply) or ""

    def leader_index(self) -> int | None:
        """Index of the member that leads (a standalone member counts), or None."""
        return next(
            (i for i in range(self._size) if self.mode(i) in ("leader", "standalone")), None
        )

    # -- internals --------------------------------------------------------------------------
    def _write_config(self, m: Member) -> None:
        spec = ServerSpec(
            self._size, self._tick, self._min_st, self._max_st, self._tls, self._sasl, self._extra
        )
        write_member_files(m, self._members, spec)

    def _started(self) -> list[Member]:
        if not self._members:
            raise ConfigurationError("LocalEnsemble is not started: call start() or use `with`")
        return self._members

    def _member(self, i: int) -> Member:
        members = self._started()
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(members):
            raise ConfigurationError(f"member index must be in 0..{len(members) - 1}, got {i!r}")
        return members[i]

    def _signal(self, i: int, sig: signal.Signals, *, paused: bool) -> None:
        with self._lock:
            m = self._member(i)
            if m.proc is None or not m.running():
                raise ConfigurationError(f"ZooKeeper member {i} is not running")
            m.proc.send_signal(sig)
            m.paused = paused
            # A signal stops a multi-threaded JVM asynchronously: wait until the kernel shows
            # it (stopped or not), so callers observe the state they asked for.
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                state = proc_state(m.proc.pid)
                if state is None or (state == "T") == paused:
                    break
                time.sleep(0.005)

    def _launch(self, m: Member) -> None:
        security_flags: list[str] = []
        if self._sasl is not None:
            jaas = m.dir / "conf" / "jaas.conf"
            jaas.write_text(self._sasl.jaas())
            jaas.chmod(0o600)
            security_flags.append(f"-Djava.security.auth.login.config={jaas}")
        cmd = [
            self._install.java,
            f"-Xmx{self._heap}m",
            *_JVM_FLAGS,
            *security_flags,
            "-cp",
            f"{m.dir / 'conf'}:{self._install.classpath}",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(m.dir / "zoo.cfg"),
        ]
        sizes = [(m.dir / n).stat().st_size if (m.dir / n).exists() else 0 for n in LOG_NAMES]
        m.log_offsets = (sizes[0], sizes[1])
        with open(m.dir / "console.log", "ab") as console:
            m.proc = popen_tied(
                cmd,
                cwd=m.dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        m.paused = False

    def _wait(self, members: list[Member], deadline: float, *, write: bool) -> None:
        pending = list(members)
        while pending:
            for m in members:
                if m.proc is None or m.proc.poll() is not None:
                    code = None if m.proc is None else m.proc.returncode
                    raise ConnectionFailedError(
                        f"ZooKeeper member {m.index} exited (code {code}) before serving"
                        f"{why_exited(m)}; see {m.logs}"
                    )
            pending = [m for m in pending if self.mode(m.index) == ""]
            if pending and time.monotonic() > deadline:
                raise ConnectionFailedError(
                    "ZooKeeper did not serve in time; members not serving: "
                    + "; ".join(f"{m.index} (logs: {m.logs})" for m in pending)
                )
            time.sleep(0.05 if pending else 0)
        if write:
            self._probe_write(",".join(self.member_hosts(m.index) for m in members), deadline)

    def _probe_write(self, hosts: str, deadline: float) -> None:
        """A write through a throwaway session proves the quorum commits, not just listens."""
        error: Exception | None = None
        while time.monotonic() < deadline or error is None:
            client = KazooClient(
                hosts=hosts, timeout=max(self._min_st / 1000, 2.0), **self._probe_auth()
            )
            try:
                client.start(timeout=max(0.5, deadline - time.monotonic()))
                client.create("/zkelect-ensemble-probe-", ephemeral=True, sequence=True)
                return
            except Exception as exc:  # any kazoo failure: retry until the deadline
                error = exc
                time.sleep(0.1)
            finally:
                client.stop()
                client.close()
        raise ConnectionFailedError(
            f"ZooKeeper members at {hosts} serve but a write did not "
            f"commit in time ({error!r}); see logs under {self._base}"
        )

    def _probe_auth(self) -> dict[str, object]:
        """When the servers require SASL, the probe's session must authenticate too."""
        if self._sasl is None or not self._sasl.required:
            return {}
        user, password = next(iter(self._sasl.users.items()))
        return {"sasl_options": {"mechanism": "DIGEST-MD5", "username": user, "password": password}}

    def _stop_processes(self) -> None:
        procs = [m.proc for m in self._members if m.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        deadline = time.monotonic() + 5.0
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for m in self._members:
            m.proc, m.paused = None, False
