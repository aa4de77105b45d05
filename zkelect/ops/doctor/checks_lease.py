"""The checks of time: the session timeout against the servers' bounds, the lease, --grace."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from zkelect._lease import lease_figures
from zkelect.ops.doctor.model import _RETRY_FIX, WHITELIST_FIX, CheckResult, Status, _secs

__all__ = [
    "MIN_REALISTIC_LEASE",
    "check_grace",
    "check_lease",
    "check_session_timeout",
    "negotiated_timeout_ms",
]

#: A lease shorter than this (seconds) revokes leadership on ordinary hiccups: GC pauses,
#: VM steal, a slow fsync on the servers, a congested link all last a second or two.
MIN_REALISTIC_LEASE = 2.0


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
    # The smallest session timeout whose lease fits (the lease scales with the timeout).
    found = _LeaseFindings(MIN_REALISTIC_LEASE * timeout / lease if lease > 0 else math.inf)
    if lease < MIN_REALISTIC_LEASE:
        found.problems.append(
            f"shorter than realistic failure detection ({MIN_REALISTIC_LEASE:g} s): GC pauses, "
            "VM steal, slow fsyncs and network hiccups of a second or two are common, and each "
            "would revoke the leader (the election flaps)"
        )
    if tick_time_ms is not None and tick_time_ms > 0:
        _check_two_ticks(found, timeout, tick_time_ms)
    if tick_time_ms is not None and sync_limit is not None and tick_time_ms > 0:
        window = tick_time_ms * sync_limit / 1000
        _check_sync_window(found, timeout, window)
        _check_margin(found, timeout, lease_margin, margin, window + tick_time_ms / 1000)
        known = f"; syncLimit * tickTime = {window:g} s"
    else:
        known = "; tickTime and syncLimit unknown (the servers did not say)"
    if not found.problems:
        return CheckResult(
            "lease",
            Status.OK,
            f"{head} leaves time for failure detection{known}; a crashed leader is replaced "
            f"within about {timeout:g} s",
        )
    return CheckResult("lease", Status.WARN, f"{head}: " + "; ".join(found.problems), found.fix())


_SMALLER_WINDOW = "a smaller syncLimit * tickTime"


@dataclass
class _LeaseFindings:
    """What the lease rules found: the problems, the smallest session timeout that fixes
    them all (``need``), and the other ways out."""

    need: float
    problems: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)
    unsafe_margin: bool = False

    def fix(self) -> str:
        fix = f"ask for a session timeout of at least {_ceil(self.need)} s (--session-timeout)"
        if self.alternatives:
            fix += ", or " + ", or ".join(self.alternatives)
        if self.unsafe_margin:
            fix += "; and fence every write that matters"
        return fix


def _check_two_ticks(found: _LeaseFindings, timeout: float, tick_time_ms: int) -> None:
    """Rule 4 of :func:`check_lease`: a session of at least 2 ticks."""
    if timeout < 2 * tick_time_ms / 1000:
        found.need = max(found.need, 2 * tick_time_ms / 1000)
        found.problems.append(
            f"the session timeout is below 2 * tickTime = {2 * tick_time_ms / 1000:g} s: the "
            "lease assumes the servers grant sessions of at least 2 ticks (ZooKeeper's default "
            "minSessionTimeout), so that a follower reports a touch to the leader within a "
            "quarter of the session; set minSessionTimeout to at least 2 * tickTime"
        )


def _check_sync_window(found: _LeaseFindings, timeout: float, window: float) -> None:
    """Rule 2 of :func:`check_lease`: ``window`` is syncLimit * tickTime in seconds."""
    found.need = max(found.need, 2 * window)
    if timeout < 2 * window:
        found.problems.append(
            f"the session timeout is below 2 * syncLimit * tickTime = {2 * window:g} s: a "
            f"member cut off from the ZooKeeper leader keeps its clients for up to "
            f"{window:g} s before dropping them, unheard by the quorum, so one bad member "
            "can expire healthy candidates' sessions (a failover for nothing)"
        )
        found.alternatives.append(_SMALLER_WINDOW)


def _check_margin(
    found: _LeaseFindings, timeout: float, lease_margin: float, margin: float, unsafe: float
) -> None:
    """Rule 3 of :func:`check_lease`: ``unsafe`` is (syncLimit + 1) * tickTime in seconds."""
    found.need = max(found.need, unsafe / lease_margin)
    if margin >= unsafe:
        return
    found.unsafe_margin = True
    found.problems.append(
        f"the lease margin ({margin:g} s) is below (syncLimit + 1) * tickTime = "
        f"{unsafe:g} s: a ZooKeeper leader cut off from the quorum keeps answering "
        "(and so refreshing the lease) for that long after the quorum last heard of the "
        "session, so a deposed leader may still believe it leads while the next one "
        "is elected"
    )
    ratio = unsafe / timeout
    fits = lease_figures(timeout, ratio)
    if ratio < 1 and fits.after_renewal >= MIN_REALISTIC_LEASE and fits.before_renewal > 0:
        found.alternatives.insert(0, f"a lease margin of at least {_ceil(ratio, 2)}")
    if _SMALLER_WINDOW not in found.alternatives:
        found.alternatives.append(_SMALLER_WINDOW)


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
