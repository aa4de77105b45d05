"""The checks behind ``zkelect doctor``: a deployment against the classic pitfalls.

Two halves, kept apart so the rules are testable without servers:

* **Gathering** (:func:`observe`): four-letter words (``srvr``, ``conf``; ``mntr`` when
  ``srvr`` is refused) to every member of the connect string, in parallel, each bounded by
  ``timeout``; one kazoo session (unless the words already prove that no member serves) to
  read ``/zookeeper/config``, the election path's ACL and its children with its stat; name
  resolution of the members to tell whether they run on this host. Nothing is written.
* **Judging** (``check_*`` and :func:`run_checks`): pure functions from what was seen to
  one :class:`CheckResult` per check (``ok`` / ``warn`` / ``fail``, the reason, the fix).

Thresholds (all in this module, named):

* ensemble size: 2 voting members fail (any single failure stops the ensemble: worse than
  one server), other even sizes warn (they tolerate no more failures than one member
  fewer), a single server warns (no fault tolerance);
* quorum: fewer than ``size // 2 + 1`` voting members serving fails; a quorum with members
  down warns;
* session timeout: outside ``[minSessionTimeout, maxSessionTimeout]`` warns (the servers
  negotiate it into that range);
* lease: below :data:`MIN_REALISTIC_LEASE` seconds warns; a session timeout below
  ``2 * syncLimit * tickTime`` warns; a lease margin (``timeout * ratio``) below
  ``(syncLimit + 1) * tickTime`` warns, a session shorter than 2 ticks warns (see
  :func:`check_lease` for why); the figure is the lease the candidates apply;
* grace: a ``zkelect run --grace`` longer than the lease's margin warns: it is cut short
  after a loss the candidate did not choose (:func:`check_grace`);
* co-location: any member on this host warns;
* election path: ``world:anyone`` holding CREATE, DELETE or ADMIN fails; a missing path
  warns;
* sequence wrap: string order (Curator's, kazoo's) electing another node than zkelect's
  order fails; a negative sequence number (a contender's, or the next one) warns; fewer
  than :data:`SEQUENCE_WRAP_MARGIN` numbers left before the counter wraps warns;
* four-letter words: any of ``srvr``/``conf`` refused by a member warns.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import math
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoAuthError, NoNodeError
from kazoo.security import Permissions

from zkelect._election.contenders import contender_order
from zkelect._election.nodes import sequence_counter, sequence_wrap
from zkelect._zookeeper.connect import start_client
from zkelect._zookeeper.lease import lease_figures
from zkelect.config import split_connect_string
from zkelect.errors import ConnectionFailedError, ZkElectError
from zkelect.ops.supervisor import DEFAULT_GRACE
from zkelect.security import ClientSecurity

__all__ = [
    "CHECK_NAMES",
    "DANGEROUS_WORLD_PERMS",
    "MIN_REALISTIC_LEASE",
    "SEQUENCE_WRAP_MARGIN",
    "AclView",
    "CheckResult",
    "MemberView",
    "Observation",
    "SequenceView",
    "ServerEntry",
    "ServerSettings",
    "Status",
    "check_colocation",
    "check_ensemble_size",
    "check_four_letter_words",
    "check_grace",
    "check_lease",
    "check_path_acl",
    "check_quorum",
    "check_sequence_wrap",
    "check_session_timeout",
    "diagnose",
    "format_perms",
    "negotiated_timeout_ms",
    "observe",
    "parse_conf",
    "parse_membership",
    "parse_mode",
    "run_checks",
]

#: A lease shorter than this (seconds) revokes leadership on ordinary hiccups: GC pauses,
#: VM steal, a slow fsync on the servers, a congested link all last a second or two.
MIN_REALISTIC_LEASE = 2.0
#: Permissions that make an election path "open" when ``world:anyone`` holds them: CREATE
#: (anyone may join, and lead), DELETE (anyone may delete the leader's node), ADMIN
#: (anyone may change the ACL, and so grant themselves the rest).
DANGEROUS_WORLD_PERMS = Permissions.CREATE | Permissions.DELETE | Permissions.ADMIN
#: Sequence numbers left before ZooKeeper's counter wraps at 2**31 below which doctor warns:
#: 2**28 (about 268 million, an eighth of the range). The counter counts the children ever
#: created under the path; at 100 joins a second, far more churn than an election sees, that
#: is a month to plan the path's re-creation, and an election that joins a few times a day
#: never comes near it (it would need about 1.9 billion joins first).
SEQUENCE_WRAP_MARGIN = 1 << 28
#: The words doctor needs; ``mntr`` stands in for ``srvr`` when only it is allowed.
NEEDED_WORDS = ("srvr", "conf")
WHITELIST_FIX = (
    "add 4lw.commands.whitelist=srvr,conf,mntr,ruok (or *) to every member's zoo.cfg and restart it"
)
_RETRY_FIX = "bring a quorum back (see the quorum check), then run doctor again"
_RECREATE = (
    "recreate the path, which restarts its counter at 0: stop every candidate, delete the "
    "path (zkCli: delete PATH, which fails while any child is left), create it again with "
    "the same ACL (getAcl PATH first) and start the candidates (docs/safety.md, 'Ordering "
    "across the sequence wrap')"
)
_SEQ_LIMIT = 1 << 31  # ZooKeeper's counter is a signed 32-bit int: it wraps after 2**31 - 1

CHECK_NAMES = (
    "ensemble-size",
    "quorum",
    "session-timeout",
    "lease",
    "grace",
    "co-location",
    "election-path",
    "sequence-wrap",
    "four-letter-words",
)

_VOTING_MODES = ("leader", "follower", "standalone")
_NOT_WHITELISTED = "is not executed because it is not in the whitelist"
_NOT_SERVING = "This ZooKeeper instance is not currently serving requests"
_log = logging.getLogger(__name__)


class Status(str, enum.Enum):
    """The verdict of one check; ordered ok < warn < fail."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return ("ok", "warn", "fail").index(self.value)


