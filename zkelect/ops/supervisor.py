"""Run a command only while this process leads an election: the logic of ``zkelect run``.

One ``Supervisor`` is one candidate. When it is elected it starts the command (the *child*)
in a process group of its own, with the fencing token in its environment::

    ZKELECT_EPOCH   the epoch, decimal (the czxid of this candidate's node)
    ZKELECT_PATH    the election path
    ZKELECT_ID      this candidate's id
    ZKELECT_TOKEN   str(token): 'zk1:<epoch>:<session>:<id>:<path>' (FencingToken.parse)

The order of things is the point of this module:

* Leadership lost (node deleted, session lost or suspended, lease ran out): the child's
  whole process group gets SIGTERM at once, SIGKILL after the grace period, before the
  supervisor does anything else. Then it keeps campaigning and starts the child again
  when it is elected again. A loss we did not choose cuts the grace period short: the
  child is SIGKILLed no later than the earliest moment the servers could elect a successor
  (``Leadership.stop_by``): at once if our node is gone, at the end of the lease's margin
  after the lease ran out or the connection was suspended. Two leaders' children must never
  run at once, whatever --grace says; it keeps its full meaning for the stops we choose.
* SIGTERM/SIGINT/SIGHUP to the supervisor: stop the child first (TERM, grace, KILL), then
  leave the election (the candidate node is deleted, so a successor is elected at once),
  then exit 0. A second signal skips what is left of the grace period.
* SIGKILL to the supervisor: nothing can run, so the kernel does it: the child is started
  with PR_SET_PDEATHSIG(SIGKILL) (Linux), so it dies with the supervisor. The session
  expires on the servers after the session timeout and a successor is elected.
* A planned switchover (``zkelect switchover``, ``Election.request_switchover``, or a
  candidate of higher ``--priority``) asks this leader to drain: the child is stopped as for
  a chosen stop (SIGTERM, --grace, SIGKILL, reaped) *before* the library deletes our node,
  so the successor's child never overlaps ours. Then it keeps campaigning, re-queued at the
  back, and starts the child again if it is elected again.
* The child exits on its own while leading: ``OnExit.RELEASE`` (default) leaves the
  election and exits with the child's code (128+N if a signal N ended it);
  ``OnExit.RESTART`` starts it again after a short backoff, while still leading.

How the child is started, signalled and reaped is _child.py's. Everything happens on the
thread that calls ``run()``: callbacks, the child reaper and
signal handlers only put events on one queue, so there is one order of events and no
lock. One record per transition goes to the ``zkelect.run`` logger at INFO, its event
named as the library's are (zkelect/_logs.py: ``child_started``, ``child_signalled``, ...);
``zkelect run`` writes them as timestamped lines (zkelect/ops/logs.py).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import queue
import shlex
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from zkelect._logs import emit
from zkelect.config import MAX_SECONDS, ElectionConfig, check_seconds
from zkelect.errors import ConfigurationError, ZkElectError
from zkelect.fencing.leadership import Leadership, describe_epoch
from zkelect.ops._child import (
    Child,
    describe_exit,
    exit_status,
    group_alive,
    signal_name,
    start_child,
)
from zkelect.security import ClientSecurity

if TYPE_CHECKING:
    from zkelect._election.election import Election
    from zkelect.metrics import PrometheusRecorder
    from zkelect.ops.http import StatusServer

__all__ = [
    "OnExit",
    "Supervisor",
    "SupervisorError",
    "SupervisorOptions",
]

log = logging.getLogger("zkelect.run")

#: Signals that stop a supervisor cleanly (child first, then the election).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class OnExit(str, enum.Enum):
    """What to do when the child exits on its own while this candidate leads."""

    RELEASE = "release"  # leave the election and exit with the child's exit code
    RESTART = "restart"  # start it again (after a short backoff) while still leading


#: Seconds between SIGTERM and SIGKILL for the stops a candidate chooses (``--grace``).
DEFAULT_GRACE = 10.0
#: Seconds to wait for a SIGKILLed child to be reaped (only the kernel's D state delays it).
_STOP_REAP_WAIT = 10.0
#: Kept before a switchover's deadline for a SIGKILLed child to be reaped (a drain whose
#: deadline is shorter than --grace; normally reaping takes milliseconds).
_DRAIN_REAP = 0.5
#: Beyond a whole child stop, how long the loop may be silent before /livez fails.
_LOOP_SLACK = 20.0


class SupervisorError(ZkElectError):
    """An operational failure of the supervisor itself (the election gave up, say)."""


@dataclass(frozen=True)
class SupervisorOptions:
    hosts: str
    path: str
    command: Sequence[str]
    candidate_id: str | None = None
    #: Seconds between SIGTERM and SIGKILL to the child's process group (cut short after a
    #: loss this candidate did not choose: ``Leadership.stop_by``).
    grace: float = DEFAULT_GRACE
    on_exit: OnExit = OnExit.RELEASE
    session_timeout: float = 10.0
    connect_timeout: float = 15.0
    #: Serve /metrics, /healthz, /leader on this port (0: any free port); None: no server.
    http_port: int | None = None
    http_bind: str = "127.0.0.1"
    #: --on-exit restart: first delay, doubled for each quick exit in a row, up to the max.
    restart_delay: float = 0.5
    restart_max_delay: float = 10.0
    #: A child that ran at least this long resets the backoff.
    restart_reset_after: float = 10.0
    #: Digest credentials, election-path ACL, TLS and SASL for the candidate's session.
    security: ClientSecurity | None = None
    #: A connected candidate of higher priority is handed leadership by a drained switchover
    #: once connected for ``priority_settle`` s, at most once per ``priority_interval`` s
    #: (ElectionConfig's, which checks them).
    priority: int = 0
    priority_settle: float = 10.0
    priority_interval: float = 60.0

    def __post_init__(self) -> None:
        if not self.command or not all(isinstance(arg, str) for arg in self.command):
            raise ConfigurationError("no command to run: give it after '--'")
        for name in ("grace", "restart_delay", "restart_max_delay", "restart_reset_after"):
            check_seconds(name, getattr(self, name), allow_zero=True)
        object.__setattr__(self, "on_exit", OnExit(self.on_exit))


class _Interrupted(BaseException):
    """A stop signal arrived before the event loop runs (while connecting)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_Event = tuple[str, Any]


