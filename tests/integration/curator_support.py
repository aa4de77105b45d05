"""A real Apache Curator LeaderLatch participant (tests/java/LatchPeer.java) for the
interoperability tests: compiled once per session against Debian's Curator jars, run as a
child process the test talks to through its stdin and stdout.

Why a real JVM: only Curator itself proves that its node names, node data and ordering are
what zkelect parses, and that nothing zkelect writes (leader markers, a switchover request)
makes a LeaderLatch do anything it does not understand.

Every peer is stopped by PID (``stop_process``) in the test's ``finally``; if the test process
dies first, the kernel kills it (``_die_with_test``) and stdin EOF closes its latch.
"""

from __future__ import annotations

import ctypes
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from zkelect.testing.ensemble import find_zookeeper

__all__ = [
    "CURATOR_HINT",
    "CURATOR_JARS",
    "JAVA_DIR",
    "LATCH_PEER_SOURCE",
    "TRANSITIONS",
    "Lines",
    "Peer",
    "_die_with_test",
    "build_latch_peer",
    "parse_participants",
    "stop_process",
]

REPO = Path(__file__).resolve().parents[2]
LATCH_PEER_SOURCE = REPO / "tests" / "java" / "LatchPeer.java"
JAVA_DIR = Path("/usr/share/java")
CURATOR_JARS = ("curator-recipes.jar", "curator-framework.jar", "curator-client.jar", "guava.jar")
CURATOR_HINT = "apt-get install libcurator-recipes-java (Debian's Apache Curator 5.x)"
WAIT = 15.0  # generous deadline for anything that should take well under a second
#: The lines a LatchPeer prints when its latch changes its mind.
TRANSITIONS = ("LEADER ", "FOLLOWER")
#: One participant in a PARTICIPANTS line: the id (any text) then |true or |false.
_PARTICIPANT = re.compile(r"(.*?)\|(true|false)(?:;|$)", re.DOTALL)


def build_latch_peer(out: Path) -> list[str]:
    """Compile LatchPeer.java into ``out`` against Debian's Curator and ZooKeeper jars; the
    java command that runs it (append: connect string, latch path, participant id).

    Fails (never skips) without javac or Curator: the interoperability claim is only worth
    something if it is tested on every run.
    """
    javac = shutil.which("javac")
    if javac is None:
        pytest.fail(
            "javac is missing: apt-get install default-jdk-headless (the Curator "
            f"interoperability tests compile a real LeaderLatch peer); {CURATOR_HINT}",
            False,
        )
    missing = [jar for jar in CURATOR_JARS if not (JAVA_DIR / jar).exists()]
    if missing:
        pytest.fail(f"Curator jars missing from {JAVA_DIR}: {missing}; {CURATOR_HINT}", False)
    # Explicit jars only: "/usr/share/java/*" binds several SLF4J backends (see ensemble.py).
    classpath = ":".join(
        [*(str(JAVA_DIR / jar) for jar in CURATOR_JARS), find_zookeeper().classpath]
    )
    compiled = subprocess.run(
        [javac, "-d", str(out), "-cp", classpath, str(LATCH_PEER_SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compiled.returncode == 0, f"javac failed:\n{compiled.stderr}"
    log4j = out / "log4j.properties"
    log4j.write_text(
        "log4j.rootLogger=WARN, ERR\n"
        "log4j.appender.ERR=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.ERR.Target=System.err\n"
        "log4j.appender.ERR.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.ERR.layout.ConversionPattern=%d %-5p %c{1} - %m%n\n"
    )
    return [
        find_zookeeper().java,
        "-Xmx64m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xshare:auto",
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        f"{out}:{classpath}",
        "LatchPeer",
    ]


def parse_participants(line: str) -> list[tuple[str, bool]]:
    """``PARTICIPANTS a|true;b|false`` -> [("a", True), ("b", False)], in Curator's order.
    An id may hold any text but ``|true;``/``|false;`` (JSON request data does not)."""
    body = line.removeprefix("PARTICIPANTS ")
    found = [(m.group(1), m.group(2) == "true") for m in _PARTICIPANT.finditer(body)]
    again = ";".join(f"{id_}|{str(leads).lower()}" for id_, leads in found)
    assert again == body, f"unparsed participants line: {line!r}"
    return found


class Lines:
    """Lines of a child's stdout, read by a thread so that waits can have deadlines."""

    def __init__(self, stream: Any) -> None:
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = WAIT) -> str:
        try:
            while True:
                line = self._queue.get(timeout=timeout)
                self.seen.append(line)
                if line.startswith(prefix):
                    return line
        except queue.Empty:
            message = f"no line starting {prefix!r} within {timeout}s; saw {self.seen}"
        raise AssertionError(message)


def stop_process(proc: subprocess.Popen[str], grace: float = 10.0) -> int:
    """SIGTERM, wait, SIGKILL: by PID, whatever state the test left it in."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _die_with_test() -> None:
    """In the forked child: have the kernel SIGKILL it if this test process dies first."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)


class Peer:
    """One LatchPeer process: its stdout as ``lines``, its stderr in ``log``."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        with open(log, "w") as stderr:
            # stdin is a pipe: if this test process dies, EOF makes the peer close and exit.
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                preexec_fn=_die_with_test,
            )
        self.lines = Lines(self.proc.stdout)

    def ask(self, command: str, answer: str) -> str:
        """Send one command line; its answer line (the lines before it stay in ``seen``:
        the peer prints in order, so a transition before the answer is there too)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.lines.expect(answer)

    def participants(self) -> list[tuple[str, bool]]:
        """Curator's ``latch.getParticipants()``: (id, isLeader) in its order."""
        return parse_participants(self.ask("participants", "PARTICIPANTS"))

    def leader(self) -> str:
        """Curator's ``latch.getLeader().getId()``."""
        return self.ask("leader", "LEADERID").removeprefix("LEADERID").removeprefix(" ")

    def transitions(self) -> list[str]:
        """The LEADER/FOLLOWER lines this peer printed so far (as read up to now)."""
        return [line for line in self.lines.seen if line.startswith(TRANSITIONS)]