@dataclass(frozen=True)
class CheckResult:
    check: str
    status: Status
    reason: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": self.status.value,
            "reason": self.reason,
            "fix": self.fix,
        }


def _worst(*statuses: Status) -> Status:
    return max(statuses, key=lambda s: s.rank, default=Status.OK)


def _secs(ms: float) -> str:
    return f"{ms / 1000:g} s"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ServerEntry:
    """One ``server.N=host:peer:election[:role][;client]`` line of the membership."""

    sid: int
    host: str
    role: str = "participant"

    @property
    def voting(self) -> bool:
        return self.role != "observer"


@dataclass(frozen=True)
class ServerSettings:
    """What ``conf`` tells about one member (None: not reported)."""

    tick_time_ms: int | None = None
    min_session_timeout_ms: int | None = None
    max_session_timeout_ms: int | None = None
    sync_limit: int | None = None
    secure_client_port: int | None = None
    membership: tuple[ServerEntry, ...] = ()

    @property
    def session_bounds_ms(self) -> tuple[int, int] | None:
        """The negotiable range; ZooKeeper's defaults (2 and 20 ticks) where unset."""
        tick = self.tick_time_ms
        low = self.min_session_timeout_ms
        high = self.max_session_timeout_ms
        if low is None or low < 0:
            low = None if tick is None else 2 * tick
        if high is None or high < 0:
            high = None if tick is None else 20 * tick
        return None if low is None or high is None else (low, high)


def parse_membership(text: str) -> tuple[ServerEntry, ...]:
    """``server.N=...`` lines (from ``conf`` or ``/zookeeper/config``), by server id."""
    entries: dict[int, ServerEntry] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key.startswith("server.") or not key[7:].isdigit():
            continue
        address = value.split(";", 1)[0].strip()
        role = "participant"
        parts = address.rsplit(":", 1)
        if len(parts) == 2 and parts[1] in ("participant", "observer"):
            address, role = parts
        host = address[1:].partition("]")[0] if address.startswith("[") else address.split(":")[0]
        entries[int(key[7:])] = ServerEntry(int(key[7:]), host, role)
    return tuple(entries[k] for k in sorted(entries))


def parse_conf(text: str) -> ServerSettings:
    """Parse the ``conf`` four-letter word's answer."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("server."):
            values.setdefault(key.strip(), value.strip())

    def number(key: str) -> int | None:
        raw = values.get(key, "")
        with contextlib.suppress(ValueError):
            return int(raw)
        return None

    return ServerSettings(
        tick_time_ms=number("tickTime"),
        min_session_timeout_ms=number("minSessionTimeout"),
        max_session_timeout_ms=number("maxSessionTimeout"),
        sync_limit=number("syncLimit"),
        secure_client_port=number("secureClientPort"),
        membership=parse_membership(text),
    )


def parse_mode(text: str) -> str | None:
    """The ``Mode:`` of a ``srvr`` answer (or ``zk_server_state`` of ``mntr``)."""
    for line in text.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
        key, sep, value = line.partition("\t")
        if sep and key.strip() == "zk_server_state":
            return value.strip()
    return None


def format_perms(perms: int) -> str:
    """ZooKeeper's ``cdrwa`` notation, e.g. 31 -> ``cdrwa``, 1 -> ``r``."""
    letters = (
        (Permissions.CREATE, "c"),
        (Permissions.DELETE, "d"),
        (Permissions.READ, "r"),
        (Permissions.WRITE, "w"),
        (Permissions.ADMIN, "a"),
    )
    return "".join(letter for bit, letter in letters if perms & bit) or "-"


# --------------------------------------------------------------------------- what was seen


@dataclass(frozen=True)
class MemberView:
    """One member of the connect string, as its four-letter words showed it.

    ``state``: ``leader``/``follower``/``standalone``/``observer`` when it serves;
    ``not serving`` (it answered, but has no quorum); ``down`` (no answer, see ``error``);
    ``unknown`` (it answered, but refused both ``srvr`` and ``mntr``).
    """

    address: str
    state: str
    error: str = ""
    refused: tuple[str, ...] = ()
    settings: ServerSettings | None = None
    local: bool = False
    resolve_error: str = ""

    @property
    def answered(self) -> bool:
        return self.state != "down"

    @property
    def serving(self) -> bool:
        return self.state in (*_VOTING_MODES, "observer")


@dataclass(frozen=True)
class AclView:
    """The election path's ACL as a session saw it.

    ``state``: ``ok`` (``acl`` holds ``(scheme, id, perms)`` entries), ``missing``,
    ``unreadable`` (NoAuth: the ACL grants this client neither READ nor ADMIN),
    ``error`` (see ``error``).
    """

    path: str
    state: str
    acl: tuple[tuple[str, str, int], ...] = ()
    error: str = ""


@dataclass(frozen=True)
class SequenceView:
    """The election path's children and stat as a session read them (one getChildren).

    ``state``: ``ok`` (``children``, and ``cversion``, ``num_children``, ``ctime_ms`` from the
    path's stat, read at ``read_at_ms`` by this host's clock), ``missing``, ``unreadable``
    (NoAuth: no READ on the path), ``error`` (see ``error``).
    """

    path: str
    state: str
    children: tuple[str, ...] = ()
    cversion: int = 0
    num_children: int = 0
    ctime_ms: int = 0
    read_at_ms: int = 0
    error: str = ""


