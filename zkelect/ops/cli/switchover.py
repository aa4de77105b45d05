"""``zkelect switchover``: hand leadership to a chosen candidate, the leader's work drained first.

The command asks through the library's requester (zkelect/_election/switchover_request.py):
one ephemeral request node ``PATH/zkelect-switchover``, owned by this command's session, that
the leader and the candidates move through its states (docs/switchover.md). So a command that
dies, or is interrupted (SIGINT, SIGTERM), takes its request with it: its session closes.

What it prints: a line per state of the request it sees, then who leads; ``--json`` one
object. A refusal is one line ``zkelect: switchover: <why>``, exit 1. ``--force`` falls back,
only when the leader did not answer, to what ``zkelect resign`` does (inspect.force_out):
the leader's node deleted, undrained.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import typer

from zkelect._election.nodes import Contender, LeaderInfo
from zkelect._election.switchover import State, SwitchoverRequest
from zkelect._election.switchover_request import SwitchoverResult, request_switchover
from zkelect._zookeeper.session import Session
from zkelect.config import MAX_SECONDS
from zkelect.errors import (
    LeaderNotAnsweringError,
    PermissionDeniedError,
    SwitchoverError,
    SwitchoverInterruptedError,
)
from zkelect.ops.cli._election_view import hex_id, info_json, request_json, shown
from zkelect.ops.cli.common import (
    DEFAULT_HOSTS,
    CliError,
    HostsOption,
    JsonOption,
    UsageError,
    echo_json,
    valid_path,
)
from zkelect.ops.cli.inspect import Forced, PathArgument, force_out, print_forced, reader_session
from zkelect.ops.cli.security_options import with_security
from zkelect.security import ClientSecurity

__all__ = ["Progress", "app", "done_line", "outcome_json", "step_line"]

app = typer.Typer()

_HELP = (
    "Hand leadership to a chosen candidate (--to), or to the next in line, with the "
    "leader's work drained first.\n\n"
    "Writes one request to ZooKeeper (the node PATH/zkelect-switchover, owned by this "
    "command's session); the leader checks it, the candidates ahead of the target step back "
    "in order, the leader drains its work (zkelect run: SIGTERM, up to --grace, SIGKILL; "
    "the library: on_draining) and only then deletes its node; the target leads with a "
    "higher epoch. Prints a line per step it sees, then '<id> leads PATH (node N, epoch E) "
    "after X s; old leader drained in Y s'. Exit 0 once the target leads; 1 with one line "
    "'zkelect: switchover: <why>' when it did not happen (an unknown --to, a switchover "
    "already in progress, the leader refusing or not answering within --timeout, the "
    "target never ready, leadership moving another way): the request is withdrawn and, "
    "unless the drain had begun, nothing changed. 2 for usage errors. Every candidate must "
    "run zkelect with switchovers (a Curator LeaderLatch leader never answers; one ahead of "
    "the target never steps back).\n\n"
    "--force: when the leader does not answer within --timeout, force it out as 'zkelect "
    "resign' does: its node is deleted UNDRAINED and the next in line (not necessarily "
    "--to) leads; exit 0 once someone does (waiting up to --timeout again), else 1.\n\n"
    "--json prints one object: {path, result ('handed_over', 'forced' or 'failed'), "
    "leader, previous (each {id, epoch, epoch_hex, node, session, sequence, priority} or "
    "null), seconds, drain_seconds, steps: [{seconds, state, ...the request's fields}], "
    "error: {type, message} or null} (docs/cli-inspect.md)."
)

_To = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="The candidate to hand over to: its id, or its node name (when several share "
        "the id). Default: the next in line.",
        show_default=False,
    ),
]
_SwitchoverTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        envvar="ZKELECT_SWITCHOVER_TIMEOUT",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds the switchover may take, from the request to the new leader "
        "(the drain included).",
    ),
]
_ConnectTimeout = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        envvar="ZKELECT_TIMEOUT",
        show_envvar=True,
        min=0.1,
        max=MAX_SECONDS,
        help="Seconds to wait for ZooKeeper before giving up.",
    ),
]
_Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="If the leader does not answer within --timeout, delete its node as 'zkelect "
        "resign' does: undrained, and the next in line (not necessarily --to) leads.",
    ),
]


@app.command("switchover", help=_HELP)
@with_security
def switchover(
    path: PathArgument,
    to: _To = None,
    switchover_timeout: _SwitchoverTimeout = 30.0,
    force: _Force = False,
    hosts: HostsOption = DEFAULT_HOSTS,
    json_output: JsonOption = False,
    timeout: _ConnectTimeout = 10.0,
    *,
    security: ClientSecurity,
) -> None:
    path = valid_path(path)
    if to is not None and not to.strip():
        raise UsageError(
            "--to must not be empty: pass a candidate's id or node name, or leave --to out "
            "for the next in line"
        )
    progress = Progress(json_output)
    try:
        with _sigterm_interrupts(), reader_session(hosts, timeout, security, path) as session:
            try:
                result = _ask(session, path, to, switchover_timeout, progress)
            except LeaderNotAnsweringError as exc:
                if not force:
                    _fail(path, progress, exc)
                _force(session, path, switchover_timeout, progress, exc)
                return
            except SwitchoverError as exc:
                _fail(path, progress, exc)
    except KeyboardInterrupt:
        # The session is closed by now, and the request with it.
        sys.stderr.write("zkelect: switchover: interrupted; no request is left behind\n")
        raise typer.Exit(130) from None
    if json_output:
        echo_json(outcome_json(path, "handed_over", progress, result))
        return
    progress.say(step_line("done", progress.seconds()))
    progress.say(done_line(path, result))


def _ask(
    session: Session, path: str, to: str | None, timeout: float, progress: Progress
) -> SwitchoverResult:
    by = f"zkelect-cli pid {os.getpid()} on {socket.gethostname()}"
    progress.started = time.monotonic()  # steps count from the request, as result.seconds
    try:
        return request_switchover(
            session, path, to=to, timeout=timeout, by=by, on_step=progress.step
        )
    except PermissionDeniedError:
        raise CliError(
            f"switchover: no permission to ask for a switchover of {path} (it takes READ "
            "and CREATE on the path): authenticate (--auth SCHEME:CREDENTIAL or "
            "--sasl-user) or ask an operator with rights"
        ) from None


def _fail(path: str, progress: Progress, error: SwitchoverError) -> NoReturn:
    """The refusal as one line (and with --json, the outcome object too): exit 1."""
    if progress.json_output:
        leader = error.leader if isinstance(error, SwitchoverInterruptedError) else None
        now = leader if isinstance(leader, LeaderInfo) else None
        echo_json(outcome_json(path, "failed", progress, error=error, leader=now))
    raise CliError(f"switchover: {error}") from None


def _force(
    session: Session, path: str, timeout: float, progress: Progress, error: SwitchoverError
) -> None:
    """--force after the leader did not answer: resign's forced delete of the leader's node
    (the one that did not answer, if it still leads), then who leads."""
    sys.stderr.write(f"zkelect: note: switchover: {error}; --force: forcing the leader out\n")
    forced = force_out(session, path, None, timeout, leader_node=progress.leader_node)
    if progress.json_output:
        echo_json(outcome_json(path, "forced", progress, error=error, forced=forced))
    else:
        progress.say(
            "forced: leader's node deleted undrained; the next in line (not necessarily --to) leads"
        )
        print_forced(forced, timeout)
    if forced.after is None:
        raise CliError(
            f"switchover: forced: the leader's node was deleted but nobody led {path} within "
            f"{timeout:g}s"
        )


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM as SIGINT (a KeyboardInterrupt: one line, exit 130), so that the
    command ends its session on the way out and its request goes with it at once, rather
    than when the session expires."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- output --------------------------------------------------------------------------------


class Progress:
    """The request's states as the requester sees them (``step``, called on any thread),
    printed as they come unless ``json_output``, and kept for the JSON's ``steps``."""

    def __init__(self, json_output: bool) -> None:
        self.json_output = json_output
        self.started = time.monotonic()
        self.steps: list[tuple[float, SwitchoverRequest]] = []
        self._lock = threading.Lock()
        self._closed = False  # stdout went away: the switchover goes on regardless

    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def leader_node(self) -> str | None:
        """The leader's node as the request named it (its first step), if one was seen."""
        with self._lock:
            return self.steps[0][1].frm if self.steps else None

    def step(self, request: SwitchoverRequest) -> None:
        seconds = self.seconds()
        with self._lock:
            self.steps.append((seconds, request))
        if not self.json_output:
            self.say(step_line(request, seconds))

    def say(self, line: str) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except BrokenPipeError:
                self._closed = True

    def steps_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"seconds": round(s, 3), **request_json(r)} for s, r in self.steps]


