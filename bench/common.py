"""Shared helpers of the benchmark suite: the ensemble, statistics, clients, child processes,
the Curator driver build, results files.

Every benchmark script runs on its own (``python bench/handover.py``: it starts a local
3-member ensemble) or under ``bench/run_all.py``, which starts one ensemble for the whole suite
and passes ``--hosts``. Either way the results file records the machine, the versions and the
ensemble's settings as the servers report them (four-letter word ``conf``).

Processes: everything a benchmark starts (ZooKeeper members via LocalEnsemble, candidate
processes, the Curator JVM, PostgreSQL) is stopped by PID in a ``finally``, and children get
PR_SET_PDEATHSIG so a killed benchmark leaves nothing behind. Nothing is ever killed by name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

import kazoo  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

import zkelect  # noqa: E402
from zkelect._election.nodes import LEADER_MARKER_PREFIX  # noqa: E402  (R13's marker children)
from zkelect._lifeline import popen_tied  # noqa: E402
from zkelect.testing import four_letter, mntr, mntr_int, split_hosts  # noqa: E402
from zkelect.testing.ensemble import LocalEnsemble, find_zookeeper  # noqa: E402

# The suite's ensemble: 3 members on loopback. tickTime 200 ms; sessions from 2 to 100 ticks.
ENSEMBLE_SIZE = 3
TICK_MS = 200
MIN_SESSION_MS = 400
MAX_SESSION_MS = 20_000
ZK_HEAP_MB = 256
SUITE_ENV = "ZKELECT_BENCH_SUITE_HOSTS"  # set by run_all.py: the ensemble it started
STEP_TIMEOUT = 30.0  # any single wait that should take well under a second fails after this
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
RESULTS_DIR = ROOT / "bench" / "results"
JAVA_DIR = Path("/usr/share/java")
CURATOR_JARS = ("curator-recipes.jar", "curator-framework.jar", "curator-client.jar", "guava.jar")


class BenchError(Exception):
    """Something in a benchmark did not happen in time (reported in one line)."""


# --------------------------------------------------------------------------- statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not samples:
        raise BenchError("no samples")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


def describe(samples: Sequence[float], scale: float = 1000.0, digits: int = 4) -> dict[str, Any]:
    """Median, p90, p99, min, max and count of ``samples`` (seconds -> ms by default)."""
    return {
        "median": round(statistics.median(samples) * scale, digits),
        "p90": round(percentile(samples, 90) * scale, digits),
        "p99": round(percentile(samples, 99) * scale, digits),
        "min": round(min(samples) * scale, digits),
        "max": round(max(samples) * scale, digits),
        "count": len(samples),
    }


# --------------------------------------------------------------------------- the ensemble


@dataclass
class Ensemble:
    """The ensemble a benchmark runs on: its connect string and what its servers report."""

    hosts: str
    local: LocalEnsemble | None = None
    #: Four-letter words sent so far: each one counts in the servers' zk_packets_received.
    fourlw_calls: int = 0

    @property
    def members(self) -> list[str]:
        return split_hosts(self.hosts)

    def four_letter(self, i: int, cmd: str) -> str:
        self.fourlw_calls += 1
        return four_letter(self.members[i], cmd)

    def mntr_all(self) -> dict[str, int]:
        """Every integer ``mntr`` value summed over the members (one 4lw call per member)."""
        total: dict[str, int] = {}
        for member in self.members:
            self.fourlw_calls += 1
            for key, raw in mntr(member).items():
                with suppress(ValueError):
                    total[key] = total.get(key, 0) + int(float(raw))
        return total

    def mntr_sum(self, key: str) -> int:
        """``key`` from ``mntr`` summed over every member."""
        self.fourlw_calls += len(self.members)
        return sum(mntr_int(mntr(m), key) for m in self.members)

    def packets_received(self) -> int:
        return self.mntr_sum("zk_packets_received")

    def settings(self) -> dict[str, Any]:
        """The ensemble's settings as member 1 reports them (``conf`` and ``srvr``)."""
        conf: dict[str, str] = {}
        with suppress(Exception):
            for line in self.four_letter(0, "conf").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    conf[key.strip()] = value.strip()
        by_run_all = os.environ.get(SUITE_ENV) == self.hosts
        modes = []
        for i in range(len(self.members)):
            try:
                srvr = self.four_letter(i, "srvr")
                modes.append(
                    next(
                        (ln.split(":", 1)[1].strip() for ln in srvr.splitlines() if "Mode:" in ln),
                        "?",
                    )
                )
            except Exception:
                modes.append("unreachable")
        return {
            "size": len(self.members),
            "loopback": all(m.startswith("127.0.0.1:") for m in self.members),
            "modes": modes,
            "tick_time_ms": _int_or_none(conf.get("tickTime")),
            "min_session_timeout_ms": _int_or_none(conf.get("minSessionTimeout")),
            "max_session_timeout_ms": _int_or_none(conf.get("maxSessionTimeout")),
            "max_client_cnxns": _int_or_none(conf.get("maxClientCnxns")),
            "jvm_heap_mb": ZK_HEAP_MB if self.local is not None or by_run_all else None,
            "started_by": "this benchmark"
            if self.local is not None
            else "bench/run_all.py"
            if by_run_all
            else "given with --hosts",
        }

    def zookeeper_version(self) -> str:
        try:
            reply = self.four_letter(0, "srvr")
        except Exception as exc:
            return f"unknown ({exc})"
        for line in reply.splitlines():
            if line.lower().startswith("zookeeper version:"):
                return line.split(":", 1)[1].split(",")[0].strip()
        return "unknown"


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def new_local_ensemble() -> LocalEnsemble:
    return LocalEnsemble(
        ENSEMBLE_SIZE,
        tick_time_ms=TICK_MS,
        min_session_timeout_ms=MIN_SESSION_MS,
        max_session_timeout_ms=MAX_SESSION_MS,
        jvm_heap_mb=ZK_HEAP_MB,
    )