@dataclass(frozen=True)
class Observation:
    """Everything the checks judge. ``session``: True (a session was established), False
    (it was not, see ``session_error``), None (not attempted: no member serves)."""

    hosts: str
    members: tuple[MemberView, ...]
    path: str | None = None
    session: bool | None = None
    session_error: str = ""
    config_membership: tuple[ServerEntry, ...] = ()
    acl: AclView | None = None
    sequence: SequenceView | None = None

    def membership(self) -> tuple[tuple[ServerEntry, ...], str]:
        """The servers' own membership and where it came from, or ``((), "")``."""
        for member in self.members:
            if member.settings is not None and member.settings.membership:
                return member.settings.membership, "conf"
        if self.config_membership:
            return self.config_membership, "/zookeeper/config"
        standalone = [m for m in self.members if m.state == "standalone"]
        if standalone:  # a standalone server lists no membership: it is the ensemble
            return (ServerEntry(1, standalone[0].address.rpartition(":")[0]),), "srvr"
        return (), ""

    def settings(self) -> list[tuple[str, ServerSettings]]:
        return [(m.address, m.settings) for m in self.members if m.settings is not None]


# --------------------------------------------------------------------------- judging


def check_ensemble_size(
    listed: int, voters: int | None, source: str = "", observers: int = 0
) -> CheckResult:
    """Parity and size. ``listed``: members in the connect string; ``voters``: voting
    members the servers report (None when unknown); ``source``: where that came from."""
    size = voters if voters is not None else listed
    origin = (
        f"the servers' {source}"
        if voters is not None
        else "the connect string; the servers did not say"
    )
    tolerates = (size - 1) // 2
    if size % 2 == 0:
        status = Status.FAIL if size == 2 else Status.WARN
        reason = (
            f"{size} voting members (from {origin}): an even ensemble tolerates no more "
            f"failures than one member fewer ({size} tolerate {tolerates}, like {size - 1})"
            + (
                ", and stops if either member fails: worse than one server"
                if size == 2
                else ", with one more member that can fail"
            )
        )
        fix = "use 3 or 5 members"
    elif size == 1:
        status = Status.WARN
        reason = (
            f"a single server (from {origin}): no fault tolerance; elections stop while it is down"
        )
        fix = "use 3 or 5 members in production"
    else:
        status, fix = Status.OK, ""
        reason = (
            f"{size} voting members (from {origin}): tolerates "
            f"{_plural(tolerates, 'failed member')}"
        )
    if observers:
        reason += f"; plus {_plural(observers, 'observer')} (not voting)"
    if voters is not None and listed < voters + observers:
        reason += (
            f"; the connect string lists only {listed} of the "
            f"{voters + observers} members, so clients cannot fail over to the others"
        )
        status = _worst(status, Status.WARN)
        fix = "; ".join(f for f in (fix, "list every member in the connect string") if f)
    return CheckResult("ensemble-size", status, reason, fix)


def check_quorum(
    voters: int, members: Sequence[MemberView], session: bool | None, session_error: str = ""
) -> CheckResult:
    """A majority of the voting members must serve. ``voters``: the ensemble's voting size
    (from the servers, else the connect string)."""
    majority = voters // 2 + 1
    serving = [m for m in members if m.state in _VOTING_MODES]
    troubled = [m for m in members if not m.serving and m.state != "unknown"]
    unknown = [m for m in members if m.state == "unknown"]
    details = "; ".join(
        f"{m.address}: {m.state}" + (f" ({m.error})" if m.error else "") for m in troubled
    )
    leader = next((m.address for m in serving if m.state in ("leader", "standalone")), "")
    who = f"; leader {leader}" if leader and voters > 1 else ""
    unlisted = voters - sum(m.state != "observer" for m in members)
    hidden = f" ({unlisted} not in the connect string)" if unlisted > 0 else ""
    if len(serving) >= majority:
        if not troubled:
            return CheckResult(
                "quorum",
                Status.OK,
                f"{len(serving)} of {voters} members serve{hidden}{who}"
                + (
                    f"; {len(unknown)} would not say (four-letter words refused)" if unknown else ""
                ),
            )
        spare = len(serving) - majority
        return CheckResult(
            "quorum",
            Status.WARN,
            f"quorum holds, {len(serving)} of {voters} members serve{who}, but it tolerates "
            f"{_plural(spare, 'more failure')}" + (f"; {details}" if details else ""),
            "bring the missing members back (see their logs)",
        )
    if session:  # the words could not count a majority (refused, or members not listed)
        seen = f"{len(serving)} of {voters} members seen serving"
        return CheckResult(
            "quorum",
            Status.OK if not troubled else Status.WARN,
            f"a session was established, so a majority serves ({seen}"
            + (f"; {len(unknown)} would not say: four-letter words refused" if unknown else "")
            + ")"
            + (f"; {details}" if details else ""),
            "" if not troubled else "bring the missing members back (see their logs)",
        )
    if not any(m.answered for m in members):
        reason = f"no quorum: no member answered ({details})"
    else:
        reason = f"no quorum: {len(serving)} of {voters} members serve" + (
            f" ({details})" if details else ""
        )
    if session is False and session_error:
        reason += f"; {session_error}"
    return CheckResult(
        "quorum",
        Status.FAIL,
        reason,
        f"start the stopped members: a majority ({majority} of {voters}) must run and reach "
        "each other; check --hosts",
    )