class Supervisor:
    """Runs ``options.command`` only while this candidate leads ``options.path``.

    ``run()`` blocks until a stop signal, or until the child exits on its own with
    ``OnExit.RELEASE``; it returns the exit code (0 after a signal, the child's code after
    a release) and raises ZkElectError subclasses for operational failures (no quorum at
    start, the election gave up, the HTTP port cannot be bound).
    """

    def __init__(
        self,
        options: SupervisorOptions,
        *,
        env: Mapping[str, str] | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.options = options
        self._base_env = dict(os.environ if env is None else env)
        self._handle_signals = handle_signals
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._hurry = threading.Event()  # a second stop signal: skip the rest of the grace
        self._signals = 0
        self._phase = "starting"  # then "looping", then "stopping"
        self._looped_at = time.monotonic()  # the loop's last turn (/livez: _loop_problem)
        self._joined = False
        self._lead: Leadership | None = None
        self._child: Child | None = None
        self._quick_exits = 0
        self._restart_at: float | None = None
        self._drained: Leadership | None = None  # drained for a switchover: no child till lost
        self._closing = threading.Event()  # the loop is done: nobody will answer a drain
        self.config = ElectionConfig(
            session_timeout=options.session_timeout,
            connect_timeout=options.connect_timeout,
            priority=options.priority,
            priority_settle=options.priority_settle,
            priority_interval=options.priority_interval,
            # A whole chosen stop (grace, then the reap wait): the library's deadline must
            # never delete our node while the child may still run.
            drain_timeout=min(MAX_SECONDS, options.grace + _STOP_REAP_WAIT),
        )
        self.election: Election | None = None
        self.server: StatusServer | None = None
        self._recorder: PrometheusRecorder | None = None

    # -- output ---------------------------------------------------------------------------------

    @property
    def candidate_id(self) -> str:
        election = self.election
        if election is not None:
            return election.candidate_id
        return self.options.candidate_id or "?"

    def say(self, message: str, event: str | None = None, **fields: Any) -> None:
        """One line of this candidate's story: ``event`` names it (zkelect/_logs.py)."""
        lead = self._lead
        if lead is not None:
            fields.setdefault("epoch", lead.epoch)
            fields.setdefault("session", lead.token.session_id)
        emit(
            event,
            "%s",
            message,
            logger=log,
            election=self.options.path,
            candidate=self.candidate_id,
            **fields,
        )

    # -- the whole life of a candidate ----------------------------------------------------------

    def run(self) -> int:
        from zkelect._election.election import Election

        options = self.options
        if options.http_port is not None:
            from zkelect.metrics import PrometheusRecorder

            self._recorder = PrometheusRecorder(supervisor=True)  # with the zkelect_child_* series
        self.election = election = Election(
            options.hosts,
            options.path,
            candidate_id=options.candidate_id,
            config=self.config,
            on_elected=lambda lead: self._events.put(("elected", lead)),
            on_revoked=lambda reason: self._events.put(("revoked", reason)),
            on_draining=self._on_draining,
            # Observed (a watch on the leader's node) so that a follower's /leader names it.
            on_leader_change=(lambda info: None) if options.http_port is not None else None,
            metrics=self._recorder,
            **(options.security.election_kwargs() if options.security is not None else {}),
        )
        with self._signal_handlers():
            try:
                try:
                    self._start_http(election)
                    election.start()
                    self._joined = True
                    self._phase = "looping"  # from now on a signal is an event in the queue
                except _Interrupted as stop:
                    self._phase = "stopping"
                    name = signal.Signals(stop.signum).name
                    self.say(f"{name} while joining: leaving", "stopping", signal=name)
                    return 0
                node = election.node or "(node pending: ZooKeeper has not answered yet)"
                session = election.session.session_id
                self.say(
                    f"joined {options.path} as {node}"
                    + (f" (session {session:#x})" if session is not None else ""),
                    "joined",
                    node=election.node,
                    session=session,
                )
                self._say_grace_limit(election)
                return self._loop()
            finally:
                self._phase = "stopping"
                try:
                    if self._child is not None:
                        self._stop_child("")
                finally:
                    self._release_drains()  # the child is gone: nothing left to drain
                    election.stop()
                    if self._joined:
                        self.say(f"left the election {options.path}", "left")
                    if self.server is not None:
                        self.server.stop()
                    if self._recorder is not None:
                        self._recorder.unregister()

    def _say_grace_limit(self, election: Election) -> None:
        """Say once when --grace will be cut short on an involuntary loss (see the module
        docstring): the lease ends its margin before the servers could elect a successor."""
        within = election.session.lease_figures().stop_within
        if self.options.grace > within:
            self.say(
                f"note: --grace {self.options.grace:g}s applies when this candidate stops; "
                f"after a loss it did not choose, the child is SIGKILLed within {within:.2g}s "
                "(a lease that ran out, a suspended connection: then the servers could elect "
                "a successor) or at once (its node deleted, its session lost)"
            )

    def _start_http(self, election: Election) -> None:
        options = self.options
        if options.http_port is None:
            return
        from zkelect.ops.http import StatusServer

        server = StatusServer(options.http_bind, options.http_port, elections=[election])
        try:
            server.start()
        except OSError as exc:
            raise SupervisorError(
                f"cannot serve HTTP on {options.http_bind}:{options.http_port}: "
                f"{exc.strerror or exc}"
            ) from None
        self.server = server
        server.add_liveness_check("supervisor", self._loop_problem)
        self.say(f"serving /metrics /livez /readyz /leader on {server.url}", "serving")

    def _loop_problem(self) -> str | None:
        """Why the supervisor's loop looks stuck (``/livez``), or None. A turn may rightly
        take a whole child stop (--grace, then up to 10 s for SIGKILL to be reaped), so only
        a loop silent for longer than that is reported: then restarting the process helps."""
        if self._phase != "looping":
            return None
        silent = time.monotonic() - self._looped_at
        limit = self.options.grace + _STOP_REAP_WAIT + _LOOP_SLACK
        if silent <= limit:
            return None
        return f"the supervisor's loop has not turned for {silent:.0f}s (limit {limit:.0f}s)"

    def _loop(self) -> int:
        while True:
            self._looped_at = time.monotonic()
            timeout = 1.0
            if self._restart_at is not None:
                timeout = max(0.0, min(timeout, self._restart_at - time.monotonic()))
            try:
                kind, value = self._events.get(timeout=timeout)
            except queue.Empty:
                kind, value = "tick", None
            # Leadership lost: the child goes first, before any other event is looked at.
            lead = self._lead
            if lead is not None and lead.lost.is_set():
                self._lost(lead)
            if kind == "signal":
                name = signal.Signals(value).name
                what = "stopping the child, then " if self._child is not None else ""
                self.say(f"{name} received: {what}leaving the election", "stopping", signal=name)
                return 0
            if kind == "elected":
                self._elected(value)
            elif kind == "revoked":
                if value == "failed":
                    self._failed()
            elif kind == "draining":
                self._drain(*value)
            elif kind == "exited":
                code = self._exited(value)
                if code is not None:
                    return code
            if (
                self._restart_at is not None
                and time.monotonic() >= self._restart_at
                and self._child is None
            ):
                self._restart_at = None
                lead = self._lead
                if lead is not None and not lead.lost.is_set() and lead is not self._drained:
                    code = self._start(lead)
                    if code is not None:
                        self._events.put(("exited", code))  # under the --on-exit policy

    def _elected(self, lead: Leadership) -> None:
        current = self._lead
        if current is not None and current is not lead:
            self._lost(current)  # cannot happen (revoked comes first); never run two
        self._lead = lead
        epoch = lead.epoch
        self.say(
            f"elected: epoch={epoch} ({describe_epoch(epoch)}) node={lead.node_path}",
            "elected",
            node=lead.node_path,
        )
        if lead.lost.is_set():
            self._lost(lead)
            return
        self._quick_exits = 0
        code = self._start(lead)
        if code is not None:
            # The command cannot even start: under RELEASE there is nothing to lead for.
            self._events.put(("exited", code))

    def _start(self, lead: Leadership) -> int | None:
        """Start the child for ``lead``; an exit code if it could not start."""
        token = lead.token
        env = {
            **self._base_env,
            "ZKELECT_EPOCH": str(token.epoch),
            "ZKELECT_PATH": token.path,
            "ZKELECT_ID": token.candidate_id,
            "ZKELECT_TOKEN": str(token),
        }
        try:
            proc = start_child(self.options.command, env)
        except OSError as exc:
            code = 126 if isinstance(exc, PermissionError) else 127
            self.say(f"child could not start: {exc.strerror or exc}", "child_failed", code=code)
            return code
        self._child = Child(proc, token.epoch, self._child_exited)
        if self._recorder is not None:
            self._recorder.child_started()
        self.say(
            f"child started: pid={proc.pid} {shlex.join(self.options.command)}",
            "child_started",
            pid=proc.pid,
        )
        if lead.lost.is_set():  # lost while it was forked: stop it at once
            self._lost(lead)
        return None

    def _child_exited(self, child: Child) -> None:
        self._events.put(("exited", child))  # the reaper thread

    def _exited(self, value: Child | int) -> int | None:
        """The child exited on its own (or could not start: ``value`` is a code)."""
        if isinstance(value, Child):
            if value is not self._child:
                return None  # already stopped and reported by _stop_child
            self._child = None
            returncode = value.proc.returncode
            ran = time.monotonic() - value.started
            self._report_exit(value)
            if group_alive(value.pgid):  # it left processes behind in its group
                self._terminate(value, "its process group lives on")
        else:
            returncode, ran = value, 0.0
        lead = self._lead
        if lead is None or lead.lost.is_set():
            return None  # not leading any more: the loss is handled on its own
        if self.options.on_exit is OnExit.RELEASE:
            code = exit_status(returncode)
            self.say(f"releasing leadership (--on-exit release); will exit {code}", "releasing")
            return code
        if ran >= self.options.restart_reset_after:
            self._quick_exits = 0
        delay = min(
            self.options.restart_max_delay, self.options.restart_delay * 2**self._quick_exits
        )
        self._quick_exits += 1
        self._restart_at = time.monotonic() + delay
        self.say(f"restarting the child in {delay:g}s (--on-exit restart)", "child_restarting")
        return None

    def _lost(self, lead: Leadership) -> None:
        """Leadership ``lead`` is gone: stop the child (if it runs) before anything else."""
        if self._lead is lead:
            self._lead = None
        if self._drained is lead:
            self._drained = None
        self._restart_at = None
        reason = lead.reason
        self.say(
            f"revoked ({reason})",
            "revoked",
            reason=reason,
            epoch=lead.epoch,
            session=lead.token.session_id,
        )
        if self._child is not None:
            self._stop_child("", kill_by=lead.stop_by)

    # -- a planned switchover: drain, then the library deletes our node -----------------------

    def _on_draining(self, lead: Leadership, deadline: float) -> None:
        """The election's callback thread: this leader hands over. Our node is deleted
        when this returns, so it waits for the loop to have stopped the child, at most until
        ``deadline`` (time.monotonic; the library deletes the node then anyway)."""
        done = threading.Event()
        self._events.put(("draining", (lead, deadline, done)))
        # Put first, then look: _release_drains sets _closing before it empties the queue,
        # so either it finds this event or this sees _closing.
        if not self._closing.is_set():
            done.wait(max(0.0, deadline - time.monotonic()))

    def _drain(self, lead: Leadership, deadline: float, done: threading.Event) -> None:
        """Stop the child as for a chosen stop (TERM, --grace, KILL, reaped), then let the
        library delete our node (``done``)."""
        try:
            if lead is not self._lead or lead.lost.is_set():
                return  # lost meanwhile: _lost stopped the child already
            self._drained = lead
            self._restart_at = None  # no restart while handing over
            began, child = time.monotonic(), self._child
            left = deadline - began
            self.say(
                "draining for a switchover: "
                + (f"stopping child pid={child.pid}, " if child is not None else "")
                + f"then our node is deleted (deadline in {left:.1f}s)",
                "draining",
            )
            if child is not None:
                self._stop_child("", kill_by=self._drain_kill_by(deadline))
            seconds = time.monotonic() - began
            late = time.monotonic() > deadline
            self.say(
                f"drained in {seconds:.2f}s"
                + (" (past the deadline: our node was deleted meanwhile)" if late else "")
                + ": our node is deleted now; campaigning again",
                "drained",
                seconds=round(seconds, 3),
                cut_short=late,
            )
        finally:
            done.set()

    def _drain_kill_by(self, deadline: float) -> float | None:
        """When the child must be SIGKILLed at the latest so that it is reaped before the
        library's deadline deletes our node; None while --grace fits (drain_timeout is grace
        plus the reap wait: only a shorter deadline than asked gets here)."""
        kill_by = deadline - _DRAIN_REAP
        return kill_by if kill_by < time.monotonic() + self.options.grace - _DRAIN_REAP else None

    def _release_drains(self) -> None:
        """The loop is done: answer every drain still queued (their child is stopped), and
        any asked later at once (_on_draining)."""
        self._closing.set()
        while True:
            try:
                kind, value = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "draining":
                value[2].set()

    def _stop_child(self, why: str, kill_by: float | None = None) -> None:
        """Stop the running child (see ``_terminate``) and forget it."""
        child = self._child
        if child is None:
            return
        self._child = None
        self._terminate(child, why, kill_by)
        if child.done.is_set():
            self._report_exit(child)
        else:  # pragma: no cover - a process stuck in the kernel
            self.say(f"child pid={child.pid} did not exit even after SIGKILL", pid=child.pid)

    def _report_exit(self, child: Child) -> None:
        """The child's exit in the log and the metrics (zkelect_child_*)."""
        returncode = child.proc.returncode
        if self._recorder is not None:
            self._recorder.child_exited(exit_status(returncode), time.time())
        self.say(
            f"child exited: pid={child.pid} {describe_exit(returncode)}",
            "child_exited",
            pid=child.pid,
            code=exit_status(returncode),
            signal=signal_name(-returncode) if returncode < 0 else None,
        )

    def _terminate(self, child: Child, why: str, kill_by: float | None = None) -> None:
        """SIGTERM to the child's process group, SIGKILL after the grace period (or at
        ``kill_by``, a ``time.monotonic`` instant, if that comes first); returns once the
        child was reaped and its group is empty (or after a last bounded wait)."""
        if child.finished():
            if why:
                self.say(why)
            return
        prefix = f"{why}: " if why else ""
        if kill_by is not None and kill_by <= time.monotonic():
            # A successor may be leading already (our node is gone): no time to be polite.
            child.signal_group(signal.SIGKILL)
            self._say_signalled(
                child,
                signal.SIGKILL,
                f"{prefix}SIGKILL to the process group of child pid={child.pid} at once (a "
                "successor may already lead; --grace is for the stops this candidate chooses)",
            )
            self._say_cut_short(0.0)
        else:
            self._term_then_kill(child, prefix, kill_by)
        deadline = time.monotonic() + _STOP_REAP_WAIT  # only the D state delays a SIGKILL
        while not self._wait_finished(child, deadline) and time.monotonic() < deadline:
            pass

    def _term_then_kill(self, child: Child, prefix: str, kill_by: float | None) -> None:
        """SIGTERM now, SIGKILL at the end of the grace period or at ``kill_by``."""
        child.signal_group(signal.SIGTERM)  # first: before printing, before anything
        child.signal_group(signal.SIGCONT)  # a stopped process handles SIGTERM only awake
        grace, now = self.options.grace, time.monotonic()
        deadline, after = now + grace, f"{grace:g}s"
        if kill_by is not None and kill_by < deadline:
            deadline = kill_by
            after = (
                f"{kill_by - now:.1f}s (--grace {grace:g}s cut short: from then on the "
                "servers could elect a successor)"
            )
        self._say_signalled(
            child,
            signal.SIGTERM,
            f"{prefix}stopping child pid={child.pid}: SIGTERM to its process group, "
            f"SIGKILL after {after}",
        )
        if deadline < now + grace:
            self._say_cut_short(deadline - now)
        while not self._hurry.is_set() and not self._wait_finished(child, deadline):
            if time.monotonic() >= deadline:
                break
        if child.finished():
            return
        child.signal_group(signal.SIGKILL)
        left = "" if child.done.is_set() else f"pid={child.pid} "
        self._say_signalled(
            child,
            signal.SIGKILL,
            f"child {left}still running after SIGTERM: SIGKILL to its process group",
        )

    def _say_signalled(self, child: Child, sig: signal.Signals, message: str) -> None:
        self.say(message, "child_signalled", pid=child.pid, signal=sig.name)

    def _say_cut_short(self, within: float) -> None:
        grace = self.options.grace
        if grace > within:
            self.say(
                f"grace cut short: SIGKILL within {within:.1f}s, not --grace {grace:g}s (a "
                "loss this candidate did not choose)",
                "grace_cut_short",
            )

    @staticmethod
    def _wait_finished(child: Child, deadline: float) -> bool:
        """Wait a little (at most until ``deadline``); whether the child has finished."""
        step = max(0.0, min(0.02, deadline - time.monotonic()))
        if child.done.is_set():
            time.sleep(step)  # reaped; what is left of its group has no event to wait on
        else:
            child.done.wait(step)
        return child.finished()

    def _failed(self) -> None:
        election = self.election
        assert election is not None
        try:
            election.wait_for_leadership(0)
        except ZkElectError as exc:
            raise SupervisorError(f"the election gave up: {exc}") from None

    # -- signals ------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._phase == "starting":
            raise _Interrupted(signum)  # unwinds election.start(): nothing runs yet
        if self._signals > 1 or self._phase == "stopping":
            self._hurry.set()
        self._events.put(("signal", signum))

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous: dict[int, Any] = {}
        for sig in STOP_SIGNALS:
            current = signal.getsignal(sig)
            if current is signal.SIG_IGN:
                continue  # nohup / a background job: keep ignoring it, as the user asked
            previous[sig] = current
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
