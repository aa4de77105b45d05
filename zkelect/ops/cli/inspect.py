"""``zkelect status``, ``watch``, ``resign`` and ``exporter``: see and change who leads.

All of them read election paths the way the candidates do (contenders.py parses the node
names of zkelect, Curator LeaderLatch/LeaderSelector and kazoo Lock/Election and orders them
like zkelect's candidates), so they work on any of those recipes' paths:

* ``status`` reads once, sets no watch, creates nothing;
* ``watch`` holds one watch at a time (the leader's node; the path's children only while it
  has no contender; an ``exists`` watch only while the path is missing), like the exporter,
  and prints one line per leader change;
* ``resign`` deletes one contender's node with the version it read (so it never deletes a
  node that changed meanwhile), then waits for the next leader;
* ``exporter`` runs zkelect.ops.exporter (Prometheus metrics for every observed path).

What ZooKeeper cannot tell: when the leader *became* leader. A node's ctime is when its
candidate joined (created the node); it led from the moment its predecessor's node went
away, which leaves no trace. So ``status`` shows "joined N ago" for every contender.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    ConnectionLoss,
    NoAuthError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    SessionClosedRequireSaslError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import WatchedEvent
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from zkelect._election.contenders import Contender, ContenderKind, contender_order
from zkelect._election.nodes import SequenceWrap, sequence_wrap
from zkelect.config import MAX_SECONDS
from zkelect.ops import exporter as _exporter
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    CliError,
    HostsOption,
    JsonOption,
    TimeoutOption,
    UsageError,
    connected_client,
    echo_json,
    valid_path,
)
from zkelect.ops.cli.security_options import with_security
from zkelect.security import ClientSecurity

__all__ = ["Candidate", "Snapshot", "app", "read_election"]

app = typer.Typer()

_MAX_PASSES = 16  # re-reads while the election churns, before giving up
_MAX_SHOWN = 64  # characters of a candidate id in human output (JSON has all of it)
_MAX_IGNORED_SHOWN = 5  # names of ignored children in human output (JSON has all of them)
_IDLE_WAKE = 0.2  # how often a waiting watch checks for SIGINT/SIGTERM (seconds)

_KIND_LABEL = {
    ContenderKind.LATCH: "zkelect / Curator LeaderLatch",
    ContenderKind.CURATOR_LOCK: "Curator LeaderSelector / lock",
    ContenderKind.KAZOO_LOCK: "kazoo Election / Lock",
    ContenderKind.KAZOO_READ_LOCK: "kazoo ReadLock",
}

PathArgument = Annotated[
    str,
    typer.Argument(
        metavar="PATH", help="The election path, e.g. /elections/controller.", show_default=False
    ),
]

_STATUS_HELP = (
    "Show an election's candidates in election order, its leader and the leader's epoch.\n\n"
    "One row per candidate: its id (the node's data), role, czxid (the leader's is its "
    "fencing epoch), session, when it joined (ZooKeeper does not record when a candidate "
    "became leader, only when its node was created) and its node. Works on zkelect, Curator "
    "LeaderLatch / LeaderSelector and kazoo Election / Lock paths. Read-only: sets no watch, "
    "creates nothing.\n\n"
    "--json prints one object: {path, leader: {id, epoch, node, session, kind, joined_ms_ago} "
    "or null, candidates: [{id, node, sequence, session, kind, epoch, joined_ms_ago}, ...], "
    "exists, ignored, sequence_wrap: {wrapped, orders_differ, string_order_first}}. A path "
    "that does not exist is an empty election: exit 0, a note on stderr. After ZooKeeper's "
    "sequence counter wraps (a negative sequence number), a warning on stderr says whether "
    "Curator and kazoo now elect another node (docs/safety.md)."
)
_WATCH_HELP = (
    "Print one line per leader change, the current leader first, until SIGINT/SIGTERM.\n\n"
    "Each line: the local ISO time, the leader's id, epoch (hex), session and node, or "
    "'no leader'. --json prints one object per line: {time, leader: {id, epoch, node, "
    "session, kind} or null}. Holds one watch (on the leader's node), so candidates joining "
    "and leaving print nothing. Exit 0 when interrupted (or after --count lines)."
)
_RESIGN_HELP = (
    "Force the leader (or the candidate --id) out by deleting its node.\n\n"
    "The delete is checked against the version read, so nothing that changed meanwhile is "
    "deleted. Prints the old leader and the new one, waiting up to --timeout for one. "
    "zkelect candidates see their node go at once, stop leading and rejoin at the back; "
    "kazoo and Curator holders do not watch their own node and may not notice (that is what "
    "fencing epochs are for). Exit 1 without permission (deleting a child needs DELETE on "
    "the election path: --auth), for an unknown --id, or an empty election."
)
_EXPORTER_HELP = (
    "Export the leaders of election paths as Prometheus metrics, read-only.\n\n"
    "Serves http://BIND:PORT/metrics for zkelect, Curator and kazoo elections until "
    "SIGINT/SIGTERM, and prints 'listening on URL' once serving. See docs/exporter.md for "
    "the metrics."
)


# -- reading an election ---------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One contender's node as read: who (its data), where, which session, when it joined."""

    contender: Contender
    candidate_id: str
    czxid: int
    session: int
    ctime_ms: int
    version: int

    @property
    def node(self) -> str:
        return self.contender.name

    def leader_json(self) -> dict[str, Any]:
        """The ``leader`` object of ``status --json`` and ``watch --json``."""
        return {
            "id": self.candidate_id,
            "epoch": self.czxid,
            "node": self.node,
            "session": self.session,
            "kind": self.contender.kind.value,
        }

    def candidate_json(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.candidate_id,
            "node": self.node,
            "sequence": self.contender.sequence,
            "session": self.session,
            "kind": self.contender.kind.value,
            "epoch": self.czxid,
            "joined_ms_ago": max(0, now_ms - self.ctime_ms),
        }