def negotiated_timeout_ms(requested_ms: float, bounds_ms: tuple[int, int]) -> float:
    """What the servers grant: the request clamped into ``[min, max]``."""
    low, high = bounds_ms
    return min(max(requested_ms, low), high)


def check_session_timeout(
    requested_s: float,
    bounds: Sequence[tuple[str, tuple[int, int]]],
    unknown_why: str = "",
    *,
    nothing_serves: bool = False,
) -> CheckResult:
    """``bounds``: ``(member, (minSessionTimeout, maxSessionTimeout) ms)`` per member that
    reported them. When none did, ``unknown_why`` says why: a failure if ``nothing_serves``
    (no member could be asked), else a warning (``conf`` refused)."""
    requested_ms = requested_s * 1000
    if not bounds:
        return CheckResult(
            "session-timeout",
            Status.FAIL if nothing_serves else Status.WARN,
            f"cannot check {requested_s:g} s against the servers' bounds: {unknown_why}",
            _RETRY_FIX if nothing_serves else WHITELIST_FIX,
        )
    distinct = sorted(set(b for _, b in bounds))
    results: list[CheckResult] = []
    for low, high in distinct:
        granted = negotiated_timeout_ms(requested_ms, (low, high))
        where = f"[{_secs(low)}, {_secs(high)}]"
        if granted == requested_ms:
            results.append(
                CheckResult(
                    "session-timeout",
                    Status.OK,
                    f"{requested_s:g} s is within the servers' bounds {where}",
                )
            )
        else:
            side = "below the minimum" if requested_ms < low else "above the maximum"
            results.append(
                CheckResult(
                    "session-timeout",
                    Status.WARN,
                    f"{requested_s:g} s is {side} of the servers' bounds {where}: it will be "
                    f"negotiated to {_secs(granted)}, and the lease and failure detection follow "
                    f"{_secs(granted)}, not {requested_s:g} s",
                    f"ask for a session timeout within {where}, or change "
                    f"{'minSessionTimeout' if requested_ms < low else 'maxSessionTimeout'} "
                    "in zoo.cfg (default 2 and 20 * tickTime)",
                )
            )
    worst = max(results, key=lambda r: r.status.rank)
    if len(distinct) > 1:
        table = ", ".join(f"{m} [{_secs(lo)}, {_secs(hi)}]" for m, (lo, hi) in bounds)
        return CheckResult(
            "session-timeout",
            Status.WARN,
            f"members disagree on the session bounds ({table}): the timeout depends on the "
            f"member a client reaches. {worst.reason}",
            "give every member the same tickTime, minSessionTimeout and maxSessionTimeout",
        )
    return worst


def check_lease(
    session_timeout_s: float,
    lease_margin: float,
    tick_time_ms: int | None = None,
    sync_limit: int | None = None,
    *,
    negotiated: bool = False,
) -> CheckResult:
    """Whether the leader's lease fits realistic failure detection.

    ``session_timeout_s`` is the timeout the servers grant (the negotiated one when the
    bounds are known: ``negotiated``). The lease is the one the candidates apply
    (``lease_figures``): what is left right after each heartbeat's answer. Rules:

    1. that lease below :data:`MIN_REALISTIC_LEASE`: ordinary hiccups revoke the leader, the
       election flaps.
    2. timeout below 2 * syncLimit * tickTime: a member cut off from the ZooKeeper leader
       keeps serving its clients for up to syncLimit * tickTime before it drops them, and
       the quorum hears nothing of those sessions meanwhile; a candidate attached to it can
       then lose its session although it and most of the ensemble are healthy.
    3. margin = timeout * ratio below (syncLimit + 1) * tickTime: a ZooKeeper leader cut off
       from the quorum keeps answering for up to syncLimit * tickTime (plus a heartbeat
       interval), so a lease proven through it can outlast the session by that much while
       the quorum elects a new leader (fencing catches the writes; the lease alone does not).
    4. timeout below 2 * tickTime: the lease assumes a follower reports touches to the leader
       within a quarter of the session (half a tick, sessions of at least 2 ticks: ZooKeeper's
       default minSessionTimeout); a server that grants a shorter session breaks that.
    """
    timeout = session_timeout_s
    figures = lease_figures(timeout, lease_margin)
    lease, margin = figures.after_renewal, figures.margin
    which = "negotiated" if negotiated else "requested"
    head = (
        f"lease {lease:g} s after each heartbeat (every {figures.heartbeat:g} s; session "
        f"timeout {timeout:g} s {which} * (1 - {lease_margin:g}) - {figures.partner_age:g} s), "
        f"ending {margin:g} s before the servers could elect a successor"
    )
    problems: list[str] = []
    # The smallest session timeout whose lease fits (the lease scales with the timeout).
    need = MIN_REALISTIC_LEASE * timeout / lease if lease > 0 else math.inf
    alternatives: list[str] = []
    if lease < MIN_REALISTIC_LEASE:
        problems.append(
            f"shorter than realistic failure detection ({MIN_REALISTIC_LEASE:g} s): GC pauses, "
            "VM steal, slow fsyncs and network hiccups of a second or two are common, and each "
            "would revoke the leader (the election flaps)"
        )
    unsafe_margin = False
    if tick_time_ms is not None and tick_time_ms > 0 and timeout < 2 * tick_time_ms / 1000:
        need = max(need, 2 * tick_time_ms / 1000)
        problems.append(
            f"the session timeout is below 2 * tickTime = {2 * tick_time_ms / 1000:g} s: the "
            "lease assumes the servers grant sessions of at least 2 ticks (ZooKeeper's default "
            "minSessionTimeout), so that a follower reports a touch to the leader within a "
            "quarter of the session; set minSessionTimeout to at least 2 * tickTime"
        )
    if tick_time_ms is not None and sync_limit is not None and tick_time_ms > 0:
        window = tick_time_ms * sync_limit / 1000
        need = max(need, 2 * window)
        if timeout < 2 * window:
            problems.append(
                f"the session timeout is below 2 * syncLimit * tickTime = {2 * window:g} s: a "
                f"member cut off from the ZooKeeper leader keeps its clients for up to "
                f"{window:g} s before dropping them, unheard by the quorum, so one bad member "
                "can expire healthy candidates' sessions (a failover for nothing)"
            )
            alternatives.append("a smaller syncLimit * tickTime")
        unsafe = window + tick_time_ms / 1000
        need = max(need, unsafe / lease_margin)
        if margin < unsafe:
            unsafe_margin = True
            problems.append(
                f"the lease margin ({margin:g} s) is below (syncLimit + 1) * tickTime = "
                f"{unsafe:g} s: a ZooKeeper leader cut off from the quorum keeps answering "
                "(and so refreshing the lease) for that long after the quorum last heard of the "
                "session, so a deposed leader may still believe it leads while the next one "
                "is elected"
            )
            ratio = unsafe / timeout
            fits = lease_figures(timeout, ratio)
            if ratio < 1 and fits.after_renewal >= MIN_REALISTIC_LEASE and fits.before_renewal > 0:
                alternatives.insert(0, f"a lease margin of at least {_ceil(ratio, 2)}")
            if "a smaller syncLimit * tickTime" not in alternatives:
                alternatives.append("a smaller syncLimit * tickTime")
        known = f"; syncLimit * tickTime = {window:g} s"
    else:
        known = "; tickTime and syncLimit unknown (the servers did not say)"
    if not problems:
        return CheckResult(
            "lease",
            Status.OK,
            f"{head} leaves time for failure detection{known}; a crashed leader is replaced "
            f"within about {timeout:g} s",
        )
    fix = f"ask for a session timeout of at least {_ceil(need)} s (--session-timeout)"
    if alternatives:
        fix += ", or " + ", or ".join(alternatives)
    if unsafe_margin:
        fix += "; and fence every write that matters"
    return CheckResult("lease", Status.WARN, f"{head}: " + "; ".join(problems), fix)


