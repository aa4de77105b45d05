"""Election configuration and input validation: checked once, when built (R11).

Nothing here talks to ZooKeeper. Every check raises ``ConfigurationError`` with a
message that names the bad value and says what would be accepted.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import os
import re
import socket
from dataclasses import dataclass

from zkelect._lease import lease_figures
from zkelect.errors import ConfigurationError

__all__ = [
    "DEFAULT_PORT",
    "MAX_CANDIDATE_ID_BYTES",
    "MAX_PRIORITY",
    "MAX_SECONDS",
    "ElectionConfig",
    "SuspendedPolicy",
    "check_seconds",
    "check_timeout",
    "default_candidate_id",
    "format_member",
    "split_connect_string",
    "validate_candidate_id",
    "validate_connect_string",
    "validate_path",
]

#: Priorities are integers in [-MAX_PRIORITY, MAX_PRIORITY] (written in node names).
MAX_PRIORITY = 1_000_000

# ZooKeeper drops the whole connection on a request over jute.maxbuffer (~1 MiB),
# which would look like a network fault and flap leadership. Candidate ids are
# identities shown to operators and stored once per election; 64 KiB is plenty.
MAX_CANDIDATE_ID_BYTES = 64 * 1024
_MAX_PATH_CHARS = 1024

# Characters ZooKeeper's PathUtils rejects in a path.
_BAD_PATH_CHARS = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]")
# Control characters, and the Unicode ones that break or reorder a printed line (line and
# paragraph separators, bidirectional overrides and isolates: "Trojan source" spoofing).
_CONTROL_CHARS = re.compile("[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# A host in a connect string: a DNS name or IPv4 address (ASCII letters, digits, '.', '-',
# '_'), or an IPv6 address in brackets. Anything else (a blank, '@', '?', '#', non-ASCII)
# is either rejected by kazoo's URL-based parser or, worse, silently read as another host.
_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+")
# What people put between hosts instead of a comma (';' from JDBC-style lists, blanks).
_NOT_A_SEPARATOR = re.compile(r"[;| \t]+")
#: The port of a connect-string entry that names none (ZooKeeper's client port).
DEFAULT_PORT = 2181
#: The longest duration any setting accepts (a day): longer is a typo, and infinite or
#: huge values overflow the clients' timers (time_t) and kazoo's int32 millisecond fields.
MAX_SECONDS = 86_400.0


class SuspendedPolicy(str, enum.Enum):
    """What a leader does when its connection is SUSPENDED (R6).

    ``REVOKE`` (default, safe): leadership is revoked at once, and regained on
    reconnection if the node is still first. ``TOLERATE``: keep leading through a
    suspension while the local lease lasts (fewer flaps on brief disconnects; a
    wider window in which a partitioned leader still believes it leads).
    """

    REVOKE = "revoke"
    TOLERATE = "tolerate"


def check_seconds(
    name: str, value: object, *, allow_zero: bool = False, at_most: float = MAX_SECONDS
) -> float:
    """The duration validator: ``value`` as a finite number of seconds in (0, ``at_most``]
    (or [0, ...] with ``allow_zero``); a ConfigurationError naming ``name`` otherwise (a
    bool, a str, NaN, infinity, a negative or huge number...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}")
    if not (value >= 0 if allow_zero else value > 0):
        low = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} must be {low} seconds, got {value!r}")
    if not value <= at_most:
        day = " (a day)" if at_most == MAX_SECONDS else ""
        raise ConfigurationError(f"{name} must be at most {at_most:g} seconds{day}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ElectionConfig:
    """Timeouts and policies for an Election. Frozen; validated when built.

    All durations are in seconds.
    """

    #: Session timeout asked of ZooKeeper when zkelect owns the client; the server
    #: negotiates it into [minSessionTimeout, maxSessionTimeout] (2..20 ticks by default).
    session_timeout: float = 10.0
    #: How long ``start()`` waits for a first connection when zkelect owns the client.
    connect_timeout: float = 15.0
    #: Upper bound on one ZooKeeper request; after it the outcome is unknown and retried.
    request_timeout: float = 10.0
    #: See SuspendedPolicy.
    suspended_policy: SuspendedPolicy = SuspendedPolicy.REVOKE
    #: The leader's lease ends this fraction of the negotiated session timeout before
    #: the earliest moment the servers could expire the session (R7, _lease.py).
    lease_margin_ratio: float = 0.2
    #: A ``sync`` keeps the lease fresh this long after each answer; default: negotiated
    #: timeout / 4. Refused if the lease would run out between two heartbeats.
    heartbeat_interval: float | None = None
    #: First and largest delay between retries after a failed request.
    retry_initial_delay: float = 0.05
    retry_max_delay: float = 2.0
    #: Threads that run election steps for all elections of one session.
    worker_threads: int = 2
    #: After resign(), wait this long before re-joining at the back, so the successor's
    #: reads do not compete with our create on the servers (0: re-join at once).
    requeue_delay: float = 0.01
    #: A planned switchover (docs/switchover.md): the longest the leader waits for its
    #: ``on_draining`` callback before deleting its node anyway.
    drain_timeout: float = 10.0
    #: This candidate's priority, in [-1000000, 1000000]: a candidate with a higher one,
    #: connected for ``priority_settle`` seconds, asks the leader to hand over to it (a
    #: drained switchover); 0 (the default) never asks. Written in the node's name.
    priority: int = 0
    #: How long a candidate must have been connected before it asks for leadership by
    #: priority, and a leader's connection steady before it hands over on one.
    priority_settle: float = 10.0
    #: A leader hands over on priority no sooner than this after it was elected: at most one
    #: automatic switchover per interval, whoever leads.
    priority_interval: float = 60.0

    def __post_init__(self) -> None:
        for name in ("session_timeout", "connect_timeout", "request_timeout"):
            check_seconds(name, getattr(self, name))
        check_seconds("retry_initial_delay", self.retry_initial_delay)
        check_seconds("requeue_delay", self.requeue_delay, allow_zero=True, at_most=60)
        check_seconds("drain_timeout", self.drain_timeout)
        check_seconds("priority_settle", self.priority_settle, allow_zero=True)
        check_seconds("priority_interval", self.priority_interval, allow_zero=True)
        priority = self.priority
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not -MAX_PRIORITY <= priority <= MAX_PRIORITY
        ):
            raise ConfigurationError(
                f"priority must be an int in [-{MAX_PRIORITY}, {MAX_PRIORITY}], got {priority!r}"
            )
        check_seconds("retry_max_delay", self.retry_max_delay)
        if self.retry_max_delay < self.retry_initial_delay:
            raise ConfigurationError(
                f"retry_max_delay ({self.retry_max_delay}) must be >= retry_initial_delay "
                f"({self.retry_initial_delay})"
            )
        if self.heartbeat_interval is not None:
            check_seconds("heartbeat_interval", self.heartbeat_interval)
            if self.heartbeat_interval >= self.session_timeout / 2:
                raise ConfigurationError(
                    f"heartbeat_interval ({self.heartbeat_interval}s) must be well below the "
                    f"session timeout ({self.session_timeout}s); use at most a third of it"
                )
        ratio = self.lease_margin_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            raise ConfigurationError(
                f"lease_margin_ratio must be a fraction in (0, 1), got {ratio!r}"
            )
        self._check_lease_fits()
        try:
            policy = SuspendedPolicy(self.suspended_policy)
        except ValueError:
            names = ", ".join(repr(p.value) for p in SuspendedPolicy)
            raise ConfigurationError(
                f"suspended_policy must be one of {names}, got {self.suspended_policy!r}"
            ) from None
        object.__setattr__(self, "suspended_policy", policy)
        workers = self.worker_threads
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
            raise ConfigurationError(f"worker_threads must be an int in 1..64, got {workers!r}")

    def _check_lease_fits(self) -> None:
        """Refuse a margin and heartbeat whose lease would run out between two heartbeats
        of a healthy session (the leader would flap); the figures scale with the timeout,
        so what holds for the requested one holds for any the servers negotiate."""
        timeout = self.session_timeout
        figures = lease_figures(timeout, self.lease_margin_ratio, self.heartbeat_interval)
        if figures.before_renewal >= _LEAST_LEASE_LEFT * timeout:
            return
        best = 1.0 - _LEAST_LEASE_LEFT - (figures.partner_age + figures.heartbeat) / timeout
        raise ConfigurationError(
            f"lease_margin_ratio {self.lease_margin_ratio:g} with a heartbeat every "
            f"{figures.heartbeat:g}s leaves the leader no lease between heartbeats: after each "
            f"answered heartbeat it lasts {figures.after_renewal:g}s (session timeout * (1 - "
            f"ratio) - {figures.partner_age:g}s, docs/safety.md) and the next answer comes "
            f"{figures.heartbeat:g}s later; "
            + (
                f"use a lease_margin_ratio of at most {math.floor(best * 100) / 100:g}"
                if best > 0
                else "use a shorter heartbeat_interval"
            )
        )


