"""``zkelect status``, ``watch``, ``resign`` and ``exporter``: see and change who leads.

All of them read election paths through the one reader of an election
(zkelect/_election/reader.py, over a Session of the ZooKeeper boundary that wraps the
command's client without acquiring it: no heartbeat), which parses the node names of zkelect,
Curator LeaderLatch/LeaderSelector and kazoo Lock/Election (contenders.py) and orders them
like zkelect's candidates, so they work on any of those recipes' paths:

* ``status`` reads once, sets no watch, creates nothing;
* ``watch`` holds one watch at a time (the leader's node; the path's children only while it
  has no contender; an ``exists`` watch only while the path is missing), like the exporter,
  and prints one line per leader change;
* ``resign`` deletes one contender's node with the version it read (so it never deletes a
  node that changed meanwhile), then waits for the next leader;
* ``exporter`` runs zkelect.ops.exporter (Prometheus metrics for every observed path).

When the leader was elected: a node's ctime is when its candidate joined; it led from the
moment its predecessor's node went away, which leaves no trace. zkelect leaves one: a leader
that waited behind another leaves its leader marker (R13), whose ctime ``status`` shows; a
zkelect leader without one was elected at its join. Other recipes leave nothing: "unknown".
Where the leader runs, and whether its session is still connected: the members' ``cons``
answers (_where.py).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from zkelect._election.nodes import Contender
from zkelect._election.reader import (
    ChangedTooFast,
    Snapshot,
    read_elected,
    read_election,
    watch_always,
    watch_leader,
)
from zkelect._zookeeper.options import client_options
from zkelect._zookeeper.outcomes import BadVersion, ConnectionState, NoNode, Retryable, SessionGone
from zkelect._zookeeper.session import Session
from zkelect._zookeeper.tools import (
    credentials_were_refused,
    listen_to_states,
    sasl_was_required,
)
from zkelect.config import MAX_SECONDS
from zkelect.errors import PermissionDeniedError
from zkelect.ops import exporter as _exporter
from zkelect.ops.cli._election_view import (
    KIND_LABEL,
    describe,
    leader_json,
    leader_session_note,
    print_change,
    print_status,
    status_json,
)
from zkelect.ops.cli._where import Whereabouts, ask_members, configured_members
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    CliError,
    HostsOption,
    JsonOption,
    LogFormat,
    LogFormatOption,
    TimeoutOption,
    UsageError,
    connected_reader,
    echo_json,
    valid_path,
)
from zkelect.ops.cli.security_options import with_security
from zkelect.ops.logs import configure, secrets_of
from zkelect.security import ClientSecurity

__all__ = ["app"]

app = typer.Typer()

_IDLE_WAKE = 0.2  # how often a waiting watch checks for SIGINT/SIGTERM (seconds)

PathArgument = Annotated[
    str,
    typer.Argument(
        metavar="PATH", help="The election path, e.g. /elections/controller.", show_default=False
    ),
]

_STATUS_HELP = (
    "Show who leads an election, on which host, since when, its epoch, and its candidates.\n\n"
    "The summary: the leader's id, epoch and the number of candidates; when it was elected "
    "(zkelect leaders leave a trace of it; for other recipes only when the leader joined is "
    "known); the host its session comes from and the member it is connected to, from each "
    "member's 'cons' four-letter word. A leader whose session no member serves gets a "
    "warning on stderr: a SIGKILLed or partitioned leader keeps its node until its session "
    "expires. Then one row per candidate: its id (the node's data), role, czxid (the "
    "leader's is its fencing epoch), session, when it joined and its node; --output wide "
    "adds each candidate's host and member. Works on zkelect, Curator LeaderLatch / "
    "LeaderSelector and kazoo Election / Lock paths. Read-only: sets no watch, creates "
    "nothing.\n\n"
    "--output json (or --json) prints one object: {path, leader: {id, epoch, epoch_hex, "
    "node, session, kind, joined_ms_ago, elected_ms_ago, elected_known, elected_from, host, "
    "client, member, session_connected} or null, candidates: [{id, node, sequence, session, "
    "kind, epoch, epoch_hex, joined_ms_ago, host, client, member, session_connected}, ...], "
    "exists, ignored, sequence_wrap: {wrapped, orders_differ, string_order_first}, members: "
    "[{member, cons, detail}, ...]}; session ids are '0x...' strings, epochs decimal strings "
    "(docs/cli-inspect.md). A path that does not exist is an empty election: exit 0, a note "
    "on stderr. After ZooKeeper's sequence counter wraps (a negative sequence number), a "
    "warning on stderr says whether Curator and kazoo now elect another node "
    "(docs/safety.md)."
)
_WATCH_HELP = (
    "Print one line per leader change, the current leader first, until SIGINT/SIGTERM.\n\n"
    "Each line: the local ISO time, the leader's id, epoch (hex), session and node, or "
    "'no leader'. --json prints one object per line: {time, leader: {id, epoch, epoch_hex, "
    "node, session, kind} or null} (session '0x...', epoch a decimal string). Holds one "
    "watch (on the leader's node), so candidates joining and leaving print nothing. Exit 0 "
    "when interrupted (or after --count lines)."
)
_RESIGN_HELP = (
    "Force the leader (or the candidate --id) out by deleting its node.\n\n"
    "The delete is checked against the version read, so nothing that changed meanwhile is "
    "deleted. Prints the old leader and the new one, waiting up to --timeout for one. "
    "zkelect candidates see their node go at once, stop leading and rejoin at the back; "
    "kazoo and Curator holders do not watch their own node and may not notice (that is what "
    "fencing epochs are for). Exit 1 without permission (deleting a child needs DELETE on "
    "the election path: --auth), for an unknown --id, or an empty election. --json "
    "prints {path, removed, was_leader, old_leader, new_leader}, each candidate as in "
    "watch --json."
)
_EXPORTER_HELP = (
    "Export the leaders of election paths as Prometheus metrics, read-only.\n\n"
    "Serves http://BIND:PORT/metrics for zkelect, Curator and kazoo elections until "
    "SIGINT/SIGTERM, and prints 'listening on URL' once serving. See docs/exporter.md for "
    "the metrics."
)


# -- shared plumbing -------------------------------------------------------------------------


def _quiet_kazoo() -> None:
    """kazoo logs every failed connection attempt; our errors are one line of our own."""
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def _session(hosts: str, timeout: float, security: ClientSecurity, path: str) -> Iterator[Session]:
    """A connected (and authenticated) session to read through (reader.py), used without
    acquire(): no heartbeat, no threads of its own; failures become one-line CliErrors."""
    _quiet_kazoo()
    with contextlib.ExitStack() as stack:
        with _zk_errors(hosts, path, connecting=True):
            session = stack.enter_context(connected_reader(hosts, timeout, security))
        with _zk_errors(hosts, path):
            yield session


@contextlib.contextmanager
def _zk_errors(hosts: str, path: str, *, connecting: bool = False) -> Iterator[None]:
    """ZooKeeper's failures as one-line CliErrors. ``connecting``: while the session is
    opened, where a refusal is about the credentials, not about a permission on ``path``."""
    try:
        yield
    except ChangedTooFast as exc:
        raise CliError(str(exc)) from None
    except PermissionDeniedError as exc:
        if sasl_was_required(exc):
            raise _sasl_required(hosts) from None
        if connecting and credentials_were_refused(exc):
            raise CliError(f"ZooKeeper at {hosts} refused this session's credentials") from None
        if connecting:
            raise  # the connect's own verdict (e.g. SASL refused) says what to do
        raise CliError(
            f"no permission to read {path}: authenticate (--auth SCHEME:CREDENTIAL or "
            "--sasl-user) or ask an operator with rights"
        ) from None
    except (Retryable, SessionGone):
        raise CliError(
            f"lost the connection to ZooKeeper at {hosts} (no quorum?); try again"
        ) from None


def _sasl_required(hosts: str) -> CliError:
    return CliError(
        f"ZooKeeper at {hosts} requires SASL authentication: pass --sasl-user USER with "
        "the password in ZKELECT_SASL_PASSWORD"
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- status ------------------------------------------------------------------------------------


class Output(str, enum.Enum):
    """``status --output``: the summary and table, JSON, or the table with hosts."""

    TABLE = "table"
    JSON = "json"
    WIDE = "wide"


_OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="table (default), json (as --json) or wide (the table with each candidate's "
        "host and member).",
        show_default=False,
    ),
]


def _output(output: Output | None, json_output: bool) -> Output:
    """--output, or --json (its older spelling); both only if they agree."""
    if json_output and output not in (None, Output.JSON):
        raise UsageError(f"--json is --output json; pass --output {output.value} or --json")
    return Output.JSON if json_output else output or Output.TABLE


@app.command("status", help=_STATUS_HELP)
@with_security
def status(
    path: PathArgument,
    hosts: HostsOption = DEFAULT_HOSTS,
    json_output: JsonOption = False,
    output: _OutputOption = None,
    timeout: TimeoutOption = 10.0,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    shape = _output(output, json_output)
    with _session(hosts, timeout, security, path) as session:
        snap = read_election(session, path)
        elected = read_elected(session, path, snap.leader) if snap.leader is not None else None
        # Every member at once, each within its own short deadline (after the reads, so a
        # refused read leaves no thread behind to wait for).
        tls = security.tls.ssl_context() if security.tls else None
        asking = ask_members(hosts, timeout, tls)
        where = asking.result(configured_members(session))
    now = _now_ms()
    _status_notes(snap, where)
    if shape is Output.JSON:
        echo_json(status_json(snap, now, elected, where))
        return
    print_status(snap, now, elected, where, wide=shape is Output.WIDE)


def _status_notes(snap: Snapshot, where: Whereabouts) -> None:
    """What stderr says beside status's answer: a missing path, several recipes on one path,
    a wrapped sequence counter, a leader whose session no member serves."""
    path = snap.path
    if not snap.exists:
        sys.stderr.write(f"zkelect: note: {path} does not exist (no election there yet)\n")
    if len(snap.kinds) > 1:
        recipes = ", ".join(KIND_LABEL[kind] for kind in snap.kinds)
        sys.stderr.write(
            f"zkelect: warning: contenders of several recipes share {path} ({recipes}): "
            "each recipe elects its own leader there; give each its own path\n"
        )
    wrap_warning = snap.sequence_wrap.warning(path)
    if wrap_warning is not None:
        sys.stderr.write(f"zkelect: warning: {wrap_warning}\n")
    session_note = leader_session_note(snap, where)
    if session_note is not None:
        sys.stderr.write(f"zkelect: {session_note}\n")


# -- watch -------------------------------------------------------------------------------------


class _LeaderWatch:
    """Reads the leader and leaves exactly one watch that fires at its next change.

    Every wake-up re-reads; a line is printed only when the leader (its node and id) differs
    from the last one printed, so spurious wake-ups (a children watch that fires because a
    candidate joined, a reconnection) print nothing.
    """

    def __init__(self, session: Session, path: str) -> None:
        self._session = session
        self._path = path
        self.wake = threading.Event()
        self.connected = True
        self._watches = watch_always(self.wake.set)
        self._ignored: set[str] = set()  # persistent nodes named like contenders
        # The session is not acquired (no heartbeat): its client tells us its state.
        listen_to_states(session, self._on_state)

    def _on_state(self, state: ConnectionState) -> None:
        self.connected = state is ConnectionState.CONNECTED
        self.wake.set()  # re-read on reconnection (a new session has no watches)

    def read(self) -> Contender | None:
        return watch_leader(self._session, self._path, self._watches, self._ignored).leader


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
    with _Stop() as stop, _session(hosts, timeout, security, path) as session:
        _follow(_LeaderWatch(session, path), stop, json_output, count)


def _follow(watcher: _LeaderWatch, stop: _Stop, json_output: bool, count: int | None) -> None:
    """Print the leader, then a line at each change, until stopped (or ``count`` lines)."""
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
            except ChangedTooFast:
                raise
            except (Retryable, SessionGone):
                retry_at = time.monotonic() + 0.5  # or on reconnection, if sooner
            else:
                retry_at = None
                key = None if leader is None else (leader.name, leader.candidate_id)
                if key != last:
                    last = key
                    if not print_change(leader, json_output):
                        return  # the reader went away (a closed pipe): done
                    printed += 1
                    if count is not None and printed >= count:
                        return
        while not stop.requested and not watcher.wake.wait(_IDLE_WAKE):
            if retry_at is not None and time.monotonic() >= retry_at:
                break


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
    with _session(hosts, timeout, security, path) as session:
        before = read_election(session, path)
        target = _target(before, candidate)
        _delete(session, f"{path}/{target.name}", target)
        was_leader = target.name == before.contenders[0].name
        after = (
            _wait_for_leader(session, path, target.name, timeout)
            if was_leader
            else read_election(session, path).leader
        )
    if json_output:
        echo_json(
            {
                "path": path,
                "removed": leader_json(target),
                "was_leader": was_leader,
                "old_leader": leader_json(before.contenders[0]),
                "new_leader": None if after is None else leader_json(after),
            }
        )
        return
    if was_leader:
        sys.stdout.write(f"old leader: {describe(target)}: node deleted\n")
        if after is None:
            sys.stdout.write(f"new leader: no leader yet (waited {timeout:g}s)\n")
        else:
            sys.stdout.write(f"new leader: {describe(after)}\n")
    else:
        sys.stdout.write(f"removed candidate: {describe(target)}: node deleted\n")
        sys.stdout.write(f"leader (unchanged): {describe(after)}\n")


def _target(snap: Snapshot, wanted: str | None) -> Contender:
    """The contender to remove: the leader, or the one whose id or node is ``wanted``."""
    if not snap.exists:
        raise CliError(f"{snap.path} does not exist: there is no election to resign from")
    if snap.leader is None:
        raise CliError(f"{snap.path} has no candidates: nobody to resign")
    if wanted is None:
        return snap.leader
    matches = [c for c in snap.contenders if wanted in (c.candidate_id, c.name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        ids = ", ".join(repr(c.candidate_id) for c in snap.contenders)
        raise CliError(f"no candidate {wanted!r} under {snap.path}; candidates: {ids}")
    nodes = ", ".join(c.name for c in matches)
    raise CliError(
        f"{len(matches)} candidates have id {wanted!r} under {snap.path} ({nodes}); "
        "pass one node name as --id"
    )


def _delete(session: Session, node_path: str, target: Contender) -> None:
    """Delete ``target``'s node with the version read, so nothing that changed is deleted.
    (It is ephemeral, so it has no children to refuse the delete.)"""
    try:
        session.delete(node_path, version=target.version)
    except PermissionDeniedError:
        raise CliError(
            f"no permission to delete {node_path}: authenticate (--auth "
            "SCHEME:CREDENTIAL or --sasl-user) or ask an operator with rights"
        ) from None
    except NoNode:
        raise CliError(
            f"{describe(target)} left before it could be removed; nothing was deleted"
        ) from None
    except BadVersion:
        raise CliError(
            f"{node_path} changed while resigning it; nothing was deleted, try again"
        ) from None


def _wait_for_leader(
    session: Session, path: str, old_node: str, timeout: float
) -> Contender | None:
    """The first leader other than ``old_node`` seen within ``timeout``, else None.

    Woken by a children watch (each read sets one: the leader rejoining or a first candidate
    appearing is a children change), bounded by the deadline.
    """
    changed = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        changed.clear()
        try:
            session.children(path, watch=changed.set)
        except NoNode:
            return None  # the path itself was deleted: no election any more
        leader = read_election(session, path).leader
        if leader is not None and leader.name != old_node:
            return leader
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not changed.wait(remaining):
            return None


# -- exporter ----------------------------------------------------------------------------------

_Paths = Annotated[
    list[str],
    typer.Option(
        "--path",
        envvar="ZKELECT_EXPORTER_PATHS",
        show_envvar=True,
        help="An election path to observe (repeat for more; in the environment variable, "
        "separated by blanks).",
        show_default=False,
    ),
]
_Port = Annotated[
    int,
    typer.Option(
        "--port",
        envvar="ZKELECT_EXPORTER_PORT",
        show_envvar=True,
        min=0,
        max=65535,
        help="HTTP port for /metrics (0: any).",
    ),
]
_Bind = Annotated[
    str,
    typer.Option(
        "--bind", envvar="ZKELECT_EXPORTER_BIND", show_envvar=True, help="Address to serve on."
    ),
]
_RefreshInterval = Annotated[
    float,
    typer.Option(
        "--refresh-interval",
        envvar="ZKELECT_REFRESH_INTERVAL",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds between re-reads without watches.",
    ),
]
_SessionTimeout = Annotated[
    float,
    typer.Option(
        "--session-timeout",
        envvar="ZKELECT_SESSION_TIMEOUT",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="ZooKeeper session timeout.",
    ),
]
_LogLevel = Annotated[
    str,
    typer.Option(
        "--log-level",
        envvar="ZKELECT_LOG_LEVEL",
        show_envvar=True,
        help="debug, info, warning or error.",
    ),
]
# --connect-timeout: the name the exporter's own command line had (docs/exporter.md).
_ConnectTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        "--connect-timeout",
        envvar="ZKELECT_TIMEOUT",
        show_envvar=True,
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
    log_format: LogFormatOption = LogFormat.TEXT,
    *,
    security: ClientSecurity,
) -> None:
    checked = _paths(paths)
    level = getattr(logging, log_level.upper(), None)
    if log_level.lower() not in ("debug", "info", "warning", "error") or not isinstance(level, int):
        raise UsageError(f"--log-level must be debug, info, warning or error; got {log_level!r}")
    # Timestamped text or JSON lines, no secret in any (docs/logging.md); --log-level then
    # says how much of the exporter's own lines (and at debug, kazoo's) to show.
    configure(
        log_format=log_format.value,
        verbosity=2 if level <= logging.DEBUG else 0,
        prefix="zkelect exporter",
        secrets=secrets_of(security),
    )
    logging.getLogger("zkelect").setLevel(level)
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
            client_options=client_options(security),
        )
        stop.set()
    if code:
        raise typer.Exit(code)


def _relay(stopper: _Stop, stop: threading.Event) -> None:
    while not stopper.requested and not stop.wait(_IDLE_WAKE):
        pass
    stop.set()