def check_grace(grace_s: float, session_timeout_s: float, lease_margin: float) -> CheckResult:
    """Whether ``zkelect run --grace`` holds after a loss the candidate did not choose.

    After its lease ran out or its connection was suspended, a leader's command is SIGKILLed
    by the time the servers could elect a successor: the lease's margin after the lease
    ended (less a tenth of it), however long ``--grace`` is (``Leadership.stop_by``).
    """
    figures = lease_figures(session_timeout_s, lease_margin)
    margin, within = figures.margin, figures.stop_within
    if grace_s <= within:
        return CheckResult(
            "grace",
            Status.OK,
            f"--grace {grace_s:g} s fits in the lease's margin ({margin:g} s): a command is "
            "given all of it, also after a loss it did not choose (but SIGKILLed at once when "
            "its node is deleted)",
        )
    return CheckResult(
        "grace",
        Status.WARN,
        f"--grace {grace_s:g} s is cut short after a loss the candidate did not choose: its "
        f"command is SIGKILLed within {within:.2g} s after the lease ran out or the "
        "connection was suspended (then the servers could elect a successor), and at once "
        "when its node is deleted or its session lost; --grace holds only for stops the "
        "candidate chooses",
        "make the command stop within that time of SIGTERM and fence its writes "
        "(docs/fencing.md); a longer --lease-margin buys time at the cost of a shorter lease",
    )


def _ceil(value: float, digits: int = 1) -> str:
    scale = 10**digits
    return f"{math.ceil(value * scale - 1e-9) / scale:g}"


def check_colocation(members: Sequence[MemberView]) -> CheckResult:
    """Any member on this host: the coordination store and the workload fail together."""
    local = [m.address for m in members if m.local]
    unresolved = [f"{m.address} ({m.resolve_error})" for m in members if m.resolve_error]
    note = f"; could not resolve {', '.join(unresolved)}" if unresolved else ""
    if local:
        which = "all members" if len(local) == len(members) else ", ".join(local)
        return CheckResult(
            "co-location",
            Status.WARN,
            f"{which} of the ensemble run on this host ({', '.join(local)}): the store and the "
            "workload fail together, so one machine failure takes out the leader and the "
            f"quorum that should elect its successor{note}",
            "run ZooKeeper on other hosts than the candidates (each member on its own host); "
            "fine for development",
        )
    return CheckResult(
        "co-location",
        Status.OK,
        f"no member runs on this host{note}",
        "check the name of each member in --hosts" if unresolved else "",
    )


