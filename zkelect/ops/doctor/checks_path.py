"""The checks of the election path: its ACL and its sequence counter's wrap."""

from __future__ import annotations

from zkelect._election.contenders import contender_order
from zkelect._election.nodes import SequenceWrap, sequence_counter, sequence_wrap
from zkelect.ops.doctor.model import _RETRY_FIX, AclView, CheckResult, SequenceView, Status
from zkelect.ops.doctor.parse import Permissions, format_perms

__all__ = [
    "DANGEROUS_WORLD_PERMS",
    "SEQUENCE_WRAP_MARGIN",
    "check_path_acl",
    "check_sequence_wrap",
]

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
_RECREATE = (
    "recreate the path, which restarts its counter at 0: stop every candidate, delete the "
    "path (zkCli: delete PATH, which fails while any child is left), create it again with "
    "the same ACL (getAcl PATH first) and start the candidates (docs/safety.md, 'Ordering "
    "across the sequence wrap')"
)
_SEQ_LIMIT = 1 << 31  # ZooKeeper's counter is a signed 32-bit int: it wraps after 2**31 - 1


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
    if view.state != "ok":
        return _unlisted(view)
    order = contender_order(view.children)
    wrap = sequence_wrap(order)
    counter = sequence_counter(
        view.cversion, view.num_children, order[-1].sequence if order else None
    )
    if wrap.orders_differ or wrap.wrapped or (counter is not None and counter < 0):
        return _wrapped(view.path, wrap, counter)
    if counter is None:
        return CheckResult(
            _WRAP,
            Status.OK,
            f"no contender under {view.path}: without a sequential child, ZooKeeper's stat "
            "tells the sequence counter only modulo 2**31, so how near it is to the wrap is "
            "unknown (run doctor again while candidates are there)",
        )
    return _numbers_left(view, counter)


_WRAP = "sequence-wrap"


def _unlisted(view: SequenceView) -> CheckResult:
    """The path is missing, or its children could not be listed."""
    if view.state == "missing":
        return CheckResult(
            _WRAP,
            Status.OK,
            f"{view.path} does not exist: its sequence counter starts at 0 when it is created",
        )
    why = "NoAuth: no READ permission" if view.state == "unreadable" else view.error
    return CheckResult(
        _WRAP,
        Status.WARN,
        f"cannot list the children of {view.path} ({why}), so its sequence counter is unknown",
        "pass --auth with READ permission on the path, then run doctor again",
    )


def _wrapped(path: str, wrap: SequenceWrap, counter: int | None) -> CheckResult:
    """The counter has wrapped: the orders elect different nodes (fail), or may (warn)."""
    if wrap.orders_differ:
        cause = (
            "ZooKeeper's sequence counter has wrapped"
            if wrap.wrapped
            else "sequence numbers ZooKeeper did not print"
        )
        return CheckResult(
            _WRAP,
            Status.FAIL,
            f"{cause}: string order (Curator's, kazoo's) puts {wrap.string_first} first under "
            f"{path} where zkelect elects {wrap.first}; if Curator or kazoo processes take part, "
            "the election has two leaders, or none, now (harmless only if every contender "
            "and every reader is zkelect)",
            f"if Curator or kazoo take part in or read this election, {_RECREATE}",
        )
    which = (
        "a contender's sequence number is negative"
        if wrap.wrapped
        else f"the next candidate's node will be numbered {counter}"
    )
    return CheckResult(
        _WRAP,
        Status.WARN,
        f"ZooKeeper's sequence counter under {path} has wrapped ({which}): zkelect and "
        "string order (Curator's, kazoo's) elect the same node for now, but can part at "
        "any join or leave, and a mixed zkelect/Curator election then has two leaders, "
        "or none",
        f"if Curator or kazoo take part in or read this election, {_RECREATE}",
    )


def _numbers_left(view: SequenceView, counter: int) -> CheckResult:
    """How many sequence numbers are left before the wrap, and at what pace they go."""
    path = view.path
    left = _SEQ_LIMIT - counter
    if left > SEQUENCE_WRAP_MARGIN:
        return CheckResult(
            _WRAP,
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
        _WRAP,
        Status.WARN,
        f"only {left:,} sequence numbers are left under {path} before ZooKeeper's counter "
        f"wraps (next: {counter:,}; warning below {SEQUENCE_WRAP_MARGIN:,}){pace}; after the "
        "wrap Curator and kazoo order its contenders differently from zkelect",
        f"if Curator or kazoo take part in or read this election, before the wrap {_RECREATE}",
    )
