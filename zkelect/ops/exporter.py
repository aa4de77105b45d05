"""A read-only observer that exports who leads any election, as Prometheus metrics.

Why it exists: operators need one dashboard and one set of alerts for every election on an
ensemble, including those run by Java services on Apache Curator and Python services on plain
kazoo, which export nothing of the kind. This observer reads the election path the way the
candidates do (through zkelect/_election/reader.py, the one reader of an election:
contenders.py parses the three recipes' node names, ordered exactly as zkelect's candidates
order them) and reports the leader's id, its epoch (the czxid of its node),
the number of contenders and how often the leader changed.

What it never does, so that observing cannot change anyone's election:

* It creates nothing: not a node, not the election path. A missing path is reported as "no
  leader" and watched with ``exists``.
* It holds at most one watch per path: a data watch on the current leader's node, or, only
  while the path has no contenders, one children watch on the path (or an ``exists`` watch
  while the path is missing) to learn when one appears. A data watch on the leader wakes this
  observer once per leader change, as every candidate's predecessor watch does; it does not
  set a children watch while contenders exist, so candidates joining and leaving do not wake
  it. Two races are left. If contenders join between its empty read and the read that sets
  the children watch, that watch stays until the next change of the children (it fires once
  and is not set again; likely when the first candidate creates the path and then its node).
  If the path is created between a failed read and the ``exists`` that watches for it, that
  ``exists`` watch stays on the path node until the path's data changes or the path is
  deleted. Both cost the observer a wake-up, never anyone's election.
* It never deletes or writes.

The candidate count is read whenever the leader changes (a watch fires) and at a periodic
refresh (``refresh_interval``, 15 s by default) that reads without setting watches; a count
that changes without a leader change is therefore seen up to one interval late. That is the
price of not holding a children watch, which would wake the observer on every join and leave.

Connection loss: watches survive a short disconnection (kazoo sets them again when it
reconnects within the session), and every path is re-read on reconnect anyway. When the
session expires the watches are gone; they are set again, and every path re-read, as soon as
kazoo has a new session. While disconnected the metrics keep the last observed values and
``zkelect_observer_connected`` is 0.

Run it as ``zkelect exporter --hosts H --path P [--path P2 ...] --port N``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from prometheus_client import REGISTRY, CollectorRegistry

from zkelect._election.reader import Snapshot, WatchKind, watch_leader
from zkelect._zookeeper.outcomes import ConnectionState, Watcher
from zkelect._zookeeper.session import Session
from zkelect._zookeeper.tools import (
    KazooClient,
    check_client,
    client_state,
    connected_session,
    listen_to_states,
    read_only_session,
)
from zkelect.config import check_seconds, validate_connect_string, validate_path
from zkelect.errors import ConfigurationError, PermissionDeniedError, ZkElectError
from zkelect.ops._exporter_http import exporter_endpoints
from zkelect.ops._exporter_metrics import (
    MAX_LEADER_ID_CHARS,
    MetricsCollector,
    ObservedElection,
)
from zkelect.ops._http_serving import HttpEndpoints

__all__ = ["MAX_LEADER_ID_CHARS", "ElectionExporter", "ObservedElection", "run"]

log = logging.getLogger("zkelect.ops.exporter")

DEFAULT_REFRESH_INTERVAL = 15.0
DEFAULT_REQUEST_TIMEOUT = 10.0

_RETRY_MIN, _RETRY_MAX = 0.2, 5.0
_PREFIX = "zkelect exporter"  # of run()'s one-line errors


# A watch the exporter holds on a path, as (kind, znode).
_Watch = tuple[WatchKind, str]


@dataclass
class _PathState:
    """The worker's bookkeeping for one path; guarded by the exporter's condition."""

    view: ObservedElection
    # Watches we hold. Recorded *before* the request that sets one is sent, because its
    # event may arrive before the reply does.
    armed: set[_Watch] = field(default_factory=set)
    due: float = 0.0  # when to read this path next (monotonic clock)
    ignored: set[str] = field(default_factory=set)  # persistent nodes named like contenders
    failures: int = 0


class _PathWatches:
    """The exporter's reader.Watches for one path: a watch only while the path holds none
    that tells of its next leader change (the module docstring), recorded in ``armed``."""

    def __init__(self, exporter: ElectionExporter, path: str) -> None:
        self._exporter = exporter
        self._path = path

    def watcher(self, kind: WatchKind, znode: str) -> Watcher | None:
        exporter, path, watch = self._exporter, self._path, (kind, znode)
        with exporter._cond:
            armed = exporter._states[path].armed
            if watch == (WatchKind.DATA, path):
                # An ``exists`` watch on the path node helps only while the path is missing.
                if watch in armed:
                    return None
            elif any(entry != (WatchKind.DATA, path) for entry in armed):
                return None
            armed.add(watch)
        return lambda: exporter._fired(path, watch)

    def unset(self, kind: WatchKind, znode: str) -> None:
        with self._exporter._cond:
            self._exporter._states[self._path].armed.discard((kind, znode))


class ElectionExporter:
    """Observe election paths read-only and export their leaders; see the module docstring.

    ``client`` is a KazooClient that the caller starts and stops (the exporter never does);
    it may be shared with elections. ``registry`` defaults to prometheus_client's global
    REGISTRY; two exporters cannot share one registry (their metric names collide), so watch
    several paths with one exporter instead. Metrics, all labelled ``election`` = the path:

    * ``zkelect_observed_has_leader`` 1 while the path has a leader, else 0;
    * ``zkelect_observed_leader{leader_id}`` 1, one series for the current leader only
      (``leader_id`` is the leader node's data as UTF-8, cut at 256 characters);
    * ``zkelect_observed_leader_epoch`` the czxid of the leader's node (of the last leader
      while there is none; 0 before any);
    * ``zkelect_observed_candidates`` the number of contenders;
    * ``zkelect_observed_leader_changes_total`` new leaders seen since the exporter started;
    * ``zkelect_observed_sequence_wrapped`` 1 while a contender's sequence number is
      negative (ZooKeeper's counter wrapped), else 0;
    * ``zkelect_observer_connected`` (no label) 1 while the exporter's session is connected.

    Threads: one daemon worker thread reads ZooKeeper; kazoo's threads only record events.
    """

    def __init__(
        self,
        client: KazooClient,
        paths: Iterable[str],
        registry: CollectorRegistry | None = None,
        *,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_client(client)
        if isinstance(paths, (str, bytes)) or not isinstance(paths, Iterable):
            raise ConfigurationError(f"paths must be a list of election paths, got {paths!r}")
        checked = list(dict.fromkeys(validate_path(p) for p in paths))
        if not checked:
            raise ConfigurationError("give at least one election path to observe")
        check_seconds("refresh_interval", refresh_interval)
        check_seconds("request_timeout", request_timeout)
        if not callable(clock):
            raise ConfigurationError(f"clock must be a callable returning seconds, got {clock!r}")
        self._client = client
        self._paths = checked
        self._registry = REGISTRY if registry is None else registry
        self._interval = float(refresh_interval)
        self._request_timeout = float(request_timeout)
        self._clock = clock
        self._cond = threading.Condition()
        self._states = {p: _PathState(ObservedElection(p)) for p in checked}
        self._connected = False
        self._started = False
        self._stopping = False
        self._worker: threading.Thread | None = None
        self._collector = MetricsCollector(self.snapshot, lambda: self.connected)
        # Reads go through a session of the boundary, not acquired: no heartbeat or threads,
        # and not the shared one of Session.for_client, whose config belongs to elections.
        self._session: Session = read_only_session(client, request_timeout)
        self._stop_listening: Callable[[], None] | None = None
        self._watches = {p: _PathWatches(self, p) for p in checked}

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    @property
    def client(self) -> KazooClient:
        """The caller's client the exporter reads through (its session holds the watches)."""
        return self._client

    @property
    def registry(self) -> CollectorRegistry:
        """Where the metrics are registered (serve it, or ``generate_latest`` it)."""
        return self._registry

    def start(self, timeout: float | None = None) -> ElectionExporter:
        """Register the metrics and start observing.

        Returns once every path has been read, at most ``timeout`` later (default: the
        request timeout), or at once if the client is not connected: paths are read as soon
        as it connects. Raises ConfigurationError if the registry already has these metrics
        (another exporter on it) or if this exporter was started or stopped before.
        """
        with self._cond:
            if self._started or self._stopping:
                raise ConfigurationError(
                    "this ElectionExporter was already started; build a new one to start again"
                )
            self._started = True
        try:
            self._registry.register(self._collector)
        except ValueError as exc:
            raise ConfigurationError(
                f"the registry already exports these metrics ({exc}); one exporter per "
                "registry: give it all the paths, or pass another CollectorRegistry"
            ) from None
        self._stop_listening = listen_to_states(self._session, self._on_state)
        with self._cond:
            self._connected = client_state(self._session) is ConnectionState.CONNECTED
        self._worker = threading.Thread(target=self._run, name="zkelect-exporter", daemon=True)
        self._worker.start()
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    all(s.view.observed for s in self._states.values())
                    or self._stopping
                    or not self._connected
                ),
                self._request_timeout if timeout is None else timeout,
            )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop observing and unregister the metrics. Idempotent.

        Watches already set stay on the servers until they fire once (ZooKeeper 3.8 clients
        cannot remove them); they then reach a stopped exporter, which ignores them.
        """
        with self._cond:
            if not self._started or self._stopping:
                self._stopping = True
                return
            self._stopping = True
            self._cond.notify_all()
        if self._stop_listening is not None:
            self._stop_listening()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(self._request_timeout if timeout is None else timeout)
        with contextlib.suppress(KeyError):  # the registry's owner may have cleared it
            self._registry.unregister(self._collector)

    def __enter__(self) -> ElectionExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading the state ------------------------------------------------------------------

    def snapshot(self) -> dict[str, ObservedElection]:
        """Path -> what was last observed there (immutable values, safe to keep)."""
        with self._cond:
            return {path: state.view for path, state in self._states.items()}

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    @property
    def running(self) -> bool:
        """Its reading thread runs: started, not stopped, not died (what ``/livez`` asks)."""
        worker = self._worker
        return worker is not None and worker.is_alive() and not self._stopping

    def refresh(self) -> None:
        """Ask for an immediate re-read of every path (without new watches where one is set)."""
        with self._cond:
            for state in self._states.values():
                state.due = 0.0
            self._cond.notify_all()

    # -- kazoo's threads: record and hand over, never I/O --------------------------------------

    def _on_state(self, state: ConnectionState) -> None:
        with self._cond:
            self._connected = state is ConnectionState.CONNECTED
            if state is ConnectionState.LOST:
                for path_state in self._states.values():
                    path_state.armed.clear()  # the session and all its watches are gone
            if self._connected:
                for path_state in self._states.values():
                    path_state.due = 0.0  # read again: anything may have changed meanwhile
            self._cond.notify_all()

    def _fired(self, path: str, watch: _Watch) -> None:
        """A watch fired: forget it and read its path again (the watch is used up). Also
        called when kazoo drops every watcher (session expired, or the client closed)."""
        with self._cond:
            if self._stopping:
                return
            state = self._states[path]
            if watch not in state.armed:
                return  # an old one, already re-read
            state.armed.discard(watch)
            state.due = 0.0
            self._cond.notify_all()

    # -- the worker -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = self._clock()
                    due = [p for p, s in self._states.items() if s.due <= now]
                    if self._connected and due:
                        for path in due:
                            # Set before reading: a watch firing during the read sets it back
                            # to 0, and that must not be overwritten by this pass.
                            self._states[path].due = now + self._interval
                        break
                    wait = None
                    if self._connected:
                        wait = max(0.0, min(s.due for s in self._states.values()) - now)
                    self._cond.wait(wait)
            for path in due:
                if self._stopping:
                    return
                self._refresh_safely(path)

    def _refresh_safely(self, path: str) -> None:
        try:
            self._refresh(path)
        except PermissionDeniedError:
            self._failed(
                path,
                "permission denied (NoAuth): give the exporter's client read access to the "
                "election path and its children",
                self._interval,
            )
        except Exception as exc:
            with self._cond:
                failures = self._states[path].failures
            delay = min(_RETRY_MAX, self._interval, _RETRY_MIN * 2**failures)
            self._failed(path, f"{type(exc).__name__}: {exc}".rstrip(": "), delay)
        else:
            with self._cond:
                self._states[path].failures = 0

    def _failed(self, path: str, error: str, retry_in: float) -> None:
        log.debug("zkelect exporter: reading %s failed: %s", path, error)
        with self._cond:
            state = self._states[path]
            state.failures += 1
            state.view = replace(state.view, error=error)
            state.due = min(state.due, self._clock() + retry_in)
            self._cond.notify_all()

    def _refresh(self, path: str) -> None:
        """Read ``path``'s leader; set the path's one watch if it has none (module docstring)."""
        ignored = self._states[path].ignored  # the worker's alone
        self._record(path, watch_leader(self._session, path, self._watches[path], ignored))

    def _record(self, path: str, snapshot: Snapshot) -> None:
        with self._cond:
            state = self._states[path]
            old = state.view
            view = state.view = old.after(snapshot)
            self._cond.notify_all()
        if (view.node, view.leader_id) != (old.node, old.leader_id):
            if view.has_leader:
                log.info(
                    "zkelect exporter: %s is led by %r (epoch %d, node %s)",
                    path,
                    view.leader_id,
                    view.epoch,
                    view.node,
                )
            else:
                log.info("zkelect exporter: %s has no leader", path)
        # Once per change of the verdict, not per read: the state lasts until the path is
        # recreated (or 2**31 more creates bring the counter back to positive numbers).
        flags = (view.sequence_wrapped, view.orders_differ)
        if flags != (old.sequence_wrapped, old.orders_differ):
            warning = snapshot.sequence_wrap.warning(path)
            if warning is not None:
                log.warning("zkelect exporter: %s", warning)
            else:
                log.info(
                    "zkelect exporter: %s: no negative sequence number any more; zkelect's, "
                    "Curator's and kazoo's orders agree",
                    path,
                )


# -- the command -------------------------------------------------------------------------------


def run(
    hosts: str,
    paths: Sequence[str],
    port: int,
    *,
    bind: str = "127.0.0.1",
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
    connect_timeout: float = 15.0,
    session_timeout: float = 10.0,
    registry: CollectorRegistry | None = None,
    stop: threading.Event | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> int:
    """Connect, observe ``paths`` and serve /metrics, /livez, /readyz and /healthz
    (_exporter_http.py) on ``bind:port`` until ``stop`` is set.

    ``client_options``: more KazooClient arguments, e.g. ``zkelect.kazoo_options(tls=...)``.

    For a CLI to call: prints ``listening on http://ADDR:PORT`` once serving; returns 0 after
    a clean stop, 1 when ZooKeeper cannot be reached or the port cannot be bound (one line on
    ``err``), 2 for invalid arguments. ``registry`` defaults to a fresh one.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        _check_run_arguments(hosts, paths, port, refresh_interval, connect_timeout, session_timeout)
    except ConfigurationError as exc:
        print(f"{_PREFIX}: error: {exc}", file=err)
        return 2
    stop = threading.Event() if stop is None else stop
    registry = CollectorRegistry() if registry is None else registry
    with contextlib.ExitStack() as stack:  # stops and closes the client last
        try:
            session = stack.enter_context(
                connected_session(
                    hosts,
                    connect_timeout=connect_timeout,
                    session_timeout=session_timeout,
                    client_options=client_options,
                )
            )
        except ZkElectError as exc:  # no quorum in time, TLS refused, SASL refused
            print(f"{_PREFIX}: error: {exc}", file=err)
            return 1
        exporter = ElectionExporter(
            session.client, list(paths), registry, refresh_interval=refresh_interval
        ).start()
        stack.callback(exporter.stop)
        server = _serve_or_say_why(bind, port, exporter, err)
        if server is None:
            return 1
        stack.callback(server.stop)
        print(f"listening on {server.url}", file=out, flush=True)
        stop.wait()
        return 0


def _check_run_arguments(
    hosts: str,
    paths: Sequence[str],
    port: int,
    refresh_interval: float,
    connect_timeout: float,
    session_timeout: float,
) -> None:
    """Raise ConfigurationError for the first of run()'s arguments that is not valid."""
    validate_connect_string(hosts)
    for path in paths:
        validate_path(path)
    if not paths:
        raise ConfigurationError("give at least one --path")
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"--port must be in 0..65535, got {port}")
    for name, value in (
        ("--refresh-interval", refresh_interval),
        ("--connect-timeout", connect_timeout),
        ("--session-timeout", session_timeout),
    ):
        check_seconds(name, value)


def _serve_or_say_why(
    bind: str, port: int, exporter: ElectionExporter, err: TextIO
) -> HttpEndpoints | None:
    """The exporter's endpoints (_exporter_http.py) served on ``bind:port`` by a daemon
    thread from now on, or None after one line on ``err`` when the port cannot be bound."""
    server = exporter_endpoints(bind, port, exporter)
    try:
        server.start()
    except OSError as exc:
        print(f"{_PREFIX}: error: cannot serve on {bind}:{port}: {exc.strerror}", file=err)
        return None
    return server