def check_path_acl(acl: AclView | None, session_error: str = "") -> CheckResult | None:
    """The election path's ACL. None when no path was given."""
    if acl is None:
        if not session_error:
            return None
        return CheckResult("election-path", Status.FAIL, session_error, _RETRY_FIX)
    path = acl.path
    if acl.state == "missing":
        return CheckResult(
            "election-path",
            Status.WARN,
            f"{path} does not exist: the first candidate creates it with its client's default "
            "ACL, world:anyone with all permissions unless it sets one",
            f"create {path} before deploying, with a digest or sasl ACL (e.g. zkCli: create "
            f'{path} "" digest:USER:HASH:cdrwa, world:anyone:r)',
        )
    if acl.state == "unreadable":
        return CheckResult(
            "election-path",
            Status.OK,
            f"{path} is locked: its ACL is not readable without credentials (NoAuth), so "
            "world:anyone holds neither READ nor ADMIN (pass --auth to see it all)",
        )
    if acl.state == "error":
        return CheckResult(
            "election-path",
            Status.FAIL,
            f"cannot read the ACL of {path}: {acl.error}",
            "check the path and the credentials (--auth), then run doctor again",
        )
    entries = ", ".join(f"{s}:{i}:{format_perms(p)}" for s, i, p in acl.acl)
    open_perms = 0
    for scheme, ident, perms in acl.acl:
        if scheme == "world" and ident == "anyone":
            open_perms |= perms & DANGEROUS_WORLD_PERMS
    if open_perms:
        return CheckResult(
            "election-path",
            Status.FAIL,
            f"{path} is writable by anyone (ACL {entries}): anyone can join or delete the "
            "leader's node" + (" or change the ACL" if open_perms & Permissions.ADMIN else ""),
            "use digest or sasl ACLs: setAcl with the candidates' identity holding cdrwa, "
            "and world:anyone at most r (kazoo: make_digest_acl, and auth_data on the clients)",
        )
    return CheckResult("election-path", Status.OK, f"{path} is not open to anyone (ACL {entries})")


def check_sequence_wrap(view: SequenceView | None) -> CheckResult | None:
    """ZooKeeper's sequence counter under the election path, against its wrap at 2**31.

    The parent's counter is a signed 32-bit int; past 2**31 - 1 it numbers children from
    -2147483648 up. zkelect orders across that (serial-number arithmetic); Curator and kazoo
    sort the number's text, so once a contender's number is negative the two can elect
    different nodes: a mixed zkelect/Curator election then has two leaders, or none.
    Doctor cannot tell zkelect's nodes from Curator's (same names), so:

    * fail when the two orders elect different nodes now;
    * warn when a contender's number is negative (the orders can part at any join or
      leave), when the next number will be, or when fewer than
      :data:`SEQUENCE_WRAP_MARGIN` numbers are left before the wrap.

    Judged by the children's names (as Curator's LeaderLatch does; persistent nodes named
    like contenders count here, where ``zkelect status`` skips them). None when there is no
    path to check (no PATH, or no session: the election-path check says why).
    """
    if view is None:
        return None
    name, path = "sequence-wrap", view.path
    if view.state == "missing":
        return CheckResult(
            name,
            Status.OK,
            f"{path} does not exist: its sequence counter starts at 0 when it is created",
        )
    if view.state != "ok":
        why = "NoAuth: no READ permission" if view.state == "unreadable" else view.error
        return CheckResult(
            name,
            Status.WARN,
            f"cannot list the children of {path} ({why}), so its sequence counter is unknown",
            "pass --auth with READ permission on the path, then run doctor again",
        )
    order = contender_order(view.children)
    wrap = sequence_wrap(order)
    counter = sequence_counter(
        view.cversion, view.num_children, order[-1].sequence if order else None
    )
    if wrap.orders_differ:
        cause = (
            "ZooKeeper's sequence counter has wrapped"
            if wrap.wrapped
            else "sequence numbers ZooKeeper did not print"
        )
        return CheckResult(
            name,
            Status.FAIL,
            f"{cause}: string order (Curator's, kazoo's) puts {wrap.string_first} first under "
            f"{path} where zkelect elects {wrap.first}; if Curator or kazoo processes take part, "
            "the election has two leaders, or none, now (harmless only if every contender "
            "and every reader is zkelect)",
            f"if Curator or kazoo take part in or read this election, {_RECREATE}",
        )
    if wrap.wrapped or (counter is not None and counter < 0):
        which = (
            "a contender's sequence number is negative"
            if wrap.wrapped
            else f"the next candidate's node will be numbered {counter}"
        )
        return CheckResult(
            name,
            Status.WARN,
            f"ZooKeeper's sequence counter under {path} has wrapped ({which}): zkelect and "
            "string order (Curator's, kazoo's) elect the same node for now, but can part at "
            "any join or leave, and a mixed zkelect/Curator election then has two leaders, "
            "or none",
            f"if Curator or kazoo take part in or read this election, {_RECREATE}",
        )
    if counter is None:
        return CheckResult(
            name,
            Status.OK,
            f"no contender under {path}: without a sequential child, ZooKeeper's stat tells "
            "the sequence counter only modulo 2**31, so how near it is to the wrap is unknown "
            "(run doctor again while candidates are there)",
        )
    left = _SEQ_LIMIT - counter
    if left > SEQUENCE_WRAP_MARGIN:
        return CheckResult(
            name,
            Status.OK,
            f"the next sequence number under {path} is {counter:,}: {left:,} left before "
            "ZooKeeper's counter wraps at 2**31",
        )
    pace = ""
    age_days = (view.read_at_ms - view.ctime_ms) / 86_400_000
    if age_days > 0 and counter > 0:
        per_day = counter / age_days
        pace = (
            f"; at the average pace since the path was created ({per_day:,.0f} joins a "
            f"day) that is about {left / per_day:,.0f} days"
        )
    return CheckResult(
        name,
        Status.WARN,
        f"only {left:,} sequence numbers are left under {path} before ZooKeeper's counter "
        f"wraps (next: {counter:,}; warning below {SEQUENCE_WRAP_MARGIN:,}){pace}; after the "
        "wrap Curator and kazoo order its contenders differently from zkelect",
        f"if Curator or kazoo take part in or read this election, before the wrap {_RECREATE}",
    )


