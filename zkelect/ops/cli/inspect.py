"""``zkelect status``, ``watch`` and ``resign``: see and change who leads.

All of them read election paths through the one reader of an election
(zkelect/_election/reader.py, over a Session of the ZooKeeper boundary that wraps the
command's client without acquiring it: no heartbeat), which parses the node names of zkelect,
Curator LeaderLatch/LeaderSelector and kazoo Lock/Election (contenders.py) and orders them
like zkelect's candidates, so they work on any of those recipes' paths:

* ``status`` reads once, sets no watch, creates nothing; it shows a pending switchover (the
  request node ``PATH/zkelect-switchover``, zkelect/_election/switchover.py) too;
* ``watch`` holds one watch at a time on the leader (the leader's node; the path's children
  only while it has no contender; an ``exists`` watch only while the path is missing), like
  the exporter, and one ``exists`` watch on the switchover request; it prints one line per
  leader change, and one when a request appears, changes state or goes;
* ``resign`` deletes one contender's node with the version it read (so it never deletes a
  node that changed meanwhile), then waits for the next leader (:func:`force_out`, which
  ``zkelect switchover --force`` falls back to);

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
from dataclasses import dataclass, replace
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
from zkelect._election.switchover import REQUEST_NODE, SwitchoverRequest
from zkelect._zookeeper.outcomes import (
    BadVersion,
    ConnectionState,
    NoNode,
    Retryable,
    SessionGone,
    Watcher,
)
from zkelect._zookeeper.session import Session
from zkelect._zookeeper.tools import (
    credentials_were_refused,
    listen_to_states,
    sasl_was_required,
)
from zkelect.errors import PermissionDeniedError
from zkelect.ops.cli._election_view import (
    KIND_LABEL,
    PendingSwitchover,
    describe,
    leader_json,
    leader_session_note,
    print_change,
    print_status,
    print_switchover_change,
    status_json,
)
from zkelect.ops.cli._where import Whereabouts, ask_members, configured_members
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    CliError,
    HostsOption,
    JsonOption,
    TimeoutOption,
    UsageError,
    connected_reader,
    echo_json,
    valid_path,
)
from zkelect.ops.cli.security_options import with_security
from zkelect.security import ClientSecurity

__all__ = [
    "IDLE_WAKE",
    "Forced",
    "PathArgument",
    "StopSignals",
    "app",
    "force_out",
    "print_forced",
    "read_pending",
    "reader_session",
    "zk_errors",
]

app = typer.Typer()

IDLE_WAKE = 0.2  # how often a waiting watch checks for SIGINT/SIGTERM (seconds)

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
    "expires. A pending switchover is one more line: 'switchover pending: to ID (NODE), "
    "STATE, asked by WHO AGE ago'. Then one row per candidate: its id (the node's data), "
    "role, czxid (the leader's is its fencing epoch), session, when it joined and its node; "
    "--output wide adds each candidate's host, member and priority. Works on zkelect, "
    "Curator LeaderLatch / "
    "LeaderSelector and kazoo Election / Lock paths. Read-only: sets no watch, creates "
    "nothing.\n\n"
    "--output json (or --json) prints one object: {path, leader: {id, epoch, epoch_hex, "
    "node, session, kind, priority, joined_ms_ago, elected_ms_ago, elected_known, "
    "elected_from, host, client, member, session_connected} or null, candidates: [{id, node, "
    "sequence, session, kind, epoch, epoch_hex, priority, joined_ms_ago, host, client, "
    "member, session_connected}, ...], switchover: {id, state, to, to_id, from, reason, by, "
    "requested_at, timeout, deadline, refusal, retry_after, readable, session, "
    "requested_ms_ago} or null, exists, ignored, sequence_wrap: {wrapped, orders_differ, "
    "string_order_first}, members: [{member, cons, detail}, ...]}; session ids are '0x...' "
    "strings, epochs decimal strings "
    "(docs/cli-inspect.md). A path that does not exist is an empty election: exit 0, a note "
    "on stderr. After ZooKeeper's sequence counter wraps (a negative sequence number), a "
    "warning on stderr says whether Curator and kazoo now elect another node "
    "(docs/safety.md)."
)
_WATCH_HELP = (
    "Print one line per leader change, the current leader first, until SIGINT/SIGTERM; and "
    "one when a switchover request appears, changes state or goes.\n\n"
    "Each line: the local ISO time, the leader's id, epoch (hex), session and node, or "
    "'no leader'; or 'switchover STATE to ID (node NODE) asked by WHO', 'switchover ended'. "
    "--json prints one object per line: {time, leader: {id, epoch, epoch_hex, node, session, "
    "kind} or null} (session '0x...', epoch a decimal string), or {time, event: "
    "'switchover', state (or 'ended'), switchover (as in status --json, or null), leader}. "
    "Holds one watch on the leader's node and one on the switchover request, so candidates "
    "joining and leaving print nothing. Exit 0 when interrupted (or after --count leader "
    "lines)."
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


# -- shared plumbing -------------------------------------------------------------------------


def _quiet_kazoo() -> None:
    """kazoo logs every failed connection attempt; our errors are one line of our own."""
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)


@contextlib.contextmanager
def reader_session(
    hosts: str, timeout: float, security: ClientSecurity, path: str
) -> Iterator[Session]:
    """A connected (and authenticated) session to read through (reader.py), used without
    acquire(): no heartbeat, no threads of its own; failures become one-line CliErrors."""
    _quiet_kazoo()
    with contextlib.ExitStack() as stack:
        with zk_errors(hosts, path, connecting=True):
            session = stack.enter_context(connected_reader(hosts, timeout, security))
        with zk_errors(hosts, path):
            yield session


@contextlib.contextmanager
def zk_errors(hosts: str, path: str, *, connecting: bool = False) -> Iterator[None]:
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
    with reader_session(hosts, timeout, security, path) as session:
        snap = read_election(session, path)
        elected = read_elected(session, path, snap.leader) if snap.leader is not None else None
        pending = read_pending(session, path) if snap.exists else None
        # Every member at once, each within its own short deadline (after the reads, so a
        # refused read leaves no thread behind to wait for).
        tls = security.tls.ssl_context() if security.tls else None
        asking = ask_members(hosts, timeout, tls)
        where = asking.result(configured_members(session))
    now = _now_ms()
    _status_notes(snap, where)
    if shape is Output.JSON:
        echo_json(status_json(snap, now, elected, where, pending))
        return
    print_status(snap, now, elected, where, wide=shape is Output.WIDE, pending=pending)


def read_pending(
    session: Session, path: str, watch: Watcher | None = None
) -> PendingSwitchover | None:
    """The switchover request of ``path`` (its node ``PATH/zkelect-switchover``), or None.
    With ``watch``: an ``exists`` watch is left on the request's path, which fires when a
    request appears, changes state or goes."""
    node = f"{path}/{REQUEST_NODE}"
    if watch is not None and session.exists(node, watch=watch) is None:
        return None
    try:
        data, stat = session.get(node)
    except NoNode:
        return None  # gone meanwhile (the watch, if any, fires for it)
    return PendingSwitchover(SwitchoverRequest.decode(data), stat.ephemeral_owner, stat.ctime)


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
    """Reads the leader and leaves exactly one watch that fires at its next change, and
    the switchover request with one ``exists`` watch on its path.

    Every wake-up re-reads the leader (the request only when its watch fired); a line is
    printed only when the leader (its node and id) or the request (its id and state) differs
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
        self._request_armed = False  # our watch on the request is set and has not fired
        self._pending: PendingSwitchover | None = None
        # The session is not acquired (no heartbeat): its client tells us its state.
        listen_to_states(session, self._on_state)

    def _on_state(self, state: ConnectionState) -> None:
        self.connected = state is ConnectionState.CONNECTED
        self._request_armed = False
        self.wake.set()  # re-read on reconnection (a new session has no watches)

    def _request_changed(self) -> None:
        self._request_armed = False
        self.wake.set()

    def read(self) -> Contender | None:
        return watch_leader(self._session, self._path, self._watches, self._ignored).leader

    def read_switchover(self) -> PendingSwitchover | None:
        """The request as last read, re-read (leaving a new watch) once its watch fired."""
        if not self._request_armed:
            self._request_armed = True  # before the read: a watch that fires during it wins
            try:
                self._pending = read_pending(self._session, self._path, self._request_changed)
            except BaseException:
                self._request_armed = False
                raise
        return self._pending