#: The least lease a healthy leader may have left just before a heartbeat renews it,
#: as a fraction of the session timeout (less would revoke it on any hiccup).
_LEAST_LEASE_LEFT = 0.1


def check_timeout(name: str, value: object) -> float | None:
    """A caller's optional timeout: None (wait as long as it takes), or check_seconds >= 0."""
    return None if value is None else check_seconds(name, value, allow_zero=True)


def validate_path(path: object, *, what: str = "election path") -> str:
    """Return ``path`` if it is a valid absolute ZooKeeper path other than ``/``."""
    if not isinstance(path, str):
        raise ConfigurationError(f"{what} must be a str, got {type(path).__name__}")
    if not path.startswith("/") or path == "/":
        raise ConfigurationError(
            f"{what} must be an absolute path below the root, like '/elections/controller'; "
            f"got {path!r}"
        )
    if len(path) > _MAX_PATH_CHARS:
        raise ConfigurationError(f"{what} is longer than {_MAX_PATH_CHARS} characters")
    if path.endswith("/"):
        raise ConfigurationError(f"{what} must not end with '/': {path!r}")
    for part in path[1:].split("/"):
        if part in ("", ".", ".."):
            raise ConfigurationError(f"{what} has an empty, '.' or '..' component: {path!r}")
    bad = _BAD_PATH_CHARS.search(path)
    if bad is not None:
        raise ConfigurationError(
            f"{what} contains a character ZooKeeper rejects ({bad.group()!r}): {path!r}"
        )
    if path == "/zookeeper" or path.startswith("/zookeeper/"):
        raise ConfigurationError(f"{what} must not be under /zookeeper (reserved by the server)")
    return path