@contextmanager
def ensemble_for(hosts: str | None) -> Iterator[Ensemble]:
    """The ensemble at ``hosts``, or a fresh local one (stopped by PID on exit)."""
    if hosts:
        yield Ensemble(hosts)
        return
    with new_local_ensemble() as local:
        pids = [local.pid(i) for i in range(local.size)]
        print("ensemble pids: " + " ".join(str(p) for p in pids if p), flush=True)
        yield Ensemble(local.hosts, local)


# --------------------------------------------------------------------------- the machine


def _first_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _jar_version(name: str) -> str | None:
    """Debian ships ``name`` plus a ``<stem>-<version>.jar`` link (one way or the other)."""
    path = JAVA_DIR / name
    if not path.exists():
        return None
    stem = name.removesuffix(".jar")
    for other in sorted(JAVA_DIR.glob(f"{stem}-*.jar")):
        version = other.name.removeprefix(stem + "-").removesuffix(".jar")
        if version[:1].isdigit() and other.resolve() == path.resolve():
            return version
    return "unknown"


def machine_info(ensemble: Ensemble | None = None) -> dict[str, Any]:
    cpu_model = "unknown"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_mb = None
    with suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_mb": mem_mb,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kazoo": kazoo.version.__version__,
        "zkelect": zkelect.__version__,
        "java": _first_line([find_zookeeper().java, "-version"]),
        "curator": _jar_version("curator-recipes.jar"),
    }
    if ensemble is not None:
        info["zookeeper"] = ensemble.zookeeper_version()
    return info