class _Printed:
    """What ``watch`` printed last: a line is printed when what it reads differs."""

    def __init__(self) -> None:
        self.leader: object = object()  # nothing printed yet
        self.switchover: tuple[str, str] | None = None  # no request
        self.leader_lines = 0


class StopSignals:
    """SIGINT/SIGTERM set a flag (a handler must not take locks the main thread may hold)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
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
            "--count",
            min=1,
            help="Exit 0 after this many leader lines (switchover lines do not count; "
            "default: until interrupted).",
        ),
    ] = None,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    with StopSignals() as stop, reader_session(hosts, timeout, security, path) as session:
        _follow(_LeaderWatch(session, path), stop, json_output, count)


def _follow(watcher: _LeaderWatch, stop: StopSignals, json_output: bool, count: int | None) -> None:
    """Print the leader, then a line at each change, until stopped (or ``count`` leader
    lines)."""
    printed = _Printed()
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
                if not _print_changes(watcher, printed, json_output, count):
                    return  # enough lines, or the reader went away (a closed pipe)
            except ChangedTooFast:
                raise
            except (Retryable, SessionGone):
                retry_at = time.monotonic() + 0.5  # or on reconnection, if sooner
            else:
                retry_at = None
        while not stop.requested and not watcher.wake.wait(IDLE_WAKE):
            if retry_at is not None and time.monotonic() >= retry_at:
                break


def _print_changes(
    watcher: _LeaderWatch, printed: _Printed, json_output: bool, count: int | None
) -> bool:
    """Read the leader and the request; print what changed (the leader first). False once
    done: ``count`` leader lines printed, or stdout closed."""
    leader = watcher.read()
    key = None if leader is None else (leader.name, leader.candidate_id)
    if key != printed.leader:
        printed.leader = key
        if not print_change(leader, json_output):
            return False
        printed.leader_lines += 1
        if count is not None and printed.leader_lines >= count:
            return False
    pending = watcher.read_switchover()
    switch_key = None if pending is None else pending.key
    if switch_key != printed.switchover:
        printed.switchover = switch_key
        return print_switchover_change(pending, leader, json_output)
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
    with reader_session(hosts, timeout, security, path) as session:
        forced = force_out(session, path, candidate, timeout)
    if json_output:
        echo_json(
            {
                "path": path,
                "removed": leader_json(forced.removed),
                "was_leader": forced.was_leader,
                "old_leader": leader_json(forced.before),
                "new_leader": None if forced.after is None else leader_json(forced.after),
            }
        )
        return
    print_forced(forced, timeout)


@dataclass(frozen=True)
class Forced:
    """What :func:`force_out` did: deleted the node of ``removed``; ``before``, the leader
    then; ``after``, the leader after it (None: none appeared in time)."""

    removed: Contender
    before: Contender
    after: Contender | None

    @property
    def was_leader(self) -> bool:
        return self.removed.name == self.before.name


def force_out(
    session: Session,
    path: str,
    candidate: str | None,
    timeout: float,
    *,
    leader_node: str | None = None,
) -> Forced:
    """Delete the node of the leader (or of ``candidate``: an id or a node name) with the
    version read, then read who leads (waiting up to ``timeout`` for a new leader when it
    was the leader). ``leader_node``: only if the leader's node is still that one, else a
    CliError and nothing is deleted."""
    before = read_election(session, path)
    target = _target(before, candidate)
    if leader_node is not None and target.name != leader_node:
        raise CliError(
            f"the leader of {path} changed meanwhile (now {describe(target)}); nothing was forced"
        )
    _delete(session, f"{path}/{target.name}", target)
    forced = Forced(target, before.contenders[0], None)
    if forced.was_leader:
        return replace(forced, after=_wait_for_leader(session, path, target.name, timeout))
    return replace(forced, after=read_election(session, path).leader)


def print_forced(forced: Forced, timeout: float) -> None:
    """``resign``'s lines: the old leader and the new one (or the candidate removed)."""
    if forced.was_leader:
        sys.stdout.write(f"old leader: {describe(forced.removed)}: node deleted\n")
        if forced.after is None:
            sys.stdout.write(f"new leader: no leader yet (waited {timeout:g}s)\n")
        else:
            sys.stdout.write(f"new leader: {describe(forced.after)}\n")
    else:
        sys.stdout.write(f"removed candidate: {describe(forced.removed)}: node deleted\n")
        sys.stdout.write(f"leader (unchanged): {describe(forced.after)}\n")


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