@dataclass(frozen=True)
class Snapshot:
    """An election path as read at one moment: contenders in election order, leader first.

    ``ignored``: the other children, which no candidate counts either: names that are no
    recipe's contender, and persistent nodes named like one (no session owns them).
    """

    path: str
    exists: bool
    candidates: tuple[Candidate, ...]
    ignored: tuple[str, ...] = ()

    @property
    def kinds(self) -> list[ContenderKind]:
        """The recipes whose contenders are here; more than one is a misconfiguration."""
        return sorted({c.contender.kind for c in self.candidates}, key=lambda k: k.value)

    @property
    def leader(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def sequence_wrap(self) -> SequenceWrap:
        """Whether the counter wrapped, and whom Curator's and kazoo's string order elects."""
        return sequence_wrap(c.contender for c in self.candidates)

    def as_json(self, now_ms: int) -> dict[str, Any]:
        leader = self.leader
        return {
            "path": self.path,
            "leader": None
            if leader is None
            else {**leader.leader_json(), "joined_ms_ago": max(0, now_ms - leader.ctime_ms)},
            "candidates": [c.candidate_json(now_ms) for c in self.candidates],
            "exists": self.exists,
            "ignored": list(self.ignored),
            "sequence_wrap": _wrap_json(self.sequence_wrap),
        }


def _wrap_json(wrap: SequenceWrap) -> dict[str, Any]:
    return {
        "wrapped": wrap.wrapped,
        "orders_differ": wrap.orders_differ,
        "string_order_first": wrap.string_first,
    }


def read_election(client: KazooClient, path: str) -> Snapshot:
    """Read ``path``'s contenders and their nodes, without watches; re-read if the leader
    leaves between the listing and its read (a follower that left is just dropped)."""
    for _ in range(_MAX_PASSES):
        try:
            children = client.get_children(path)
        except NoNodeError:
            return Snapshot(path, False, ())
        names = [str(c) for c in children]
        order = contender_order(names)
        ignored = set(names).difference(c.name for c in order)
        found: list[Candidate] = []
        for contender in order:
            try:
                data, stat = client.get(f"{path}/{contender.name}")
            except NoNodeError:
                if not found:
                    break  # the leader left meanwhile: read the new order
                continue
            if not stat.ephemeralOwner:  # persistent: no session owns it, not a contender
                ignored.add(contender.name)
                continue
            found.append(_candidate(contender, data, stat))
        else:
            return Snapshot(path, True, tuple(found), tuple(sorted(ignored)))
    raise CliError(f"{path} changed too fast to read ({_MAX_PASSES} tries); try again")


def _candidate(contender: Contender, data: bytes | None, stat: Any) -> Candidate:
    return Candidate(
        contender=contender,
        candidate_id=(data or b"").decode("utf-8", errors="replace"),
        czxid=int(stat.czxid),
        session=int(stat.ephemeralOwner),
        ctime_ms=int(stat.ctime),
        version=int(stat.version),
    )


# -- shared plumbing -------------------------------------------------------------------------


def _quiet_kazoo() -> None:
    """kazoo logs every failed connection attempt; our errors are one line of our own."""
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _session(
    hosts: str, timeout: float, security: ClientSecurity, path: str
) -> Iterator[KazooClient]:
    """A connected (and authenticated) client; kazoo failures become one-line CliErrors."""
    _quiet_kazoo()
    with _zk_errors(hosts, path), connected_client(hosts, timeout, security) as client:
        yield client


@contextlib.contextmanager
def _zk_errors(hosts: str, path: str) -> Iterator[None]:
    try:
        yield
    except NoAuthError:
        raise CliError(
            f"no permission to read {path}: authenticate (--auth SCHEME:CREDENTIAL or "
            "--sasl-user) or ask an operator with rights"
        ) from None
    except SessionClosedRequireSaslError:
        raise CliError(
            f"ZooKeeper at {hosts} requires SASL authentication: pass --sasl-user USER with "
            "the password in ZKELECT_SASL_PASSWORD"
        ) from None
    except AuthFailedError:
        raise CliError(f"ZooKeeper at {hosts} refused this session's credentials") from None
    except (ConnectionLoss, SessionExpiredError, OperationTimeoutError, KazooTimeoutError):
        raise CliError(
            f"lost the connection to ZooKeeper at {hosts} (no quorum?); try again"
        ) from None


def _hex(value: int) -> str:
    return f"0x{value:x}"


def _ago(ms: int) -> str:
    seconds = max(0, ms) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m ago"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h ago"


def _console() -> Console:
    # Not a terminal (a pipe, a log): no colours, and wide enough not to fold node names.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def _shown(candidate_id: str) -> str:
    """A candidate id for human eyes: node data may be anything, up to a megabyte."""
    if not candidate_id:
        return "(no id)"
    text = "".join(ch if ch.isprintable() else "?" for ch in candidate_id[: _MAX_SHOWN + 1])
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _describe(c: Candidate | None) -> str:
    if c is None:
        return "none"
    return f"{_shown(c.candidate_id)} (epoch {_hex(c.czxid)}, node {c.node})"


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- status ------------------------------------------------------------------------------------


@app.command("status", help=_STATUS_HELP)
@with_security
def status(
    path: PathArgument,
    hosts: HostsOption = DEFAULT_HOSTS,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 10.0,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    with _session(hosts, timeout, security, path) as client:
        snap = read_election(client, path)
    now = _now_ms()
    if not snap.exists:
        sys.stderr.write(f"zkelect: note: {path} does not exist (no election there yet)\n")
    if len(snap.kinds) > 1:
        recipes = ", ".join(_KIND_LABEL[kind] for kind in snap.kinds)
        sys.stderr.write(
            f"zkelect: warning: contenders of several recipes share {path} ({recipes}): "
            "each recipe elects its own leader there; give each its own path\n"
        )
    wrap_warning = snap.sequence_wrap.warning(path)
    if wrap_warning is not None:
        sys.stderr.write(f"zkelect: warning: {wrap_warning}\n")
    if json_output:
        echo_json(snap.as_json(now))
        return
    _print_status(snap, now)


def _print_status(snap: Snapshot, now_ms: int) -> None:
    console = _console()
    leader = snap.leader
    if leader is None:
        console.print(f"{snap.path}: no leader, {len(snap.candidates)} candidates", markup=False)
        _print_ignored(console, snap)
        return
    kinds = sorted({_KIND_LABEL[c.contender.kind] for c in snap.candidates})
    count = len(snap.candidates)
    heading = Text(f"{snap.path}: leader ")
    heading.append(_shown(leader.candidate_id), style="bold")
    heading.append(
        f", epoch {_hex(leader.czxid)}, {count} candidate{'s' if count != 1 else ''} "
        f"({', '.join(kinds)})"
    )
    console.print(heading)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("#", "id", "role", "czxid", "session", "joined", "node"):
        table.add_column(column, no_wrap=True)
    for position, c in enumerate(snap.candidates):
        cells = (
            str(position + 1),
            _shown(c.candidate_id),
            "leader" if position == 0 else "waiting",
            _hex(c.czxid),
            _hex(c.session),
            _ago(now_ms - c.ctime_ms),
            c.node,
        )
        table.add_row(*(Text(cell) for cell in cells))  # Text: ids are data, not markup
    console.print(table)
    _print_ignored(console, snap)


def _print_ignored(console: Console, snap: Snapshot) -> None:
    if not snap.ignored:
        return
    shown = ", ".join(_shown(name) for name in snap.ignored[:_MAX_IGNORED_SHOWN])
    more = len(snap.ignored) - _MAX_IGNORED_SHOWN
    console.print(
        Text(
            f"{len(snap.ignored)} other node{'s' if len(snap.ignored) != 1 else ''} ignored "
            f"(no recipe's candidates): {shown}" + (f" and {more} more" if more > 0 else "")
        )
    )


# -- watch -------------------------------------------------------------------------------------


class _LeaderWatch:
    """Reads the leader and leaves exactly one watch that fires at its next change.

    Every wake-up re-reads; a line is printed only when the leader (its node and id) differs
    from the last one printed, so spurious wake-ups (a children watch that fires because a
    candidate joined, a reconnection) print nothing.
    """

    def __init__(self, client: KazooClient, path: str) -> None:
        self._client = client
        self._path = path
        self.wake = threading.Event()
        self.connected = True
        self._watch = self._fired  # one callable: kazoo keeps one watcher per znode for it
        self._ignored: set[str] = set()  # persistent nodes named like contenders
        client.add_listener(self._on_state)

    def _fired(self, event: WatchedEvent) -> None:
        self.wake.set()

    def _on_state(self, state: str) -> None:
        self.connected = state == KazooState.CONNECTED
        self.wake.set()  # re-read on reconnection (a new session has no watches)

    def read(self) -> Candidate | None:
        client, path = self._client, self._path
        for _ in range(_MAX_PASSES):
            try:
                children = client.get_children(path)
            except NoNodeError:
                if client.exists(path, watch=self._watch) is None:
                    return None
                continue  # created meanwhile
            names = [str(c) for c in children]
            self._ignored.intersection_update(names)  # forget the ones deleted meanwhile
            order = [c for c in contender_order(names) if c.name not in self._ignored]
            if not order:
                # Nobody to watch: learn about the first contender from the children.
                fresh = client.get_children(path, watch=self._watch)
                if any(c.name not in self._ignored for c in contender_order(map(str, fresh))):
                    continue
                return None
            try:
                data, stat = client.get(f"{path}/{order[0].name}", watch=self._watch)
            except NoNodeError:
                continue  # the leader left between the two reads
            if not stat.ephemeralOwner:  # persistent: not a contender (as in read_election)
                self._ignored.add(order[0].name)
                continue
            return _candidate(order[0], data, stat)
        raise CliError(f"{path} changed too fast to observe ({_MAX_PASSES} tries)")


class _Stop:
    """SIGINT/SIGTERM set a flag (a handler must not take locks the main thread may hold)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _iso_now() -> str:
    return (
        datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="milliseconds")
    )


@app.command("watch", help=_WATCH_HELP)
@with_security
def watch(
    path: PathArgument,
    hosts: HostsOption = DEFAULT_HOSTS,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 10.0,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", min=1, help="Exit 0 after this many lines (default: until interrupted)."
        ),
    ] = None,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    with _Stop() as stop, _session(hosts, timeout, security, path) as client:
        watcher = _LeaderWatch(client, path)
        printed = 0
        last: object = object()  # nothing printed yet
        retry_at: float | None = None
        noted_loss = False
        while not stop.requested:
            watcher.wake.clear()
            if watcher.connected == noted_loss:  # a change since the last note
                noted_loss = not watcher.connected
                sys.stderr.write(
                    "zkelect: note: lost the connection to ZooKeeper; retrying (changes meanwhile "
                    "are reported once it is back)\n"
                    if noted_loss
                    else "zkelect: note: reconnected to ZooKeeper\n"
                )
            if watcher.connected:
                try:
                    leader = watcher.read()
                except (ConnectionLoss, SessionExpiredError, OperationTimeoutError):
                    retry_at = time.monotonic() + 0.5  # or on reconnection, if sooner
                else:
                    retry_at = None
                    key = None if leader is None else (leader.node, leader.candidate_id)
                    if key != last:
                        last = key
                        if not _print_change(leader, json_output):
                            return  # the reader went away (a closed pipe): done
                        printed += 1
                        if count is not None and printed >= count:
                            return
            while not stop.requested and not watcher.wake.wait(_IDLE_WAKE):
                if retry_at is not None and time.monotonic() >= retry_at:
                    break


def _print_change(leader: Candidate | None, json_output: bool) -> bool:
    """Print one leader-change line; False if stdout is closed (``| head -1``)."""
    now = _iso_now()
    try:
        if json_output:
            echo_json({"time": now, "leader": None if leader is None else leader.leader_json()})
        else:
            line = (
                f"{now}  no leader"
                if leader is None
                else f"{now}  leader {_shown(leader.candidate_id)}  epoch "
                f"{_hex(leader.czxid)}  session {_hex(leader.session)}  node {leader.node}"
            )
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except BrokenPipeError:
        # Keep the interpreter from complaining when it flushes stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    return True


# -- resign ------------------------------------------------------------------------------------


_ResignId = Annotated[
    str | None,
    typer.Option(
        "--id",
        help="Remove this candidate (its id, or its node name) instead of the leader.",
        show_default=False,
    ),
]


@app.command("resign", help=_RESIGN_HELP)
@with_security
def resign(
    path: PathArgument,
    candidate: _ResignId = None,
    hosts: HostsOption = DEFAULT_HOSTS,
    json_output: JsonOption = False,
    timeout: TimeoutOption = 10.0,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    if candidate is not None and not candidate:
        raise UsageError("--id must not be empty")
    with _session(hosts, timeout, security, path) as client:
        before = read_election(client, path)
        if not before.exists:
            raise CliError(f"{path} does not exist: there is no election to resign from")
        if not before.candidates:
            raise CliError(f"{path} has no candidates: nobody to resign")
        target = _target(before, candidate)
        node_path = f"{path}/{target.node}"
        try:
            client.delete(node_path, version=target.version)
        except NoAuthError:
            raise CliError(
                f"no permission to delete {node_path}: authenticate (--auth "
                "SCHEME:CREDENTIAL or --sasl-user) or ask an operator with rights"
            ) from None
        except NoNodeError:
            raise CliError(
                f"{_describe(target)} left before it could be removed; nothing was deleted"
            ) from None
        except (BadVersionError, NotEmptyError):
            raise CliError(
                f"{node_path} changed while resigning it; nothing was deleted, try again"
            ) from None
        was_leader = target.node == before.candidates[0].node
        after = (
            _wait_for_leader(client, path, target.node, timeout)
            if was_leader
            else (read_election(client, path).leader)
        )
    if json_output:
        echo_json(
            {
                "path": path,
                "removed": target.leader_json(),
                "was_leader": was_leader,
                "old_leader": before.candidates[0].leader_json(),
                "new_leader": None if after is None else after.leader_json(),
            }
        )
        return
    if was_leader:
        sys.stdout.write(f"old leader: {_describe(target)}: node deleted\n")
        if after is None:
            sys.stdout.write(f"new leader: no leader yet (waited {timeout:g}s)\n")
        else:
            sys.stdout.write(f"new leader: {_describe(after)}\n")
    else:
        sys.stdout.write(f"removed candidate: {_describe(target)}: node deleted\n")
        sys.stdout.write(f"leader (unchanged): {_describe(after)}\n")


def _target(snap: Snapshot, wanted: str | None) -> Candidate:
    if wanted is None:
        assert snap.leader is not None
        return snap.leader
    matches = [c for c in snap.candidates if wanted in (c.candidate_id, c.node)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        ids = ", ".join(repr(c.candidate_id) for c in snap.candidates)
        raise CliError(f"no candidate {wanted!r} under {snap.path}; candidates: {ids}")
    nodes = ", ".join(c.node for c in matches)
    raise CliError(
        f"{len(matches)} candidates have id {wanted!r} under {snap.path} ({nodes}); "
        "pass one node name as --id"
    )


def _wait_for_leader(
    client: KazooClient, path: str, old_node: str, timeout: float
) -> Candidate | None:
    """The first leader other than ``old_node`` seen within ``timeout``, else None.

    Woken by a children watch (each read sets one: the leader rejoining or a first candidate
    appearing is a children change), bounded by the deadline.
    """
    changed = threading.Event()

    def on_children(event: WatchedEvent) -> None:
        changed.set()

    deadline = time.monotonic() + timeout
    while True:
        changed.clear()
        try:
            client.get_children(path, watch=on_children)
        except NoNodeError:
            return None  # the path itself was deleted: no election any more
        leader = read_election(client, path).leader
        if leader is not None and leader.node != old_node:
            return leader
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not changed.wait(remaining):
            return None


# -- exporter ----------------------------------------------------------------------------------

_Paths = Annotated[
    list[str],
    typer.Option(
        "--path", help="An election path to observe (repeat for more).", show_default=False
    ),
]
_Port = Annotated[
    int, typer.Option("--port", min=0, max=65535, help="HTTP port for /metrics (0: any).")
]
_Bind = Annotated[str, typer.Option("--bind", help="Address to serve on.")]
_RefreshInterval = Annotated[
    float,
    typer.Option(
        "--refresh-interval",
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds between re-reads without watches.",
    ),
]
_SessionTimeout = Annotated[
    float,
    typer.Option("--session-timeout", min=0.1, max=MAX_SECONDS, help="ZooKeeper session timeout."),
]
_LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
# --connect-timeout: the name the exporter's own command line had (docs/exporter.md).
_ConnectTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        "--connect-timeout",
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds to wait for ZooKeeper before giving up.",
    ),
]


def _paths(values: list[str]) -> list[str]:
    return [valid_path(p) for p in values]


@app.command("exporter", help=_EXPORTER_HELP)
@with_security
def exporter(
    paths: _Paths,
    hosts: HostsOption = DEFAULT_HOSTS,
    port: _Port = 8090,
    bind: _Bind = "127.0.0.1",
    refresh_interval: _RefreshInterval = _exporter.DEFAULT_REFRESH_INTERVAL,
    timeout: _ConnectTimeout = 15.0,
    session_timeout: _SessionTimeout = 10.0,
    log_level: _LogLevel = "warning",
    *,
    security: ClientSecurity,
) -> None:
    checked = _paths(paths)
    level = getattr(logging, log_level.upper(), None)
    if log_level.lower() not in ("debug", "info", "warning", "error") or not isinstance(level, int):
        raise UsageError(f"--log-level must be debug, info, warning or error; got {log_level!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kazoo").setLevel(level if level <= logging.DEBUG else logging.ERROR)
    stop = threading.Event()
    # run() waits on ``stop``; a signal handler must not take its lock, so a helper thread
    # turns the handler's flag into stop.set().
    with _Stop() as stopper:
        relay = threading.Thread(
            target=_relay, args=(stopper, stop), name="zkelect-exporter-stop", daemon=True
        )
        relay.start()
        code = _exporter.run(
            hosts,
            checked,
            port,
            bind=bind,
            refresh_interval=refresh_interval,
            connect_timeout=timeout,
            session_timeout=session_timeout,
            stop=stop,
            client_options=security.kazoo(),
        )
        stop.set()
    if code:
        raise typer.Exit(code)


def _relay(stopper: _Stop, stop: threading.Event) -> None:
    while not stopper.requested and not stop.wait(_IDLE_WAKE):
        pass
    stop.set()
