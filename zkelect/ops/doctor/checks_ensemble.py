"""The checks of the ensemble itself: size, quorum, co-location, four-letter words."""

from __future__ import annotations

from collections.abc import Sequence

from zkelect.ops.doctor.model import (
    _VOTING_MODES,
    NEEDED_WORDS,
    WHITELIST_FIX,
    CheckResult,
    MemberView,
    Status,
    _plural,
    _worst,
)

__all__ = [
    "check_colocation",
    "check_ensemble_size",
    "check_four_letter_words",
    "check_quorum",
]


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