def write_result(
    output: Path,
    *,
    benchmark: str,
    description: str,
    ensemble: Ensemble,
    machine: dict[str, Any],
    params: dict[str, Any],
    results: Any,
    began: float,
    **extra: Any,
) -> dict[str, Any]:
    """Write one benchmark's results file; returns what was written."""
    machine = {**machine, "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    data = {
        "benchmark": benchmark,
        "description": description,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
        "machine": machine,
        "ensemble": ensemble.settings(),
        "params": params,
        **extra,
        "results": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results written to {output} ({data['duration_s']:.0f}s)", flush=True)
    return data


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--hosts", help="use this ensemble (default: start a local one)")
    parser.add_argument("--output", type=Path, help="JSON results file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one trial (a smoke run)")
    return parser


def default_output(name: str, smoke: bool) -> Path:
    """A smoke run never overwrites the real results: it goes to bench/results/tmp/."""
    return RESULTS_DIR / ("tmp" if smoke else "") / f"{name}.json"


def exit_on_sigterm() -> None:
    """SIGTERM (run_all's timeout, a user) unwinds like Ctrl-C, so every ``finally`` runs and
    every process this benchmark started is stopped by PID."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------- clients


@contextmanager
def started_clients(hosts: Sequence[str], timeout: float = 10.0) -> Iterator[list[KazooClient]]:
    """One started KazooClient per entry of ``hosts`` (connected in parallel); all stopped and
    closed on exit, whatever happens."""
    clients = [KazooClient(hosts=h, timeout=timeout) for h in hosts]
    try:
        events = [client.start_async() for client in clients]
        deadline = time.monotonic() + STEP_TIMEOUT + len(clients) * 0.05
        for client, event in zip(clients, events, strict=True):
            event.wait(max(0.0, deadline - time.monotonic()))
            if not client.connected:
                raise BenchError(f"a client did not connect to {client.hosts} in time")
        yield clients
    finally:
        for client in clients:
            with suppress(Exception):
                client.stop()
            with suppress(Exception):
                client.close()


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:g}s")
        time.sleep(0.002)


def candidate_names(children: Sequence[str]) -> list[str]:
    """The children that are candidates' nodes: leader markers left out."""
    return [name for name in children if not name.startswith(LEADER_MARKER_PREFIX)]


def wait_children(
    client: KazooClient, path: str, count: int, timeout: float = STEP_TIMEOUT
) -> None:
    """Poll until ``path`` has ``count`` candidate nodes (the queue is whole again)."""
    wait_until(
        lambda: len(candidate_names(client.get_children(path))) == count,
        f"{path} getting back to {count} candidates",
        timeout,
    )


class Recorder:
    """Where callbacks (other threads) note who started leading, and when."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.events: list[tuple[int, float]] = []  # (candidate index, perf_counter)

    def record(self, index: int) -> None:
        now = time.perf_counter()  # first thing: this is the end of the measurement
        with self._cond:
            self.events.append((index, now))
            self._cond.notify_all()

    def count(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_beyond(self, mark: int, what: str, timeout: float = STEP_TIMEOUT) -> tuple[int, float]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.events) > mark, timeout):
                raise BenchError(f"no new leader within {timeout:g}s ({what})")
            return self.events[mark]


# --------------------------------------------------------------------------- processes


def child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (all its threads), in clock ticks, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), 0-based after comm


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """Threads, VmRSS and VmHWM (peak RSS, kB) of a process, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Threads", "VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class Child:
    """A child process whose stdout lines are read by a thread (so waits have deadlines).

    Started with PR_SET_PDEATHSIG (it dies with us) and a stdin pipe (EOF tells it to stop);
    stopped by PID in ``stop()``: SIGKILL if it is paused, else close stdin, SIGTERM, SIGKILL.
    """

    def __init__(self, argv: list[str], *, name: str, log: Path | None = None) -> None:
        self.name = name
        self._log_file = open(log, "w") if log is not None else None  # noqa: SIM115
        self.proc = popen_tied(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file if self._log_file is not None else subprocess.DEVNULL,
            text=True,
            bufsize=1,
            cwd=ROOT,
            env=child_env(),
        )
        self.pid = self.proc.pid
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.seen: list[str] = []
        self._unread: list[str] = []
        threading.Thread(target=self._pump, name=f"pump-{name}", daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with suppress(Exception):
            for line in self.proc.stdout:
                self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _take(self, prefix: str) -> str | None:
        for i, line in enumerate(self._unread):
            if line.startswith(prefix):
                return self._unread.pop(i)
        return None

    def expect(self, prefix: str, timeout: float = STEP_TIMEOUT) -> str:
        """The first line starting ``prefix`` not taken yet (other lines stay for later)."""
        found = self._take(prefix)
        if found is not None:
            return found
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                raise BenchError(
                    f"{self.name}: no line starting {prefix!r} within {timeout:g}s "
                    f"(last lines: {self.seen[-5:]})"
                ) from None
            if line is None:
                self._lines.put(None)
                raise BenchError(
                    f"{self.name} exited (code {self.proc.poll()}) before printing {prefix!r}; "
                    f"last lines: {self.seen[-5:]}"
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line
            self._unread.append(line)

    def poll_line(self, prefix: str) -> str | None:
        """A line starting ``prefix`` already received, without waiting (others stay)."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._lines.put(None)
                break
            self.seen.append(line)
            self._unread.append(line)
        return self._take(prefix)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, grace: float = 10.0) -> None:
        proc = self.proc
        try:
            if proc.poll() is None:
                if proc_state(self.pid) == "T":  # paused: SIGTERM would wait for SIGCONT
                    os.kill(self.pid, signal.SIGKILL)
                else:
                    with suppress(OSError):
                        assert proc.stdin is not None
                        proc.stdin.close()
                    with suppress(subprocess.TimeoutExpired):
                        proc.wait(min(grace, 3.0))
                    if proc.poll() is None:
                        proc.terminate()
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(grace)
        finally:
            for stream in (proc.stdin, proc.stdout):
                with suppress(Exception):
                    if stream is not None:
                        stream.close()
            if self._log_file is not None:
                self._log_file.close()


@dataclass
class Children:
    """Every child a benchmark started; ``stop_all`` stops each by PID (use in a finally)."""

    items: list[Child] = field(default_factory=list)

    def start(self, argv: list[str], *, name: str, log: Path | None = None) -> Child:
        child = Child(argv, name=name, log=log)
        self.items.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.items):
            try:
                child.stop()
            except Exception as exc:  # keep stopping the others
                print(f"warning: stopping {child.name} (pid {child.pid}): {exc}", file=sys.stderr)
        self.items.clear()


# --------------------------------------------------------------------------- Curator (Java)


@dataclass(frozen=True)
class JavaProgram:
    command: list[str]  # java ... MainClass (append the program's arguments)
    workdir: Path


@contextmanager
def curator_driver(heap_mb: int = 384) -> Iterator[JavaProgram]:
    """Compile bench/java/CuratorDriver.java against Debian's Curator and ZooKeeper jars, in a
    temporary directory (removed on exit); yields the ``java`` command line to run it."""
    import shutil

    javac = shutil.which("javac")
    if javac is None:
        raise BenchError("javac is missing: apt-get install default-jdk-headless")
    missing = [jar for jar in CURATOR_JARS if not (JAVA_DIR / jar).is_file()]
    if missing:
        raise BenchError(
            f"Curator jars missing from {JAVA_DIR}: {missing}; "
            "apt-get install libcurator-recipes-java"
        )
    install = find_zookeeper()
    # Explicit jars only: "/usr/share/java/*" binds several SLF4J backends (see ensemble.py).
    classpath = ":".join([*(str(JAVA_DIR / jar) for jar in CURATOR_JARS), install.classpath])
    with tempfile.TemporaryDirectory(prefix="zkelect-bench-java-") as tmp:
        out = Path(tmp)
        source = ROOT / "bench" / "java" / "CuratorDriver.java"
        done = subprocess.run(
            [javac, "-nowarn", "-d", str(out), "-cp", classpath, str(source)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"javac CuratorDriver.java failed: {done.stderr.strip()[-800:]}")
        log4j = out / "log4j.properties"
        log4j.write_text(
            "log4j.rootLogger=WARN, ERR\n"
            "log4j.appender.ERR=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.ERR.Target=System.err\n"
            "log4j.appender.ERR.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.ERR.layout.ConversionPattern=%d %-5p %c{1} - %m%n\n"
        )
        yield JavaProgram(
            [
                install.java,
                f"-Xmx{heap_mb}m",
                "-Xss512k",
                "-XX:+UseSerialGC",
                "-Xshare:auto",
                "-Djava.net.preferIPv4Stack=true",
                f"-Dlog4j.configuration=file:{log4j}",
                "-cp",
                f"{out}:{classpath}",
                "CuratorDriver",
            ],
            out,
        )


def python_command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / script), *args]


@contextlib.contextmanager
def timed(label: str) -> Iterator[None]:
    began = time.perf_counter()
    print(f"{label} ...", flush=True)
    try:
        yield
    finally:
        print(f"{label}: {time.perf_counter() - began:.1f}s", flush=True)