def check_four_letter_words(members: Sequence[MemberView]) -> CheckResult:
    answered = [m for m in members if m.answered]
    if not answered:
        return CheckResult(
            "four-letter-words",
            Status.FAIL,
            "no member answered ("
            + "; ".join(f"{m.address}: {m.error}" for m in members)
            + "), so doctor cannot see inside the ensemble",
            "check --hosts and that the members run; a TLS-only port does not answer "
            "four-letter words in plaintext",
        )
    refused = [m for m in answered if m.refused]
    tls = sorted(
        {
            f"{m.address} (TLS clients: port {m.settings.secure_client_port})"
            for m in answered
            if m.settings is not None and (m.settings.secure_client_port or -1) > 0
        }
    )
    tls_note = f"; TLS ports: {', '.join(tls)}" if tls else ""
    if refused:
        listing = "; ".join(f"{m.address} refused {', '.join(m.refused)}" for m in refused)
        return CheckResult(
            "four-letter-words",
            Status.WARN,
            f"not whitelisted: {listing}; doctor cannot see inside those members (mode, "
            f"session bounds, tickTime, membership){tls_note}",
            WHITELIST_FIX,
        )
    return CheckResult(
        "four-letter-words",
        Status.OK,
        f"{', '.join(NEEDED_WORDS)} answered by {len(answered)} of {len(members)} members"
        + tls_note,
    )


def run_checks(
    obs: Observation,
    session_timeout: float,
    lease_margin: float,
    grace: float = DEFAULT_GRACE,
) -> list[CheckResult]:
    """Judge an observation; one result per check, in :data:`CHECK_NAMES` order."""
    membership, source = obs.membership()
    voting = [e for e in membership if e.voting]
    observers = len(membership) - len(voting)
    results = [
        check_ensemble_size(len(obs.members), len(voting) if voting else None, source, observers),
    ]
    voters = len(voting) if voting else sum(m.state != "observer" for m in obs.members)
    results.append(check_quorum(voters, obs.members, obs.session, obs.session_error))

    settings = obs.settings()
    bounds = [(a, s.session_bounds_ms) for a, s in settings if s.session_bounds_ms]
    nothing_serves = True
    if not any(m.answered for m in obs.members):
        why = "no member answered"
    elif not any(m.serving or m.state == "unknown" for m in obs.members):
        why = "no member serves (see quorum)"
    else:
        why, nothing_serves = "no member answered 'conf' (not whitelisted)", False
    checked_bounds = [(a, b) for a, b in bounds if b is not None]
    results.append(
        check_session_timeout(session_timeout, checked_bounds, why, nothing_serves=nothing_serves)
    )

    granted = session_timeout
    if checked_bounds:  # the strictest member decides
        granted = (
            min(negotiated_timeout_ms(session_timeout * 1000, b) for _, b in checked_bounds) / 1000
        )
    ticks = [s.tick_time_ms for _, s in settings if s.tick_time_ms]
    syncs = [s.sync_limit for _, s in settings if s.sync_limit]
    results.append(
        check_lease(
            granted,
            lease_margin,
            max(ticks) if ticks else None,
            max(syncs) if syncs else None,
            negotiated=bool(checked_bounds),
        )
    )
    results.append(check_grace(grace, granted, lease_margin))
    results.append(check_colocation(obs.members))
    acl_result = check_path_acl(
        obs.acl,
        ""
        if obs.acl is not None or obs.path is None
        else f"cannot read the ACL of {obs.path}: {obs.session_error or 'no session'}",
    )
    if acl_result is not None:
        results.append(acl_result)
    wrap_result = check_sequence_wrap(obs.sequence)
    if wrap_result is not None:
        results.append(wrap_result)
    results.append(check_four_letter_words(obs.members))
    return results


# --------------------------------------------------------------------------- gathering


def _ask(
    address: tuple[str, int], word: str, timeout: float, tls: ssl.SSLContext | None = None
) -> tuple[str, str]:
    """One four-letter word: ``("answer", text)``, ``("refused", text)`` (not whitelisted),
    ``("down", why)``. With ``tls``, over TLS (a secureClientPort answers them too)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection(address, timeout=timeout))
            if tls is not None:
                sock = stack.enter_context(tls.wrap_socket(sock, server_hostname=address[0]))
            sock.sendall(word.encode("ascii"))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "down", (
                        f"accepted the connection but did not answer within {timeout:g} s "
                        "(paused, overloaded, or a TLS-only port)"
                    )
                sock.settimeout(remaining)
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except TimeoutError:
        return "down", f"no connection within {timeout:g} s"
    except ConnectionRefusedError:
        return "down", "connection refused"
    except OSError as exc:
        if not chunks:  # a reset after an answer keeps the answer
            return "down", exc.strerror or str(exc)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if not text:
        return "down", "closed the connection without answering (a TLS-only port?)"
    if _NOT_WHITELISTED in text:
        return "refused", text.strip()
    return "answer", text


def _local_addresses(host: str, port: int) -> tuple[bool, str]:
    """Whether ``host`` names this machine: it resolves to an address this host can bind."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True, ""
    own = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        own.add(socket.getfqdn().lower())
    if host.lower() in own:
        return True, ""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return False, str(exc.args[-1] if exc.args else exc)
    for family, _, _, _, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((sockaddr[0], 0, *sockaddr[2:]))  # only local addresses bind
                return True, ""
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL:
                _log.debug("bind test of %s failed: %s", sockaddr[0], exc)
    return False, ""