def validate_candidate_id(candidate_id: object) -> bytes:
    """Return the node data for ``candidate_id`` (UTF-8), or raise ConfigurationError."""
    if not isinstance(candidate_id, str):
        raise ConfigurationError(f"candidate_id must be a str, got {type(candidate_id).__name__}")
    if not candidate_id.strip():
        raise ConfigurationError("candidate_id must not be empty or blank")
    bad = _CONTROL_CHARS.search(candidate_id)
    if bad is not None:
        raise ConfigurationError(
            f"candidate_id must not contain control characters ({bad.group()!r}); "
            "it is printed to operators"
        )
    try:
        data = candidate_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(f"candidate_id is not valid UTF-8 text: {exc}") from None
    if len(data) > MAX_CANDIDATE_ID_BYTES:
        raise ConfigurationError(
            f"candidate_id is {len(data)} bytes in UTF-8; the limit is {MAX_CANDIDATE_ID_BYTES} "
            "(ZooKeeper drops the connection on requests over ~1 MiB)"
        )
    return data


def default_candidate_id() -> str:
    """``<hostname>-<pid>``: unique per process, readable for operators."""
    return f"{socket.gethostname()}-{os.getpid()}"


def split_connect_string(hosts: object) -> tuple[list[tuple[str, int]], str | None]:
    """The connect-string parser: ``"h1:2181,h2,[::1]:2182/apps/x"`` gives
    ``([("h1", 2181), ("h2", 2181), ("::1", 2182)], "/apps/x")`` (chroot None when absent).

    ``host[:port]`` entries separated by commas, optionally followed by ``/chroot``; a host
    is a DNS name, an IPv4 address or a bracketed IPv6 address (``[::1]:2181``); a missing
    port is 2181, as in ZooKeeper's own client. Whatever it accepts, kazoo parses the same
    way; anything else is a ConfigurationError naming the bad part.
    """
    text = _connect_text(hosts)
    scheme, colon_slashes, rest = text.partition("://")
    if colon_slashes:
        raise ConfigurationError(
            f"connect string {hosts!r} starts with a URL scheme ({scheme}://): ZooKeeper's is "
            f"plain host:port pairs, like {rest.rstrip('/')!r}"
        )
    servers, slash, chroot = text.partition("/")
    if slash and chroot:
        validate_path("/" + chroot, what="chroot")
    pairs = [_host_port(entry.strip(), text) for entry in servers.split(",")]
    return pairs, ("/" + chroot if slash and chroot else None)


