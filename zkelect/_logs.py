"""The library's log records: one per lifecycle event, and no secret in any of them.

**Events.** What an operator needs to reconstruct an incident (connected to which member,
why a connection was lost, when the session expired, when this candidate was elected or
revoked and why) is logged as a plain :mod:`logging` record on the ``"zkelect"`` logger at
INFO, with the facts as attributes of the record (``extra=``), so any handler can use them:

=========  =====================================================================
attribute  meaning
=========  =====================================================================
event      the event's name, one of :data:`EVENTS` (``"elected"``, ...)
election   the election path
candidate  the candidate id
epoch      the fencing epoch (int; the czxid of the leader's node)
session    the ZooKeeper session id (int)
reason     why (a revocation's reason, why a connection was lost)
member     the ZooKeeper member, ``host:port``
node       a candidate node's path
pid        a child process (``zkelect run``)
code       an exit code (``zkelect run``)
signal     a signal's name (``zkelect run``)
target     a switchover's target node (docs/switchover.md)
seconds    how long a step took (a switchover's drain)
cut_short  whether a drain was cut short at its deadline
=========  =====================================================================

An event is never formatted when nothing would print it (:func:`emit` asks
``isEnabledFor`` first): elections log on their hot path (elected, revoked).

**Secrets.** kazoo's DEBUG log prints its ConnectRequest with the session password
(``passwd=b'...'``: whoever reads it can take the session over or close it), its Auth
requests with digest credentials, and at a lower level the password in hex.
:class:`SecretFilter` rewrites such records before any handler sees them;
:func:`protect_kazoo_logs` puts it on kazoo's loggers (every Session does so).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "EVENTS",
    "FIELDS",
    "REDACTED",
    "SecretFilter",
    "emit",
    "protect_kazoo_logs",
    "redact",
]

#: The lifecycle events, in the order an incident usually shows them. The library logs
#: ``connecting`` to ``revoked``; ``zkelect run``'s supervisor ``elected``, ``revoked`` and
#: the ``child_*`` events; ``AsyncElection.run_while_leader`` the ``work_*`` ones
#: (docs/logging.md lists them all, with their fields).
EVENTS = (
    "connecting",
    "connected",
    "connection_lost",
    "suspended",
    "reconnected",
    "session_expired",
    "session_closed",
    "rejoined",
    "elected",
    "revoked",
    "joined",
    "child_started",
    "child_signalled",
    "grace_cut_short",
    "child_exited",
    "child_failed",
    "child_restarting",
    "work_started",
    "work_cancelled",
    "work_abandoned",
    "work_not_restarted",
    "switchover_requested",
    "switchover_accepted",
    "switchover_refused",
    "stepping_back",
    "switchover_ready",
    "draining",
    "drained",
    "handed_over",
    "switchover_done",
    "switchover_failed",
    "releasing",
    "serving",
    "stopping",
    "left",
)
#: The attributes an event record may carry besides ``event`` (see the module docstring).
FIELDS = (
    "election",
    "candidate",
    "epoch",
    "session",
    "reason",
    "member",
    "node",
    "pid",
    "code",
    "signal",
    "target",
    "seconds",
    "cut_short",
)
REDACTED = "<redacted>"

_log = logging.getLogger("zkelect")


def emit(
    event: str | None,
    message: str,
    *args: object,
    logger: logging.Logger = _log,
    level: int = logging.INFO,
    **fields: Any,
) -> None:
    """Log ``message % args`` as ``event`` with ``fields`` (see the module docstring);
    nothing at all happens when no handler would take the record."""
    if logger.isEnabledFor(level):
        logger.log(level, message, *args, extra={"event": event, **fields})


# -- secrets ---------------------------------------------------------------------------------

# A Python bytes or str literal as repr() writes it: b'...' or '...' (either quote).
_LITERAL = r"b?(?:'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\")"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # kazoo's Connect request and answer: the session password.
    (re.compile(rf"\b(passwd=){_LITERAL}"), rf"\1{REDACTED}"),
    # kazoo's BLATHER lines print it in hex.
    (re.compile(r"\b(session_passwd:? )(?:b'[0-9a-fA-F]*'|[0-9a-fA-F]+)"), rf"\1{REDACTED}"),
    # kazoo's Auth request: Auth(auth_type=0, scheme='digest', auth='user:password').
    (re.compile(rf"\b(auth=){_LITERAL}"), rf"\1{REDACTED}"),
    # A SASL exchange: DIGEST-MD5 responses are derived from the password.
    (re.compile(rf"\b(challenge=){_LITERAL}"), rf"\1{REDACTED}"),
    # A password in a dict, a repr or an option: 'password': '...', key_password='...'.
    (
        re.compile(rf"((?:passw(?:or)?d|secret)['\"]?\s*[:=]\s*){_LITERAL}", re.IGNORECASE),
        rf"\1{REDACTED}",
    ),
    # digest credentials written out: digest:user:password.
    (re.compile(r"\b(digest:[^:\s'\"]+:)[^\s'\",)]+"), rf"\1{REDACTED}"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with session passwords, credentials and each of ``secrets`` replaced."""
    for pattern, replacement in _PATTERNS:
        if pattern.search(text):
            text = pattern.sub(replacement, text)
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """Rewrites a record whose message holds a secret (see :func:`redact`); drops none.

    On a logger it sees only the records logged on that very logger; on a handler, every
    record the handler formats. ``secrets``: literal values to hide as well (a password
    given on the command line, say), kept in a list the owner may extend."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_KAZOO_LOGGERS = ("kazoo", "kazoo.client", "kazoo.protocol.connection")
_kazoo_filter = SecretFilter()


def protect_kazoo_logs(logger: logging.Logger | None = None) -> None:
    """Put the secret filter on kazoo's loggers, and on ``logger`` (a client's own), once."""
    targets = [logging.getLogger(name) for name in _KAZOO_LOGGERS]
    if logger is not None:
        targets.append(logger)
    for target in targets:
        if _kazoo_filter not in target.filters:
            target.addFilter(_kazoo_filter)