def step_line(step: SwitchoverRequest | str, seconds: float) -> str:
    """One line per step: ``+0.012s accepted: ...``; ``step`` "done" once the target leads."""
    if isinstance(step, str):
        return f"+{seconds:.3f}s {step}"
    request = step
    target = f"{shown(request.to_id)} (node {request.to})"
    if request.state is State.REQUESTED:
        detail = f"hand over from node {request.frm} to {target}, asked by {shown(request.by)}"
    elif request.state is State.ACCEPTED:
        detail = f"the leader (node {request.frm}) checked the target"
    elif request.state is State.READY:
        detail = f"{target} is next in line, right behind the leader"
    elif request.state is State.DRAINING:
        left = "" if request.deadline is None else f", deadline in {_until(request.deadline)}"
        detail = f"the leader drains its work{left}"
    else:
        detail = shown(request.refusal or "no reason given", 200)
        if request.retry_after:
            detail += f" (retry after {request.retry_after:g}s)"
    return f"+{seconds:.3f}s {request.state.value}: {detail}"


def _until(deadline: float) -> str:
    return f"{max(0.0, deadline - time.time()):.1f}s"


def done_line(path: str, result: SwitchoverResult) -> str:
    """ "<id> leads PATH (node N, epoch E) after X s; old leader drained in Y s"."""
    leader = result.leader
    drained = (
        "the old leader's drain was not seen"
        if result.drain_seconds is None
        else f"old leader drained in {result.drain_seconds:.2f} s"
    )
    return (
        f"{shown(leader.candidate_id)} leads {path} (node {leader.node}, epoch "
        f"{hex_id(leader.epoch)}) after {result.seconds:.2f} s; {drained}"
    )