def validate_connect_string(hosts: object) -> str:
    """Return ``hosts`` if it is a well-formed ZooKeeper connect string
    (:func:`split_connect_string` says what that is)."""
    split_connect_string(hosts)
    return _connect_text(hosts)


def format_member(host: str, port: int) -> str:
    """One member as a connect string names it: ``h:2181``, or ``[::1]:2181`` for IPv6."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_text(hosts: object) -> str:
    if not isinstance(hosts, str) or not hosts.strip():
        raise ConfigurationError(
            f"connect string must be a non-empty str like 'h1:2181,h2:2181/chroot', got {hosts!r}"
        )
    return hosts


def _host_port(entry: str, hosts: str) -> tuple[str, int]:
    """One ``host[:port]`` entry of ``hosts`` (stripped), checked."""
    if not entry:
        raise ConfigurationError(f"connect string has an empty host entry: {hosts!r}")
    separator = _NOT_A_SEPARATOR.search(entry)
    parts = _NOT_A_SEPARATOR.split(entry)
    if separator is not None and all(p and not p.startswith(":") for p in parts):
        raise ConfigurationError(
            f"connect string {hosts!r}: separate the host:port pairs with commas, not "
            f"{separator.group()!r}, like 'h1:2181,h2:2181'"
        )
    if entry.startswith("["):
        host, port = _bracketed(entry, hosts)
    else:
        host, colon, port = entry.partition(":")
        if ":" in port:
            raise ConfigurationError(
                f"bad host entry {entry!r} in {hosts!r}; put an IPv6 address in "
                "brackets, like '[::1]:2181'"
            )
        if colon and not port:
            raise ConfigurationError(f"empty port in host entry {entry!r} of {hosts!r}")
        if not _HOST_NAME.fullmatch(host):
            raise ConfigurationError(
                f"bad host {host!r} in connect string {hosts!r}; expected a DNS name "
                "or an IP address"
            )
    if port and (not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536):
        raise ConfigurationError(
            f"bad port {port!r} in connect string {hosts!r}; expected 1..65535"
        )
    return host, int(port) if port else DEFAULT_PORT


def _bracketed(entry: str, hosts: str) -> tuple[str, str]:
    """``[v6]`` or ``[v6]:port`` as the address and the port text (maybe empty)."""
    host, bracket, rest = entry[1:].partition("]")
    if not bracket or (rest and not rest.startswith(":")):
        raise ConfigurationError(
            f"bad host entry {entry!r} in {hosts!r}; an IPv6 address looks like '[::1]:2181'"
        )
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ConfigurationError(f"bad IPv6 address {host!r} in connect string {hosts!r}") from None
    return host, rest[1:]