def probe_member(
    host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None
) -> MemberView:
    """Ask one member ``srvr`` and ``conf`` (``mntr`` if ``srvr`` is refused)."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    local, resolve_error = _local_addresses(host, port)
    kind, text = _ask((host, port), "srvr", timeout, tls)
    refused: list[str] = []
    if kind == "down":
        return MemberView(address, "down", text, local=local, resolve_error=resolve_error)
    if kind == "refused":
        refused.append("srvr")
        kind, text = _ask((host, port), "mntr", timeout, tls)
        if kind == "refused":
            refused.append("mntr")
    if kind == "down":
        return MemberView(
            address, "down", text, tuple(refused), local=local, resolve_error=resolve_error
        )
    if kind == "refused":
        state = "unknown"
    elif _NOT_SERVING in text:
        state = "not serving"
    else:
        state = parse_mode(text) or "unknown"
    settings = None
    if state != "not serving":
        kind, conf = _ask((host, port), "conf", timeout, tls)
        if kind == "refused":
            refused.append("conf")
        elif kind == "answer" and _NOT_SERVING not in conf:
            settings = parse_conf(conf)
    error = "it has no quorum" if state == "not serving" else ""
    return MemberView(address, state, error, tuple(refused), settings, local, resolve_error)


def _read_path(
    hosts: str,
    path: str | None,
    timeout: float,
    auth: tuple[str, str] | None,
    security: ClientSecurity | None = None,
) -> tuple[bool, str, tuple[ServerEntry, ...], AclView | None, SequenceView | None]:
    logging.getLogger("kazoo").addHandler(logging.NullHandler())  # no stray tracebacks
    options = security.kazoo() if security is not None else {}
    if auth:
        options["auth_data"] = [*options.get("auth_data", []), auth]
    client = KazooClient(hosts=hosts, timeout=10.0, **options)
    try:
        try:
            start_client(client, timeout, hosts)
        except ConnectionFailedError as exc:  # TLSError included
            if type(exc) is ConnectionFailedError:
                return (
                    False,
                    f"no session could be established within {timeout:g} s",
                    (),
                    None,
                    None,
                )
            return False, f"no session: {exc}", (), None, None
        except ZkElectError as exc:  # e.g. SASL refused
            return False, f"no session: {exc}", (), None, None
        membership: tuple[ServerEntry, ...] = ()
        with contextlib.suppress(KazooException):
            data, _ = client.get("/zookeeper/config")
            membership = parse_membership(data.decode("utf-8", "replace"))
        acl = None
        if path is not None:
            try:
                entries, _ = client.get_acls(path)
                acl = AclView(
                    path,
                    "ok",
                    tuple((str(e.id.scheme), str(e.id.id), int(e.perms)) for e in entries),
                )
            except NoNodeError:
                acl = AclView(path, "missing")
            except NoAuthError:
                acl = AclView(path, "unreadable")
            except KazooException as exc:
                acl = AclView(path, "error", error=f"{type(exc).__name__} {exc}".strip())
        sequence = None if path is None else _read_sequence(client, path)
        return True, "", membership, acl, sequence
    finally:
        client.stop()
        client.close()


def _read_sequence(client: KazooClient, path: str) -> SequenceView:
    """The path's children and, from the same reply, its stat (the counter is in it)."""
    try:
        children, stat = client.get_children(path, include_data=True)
    except NoNodeError:
        return SequenceView(path, "missing")
    except NoAuthError:
        return SequenceView(path, "unreadable")
    except KazooException as exc:
        return SequenceView(path, "error", error=f"{type(exc).__name__} {exc}".strip())
    return SequenceView(
        path,
        "ok",
        tuple(str(child) for child in children),
        int(stat.cversion),
        int(stat.numChildren),
        int(stat.ctime),
        int(time.time() * 1000),
    )


def observe(
    hosts: str,
    path: str | None = None,
    *,
    timeout: float = 5.0,
    auth: tuple[str, str] | None = None,
    security: ClientSecurity | None = None,
) -> Observation:
    """Look at the deployment (read-only): four-letter words to every member of ``hosts``
    in parallel, then one session for ``/zookeeper/config``, ``path``'s ACL and its children.

    ``auth``: ``(scheme, credential)`` for the session, e.g. ``("digest", "user:pw")``;
    ``security``: TLS, SASL and digest options for the session (and TLS for the words).
    Bounded: about ``3 * timeout`` for the words (each member in its own thread) plus
    ``timeout`` for the session.
    """
    pairs, _chroot = split_connect_string(hosts)
    unique = list(dict.fromkeys(pairs))
    with ThreadPoolExecutor(max_workers=len(unique), thread_name_prefix="zkelect-doctor") as ex:
        tls = security.tls.ssl_context() if security is not None and security.tls else None
        members = tuple(ex.map(lambda hp: probe_member(hp[0], hp[1], timeout, tls), unique))
    if all(m.state in ("down", "not serving") for m in members):
        return Observation(hosts, members, path, None, "no member serves")
    connected, error, membership, acl, sequence = _read_path(hosts, path, timeout, auth, security)
    return Observation(hosts, members, path, connected, error, membership, acl, sequence)


def diagnose(
    hosts: str,
    path: str | None = None,
    *,
    session_timeout: float = 10.0,
    lease_margin: float = 0.2,
    grace: float = DEFAULT_GRACE,
    timeout: float = 5.0,
    auth: tuple[str, str] | None = None,
    security: ClientSecurity | None = None,
) -> list[CheckResult]:
    """Observe the deployment and judge it: one :class:`CheckResult` per check."""
    return run_checks(
        observe(hosts, path, timeout=timeout, auth=auth, security=security),
        session_timeout,
        lease_margin,
        grace,
    )


def worst(results: Iterable[CheckResult]) -> Status:
    return _worst(*(r.status for r in results))