def outcome_json(
    path: str,
    outcome: str,
    progress: Progress,
    result: SwitchoverResult | None = None,
    *,
    error: SwitchoverError | None = None,
    leader: LeaderInfo | None = None,
    forced: Forced | None = None,
) -> dict[str, Any]:
    """``--json``'s object: a switchover's ``result``, a forced resign's ``forced``, or a
    failure (``error``; ``leader``, who leads now when the error knows)."""
    previous: Contender | LeaderInfo | None = None
    drain: float | None = None
    seconds = progress.seconds()
    if result is not None:
        leader, previous, seconds, drain = (
            result.leader, result.previous, result.seconds, result.drain_seconds,
        )  # fmt: skip
    elif forced is not None:
        previous = forced.before
        leader = None if forced.after is None else LeaderInfo.of(forced.after)
    if isinstance(previous, Contender):
        previous = LeaderInfo.of(previous)
    steps = progress.steps_json()
    if result is not None:
        steps.append({"seconds": round(progress.seconds(), 3), "state": "done"})
    return {
        "path": path,
        "result": outcome,
        "leader": None if leader is None else info_json(leader),
        "previous": None if previous is None else info_json(previous),
        "seconds": round(seconds, 3),
        "drain_seconds": None if drain is None else round(drain, 3),
        "steps": steps,
        "error": None if error is None else {"type": type(error).__name__, "message": str(error)},
    }
