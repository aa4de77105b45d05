"""What doctor saw (the views) and what it concluded (Status, CheckResult), with the
names the checks share."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from zkelect.config import split_connect_string
from zkelect.ops.doctor.parse import ServerEntry, ServerSettings

__all__ = [
    "CHECK_NAMES",
    "NEEDED_WORDS",
    "WHITELIST_FIX",
    "AclView",
    "CheckResult",
    "MemberView",
    "Observation",
    "SequenceView",
    "Status",
]

#: The words doctor needs; ``mntr`` stands in for ``srvr`` when only it is allowed.
NEEDED_WORDS = ("srvr", "conf")
WHITELIST_FIX = (
    "add 4lw.commands.whitelist=srvr,conf,mntr,ruok (or *) to every member's zoo.cfg and restart it"
)
_RETRY_FIX = "bring a quorum back (see the quorum check), then run doctor again"

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
            host = split_connect_string(standalone[0].address)[0][0][0]
            return (ServerEntry(1, host),), "srvr"
        return (), ""

    def settings(self) -> list[tuple[str, ServerSettings]]:
        return [(m.address, m.settings) for m in self.members if m.settings is not None]
