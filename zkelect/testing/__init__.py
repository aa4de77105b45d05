"""Test helpers for zkelect's own tests and for users testing code built on zkelect.

Three groups, each here because the obvious way to do it in a test is subtly wrong:

* :func:`wait_for`: poll a condition against a deadline. ``time.sleep(2); assert ...`` is
  both slow and flaky; this returns as soon as the condition holds and, when it never does,
  fails with the last value seen.
* :func:`expire_session`: a *real* session expiry, done by the server. kazoo's own test
  harness "expires" a session by calling ``client._call(_SESSION_EXPIRED, None)``, which
  only raises inside the client's connection loop: the client reports LOST and starts a new
  session, but the server still holds the old session and its ephemeral nodes until the
  session timeout runs out (4.3 s in our probe). Code under test then sees its old candidate
  node alive on the server, which is exactly the window that rule R2 (never reuse a node of
  an old session) and Curator bug CURATOR-696 are about, so a fake expiry hides those bugs.
* Four-letter-word readers (:func:`four_letter`, :func:`mntr`, :func:`data_watches_by_path`,
  ...): ZooKeeper's own view of sessions and watches, for asserting "exactly one watch per
  candidate" and "one notification per leader change" on the servers rather than trusting
  the client. They need ``4lw.commands.whitelist=*`` (LocalEnsemble sets it).

Connect strings are plain ``"h1:p1,h2:p2[/chroot]"`` text, so nothing here depends on how the
servers were started.

Caveats of ZooKeeper 3.8 worth knowing when reading the numbers:

* ``wchp``/``wchc`` list only *data* watches (set by ``exists``/``get``); child watches (set
  by ``get_children``) show up only in ``mntr``'s ``zk_watch_count``.
* Watches live on the member the client is connected to, so the readers here accept a whole
  connect string and merge what every member reports.
* ``zk_sum_node_<kind>_watch_count`` counts *watchers woken*, summed over events: deleting a
  node that two sessions watch adds 2 to ``zk_sum_node_deleted_watch_count`` and 1 to
  ``zk_cnt_node_deleted_watch_count``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from kazoo.client import KazooClient, KazooState

from zkelect._zookeeper.words import NOT_SERVING, four_letter_word
from zkelect.config import check_seconds, format_member, split_connect_string
from zkelect.errors import ConnectionFailedError

__all__ = [
    "FIRED_WATCH_KEYS",
    "connect_string",
    "data_watches_by_path",
    "data_watches_by_session",
    "expire_session",
    "fired_watch_counts",
    "four_letter",
    "mntr",
    "mntr_int",
    "parse_mntr",
    "parse_wchc",
    "parse_wchp",
    "split_hosts",
    "total_watches",
    "wait_for",
]

T = TypeVar("T")

#: Short name -> mntr key of the "watchers woken" summary for each kind of event.
FIRED_WATCH_KEYS: dict[str, str] = {
    "deleted": "zk_sum_node_deleted_watch_count",
    "children": "zk_sum_node_children_watch_count",
    "changed": "zk_sum_node_changed_watch_count",
    "created": "zk_sum_node_created_watch_count",
}


# --------------------------------------------------------------------------- waiting


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    A predicate typed ``() -> X | None`` gives ``X``, so "wait until a lookup finds it" needs
    no cast at the call site.

    The predicate is always called at least once, and once more at the deadline, so a
    ``timeout`` of 0 is a plain check. Exceptions from the predicate propagate at once (a
    broken check should fail loudly, not be retried into a timeout).

    Raises:
        TimeoutError: no truthy value within ``timeout`` seconds; the message contains
            ``message`` and the last value the predicate returned.
    """
    check_seconds("wait_for timeout", timeout, allow_zero=True)
    check_seconds("wait_for interval", interval)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    what = f"{message}: " if message else ""
    raise TimeoutError(f"{what}condition not met within {timeout:g}s; last value: {value!r}")


# --------------------------------------------------------------------------- connect strings


def split_hosts(hosts: str) -> list[str]:
    """Split a connect string into its members, ``"h1:p1,h2:p2/chroot"`` -> ``["h1:p1", ...]``.

    The chroot is dropped (four-letter words and session ids are not chroot-relative) and a
    missing port becomes 2181, as in ZooKeeper's own client
    (:func:`zkelect.config.split_connect_string` parses it).
    """
    return [format_member(host, port) for host, port in split_connect_string(hosts)[0]]


def connect_string(client: KazooClient) -> str:
    """The servers a KazooClient was built with, as ``"h1:p1,h2:p2"`` (without chroot).

    kazoo keeps them parsed, as a list of ``(host, port)`` tuples in ``client.hosts``; the
    chroot is kept apart in ``client.chroot`` and deliberately left out here.
    """
    return ",".join(format_member(str(host), int(port)) for host, port in client.hosts)


def _split_host_port(member: str) -> tuple[str, int]:
    return split_connect_string(member)[0][0]


# --------------------------------------------------------------------------- session expiry


def expire_session(
    client: KazooClient,
    timeout: float = 10.0,
    *,
    hosts: str | None = None,
    wait_reconnect: bool = True,
) -> None:
    """Expire ``client``'s session on the server, as a real expiry would.

    How: open a second handle on the same session (same session id and password), then
    close it. Closing a handle closes its session on the ensemble, so the server deletes the
    session's ephemeral nodes and fires their watches, and the original client learns that
    its session is gone the way it would after a real expiry (SessionExpired on reconnect:
    kazoo state LOST, then CONNECTED with a new session). See the module docstring for why
    kazoo's own ``expire_session`` (a client-side fake) is not good enough.

    Args:
        client: a started, connected client; it keeps running and gets a new session.
        timeout: seconds allowed for each step (second handle connects; victim sees LOST;
            victim reconnects).
        hosts: the connect string to reach the ensemble; defaults to the client's own
            servers (:func:`connect_string`).
        wait_reconnect: also wait until ``client`` is CONNECTED on a new session; if False,
            return as soon as it has reported LOST.

    Raises:
        ConnectionFailedError: the client is not connected, or a step did not happen in time.
    """
    old_session_id, password = _session_of(client)
    lost = threading.Event()

    def on_state(state: str) -> None:
        if state == KazooState.LOST:
            lost.set()

    client.add_listener(on_state)
    try:
        _close_session(hosts or connect_string(client), old_session_id, password, timeout)
        if not lost.wait(timeout):
            raise ConnectionFailedError(
                f"session 0x{old_session_id:x} was closed on the server but the client did "
                f"not report LOST within {timeout:g}s"
            )
    finally:
        client.remove_listener(on_state)
    if wait_reconnect:
        _wait_new_session(client, old_session_id, timeout)


def _session_of(client: KazooClient) -> tuple[int, bytes]:
    """The client's session id and password (known only while it is connected)."""
    client_id: tuple[int, bytes] | None = client.client_id
    if client_id is None:
        raise ConnectionFailedError(
            "expire_session needs a connected client: its session id and password are only "
            "known while connected; start() the client and wait for CONNECTED first"
        )
    return client_id


def _close_session(hosts: str, session_id: int, password: bytes, timeout: float) -> None:
    """Attach a second handle to the session and close it: the server ends the session."""
    second = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=max(1.0, timeout))
    try:
        second.start(timeout=timeout)
        # Sanity check: a wrong password would have given the second handle a new session.
        second_id: tuple[int, bytes] | None = second.client_id
        if second_id is None or second_id[0] != session_id:
            raise ConnectionFailedError(
                f"could not attach to session 0x{session_id:x}; was it already gone?"
            )
    except ConnectionFailedError:
        raise
    except Exception as exc:
        raise ConnectionFailedError(
            f"could not open a second handle on session 0x{session_id:x} within "
            f"{timeout:g}s: {exc!r}"
        ) from exc
    finally:
        second.stop()  # sends closeSession: the server ends the session here
        second.close()


def _wait_new_session(client: KazooClient, old_session_id: int, timeout: float) -> None:
    """Wait until ``client`` is CONNECTED again, on another session than the old one."""

    def reconnected() -> bool:
        current: tuple[int, bytes] | None = client.client_id
        return (
            client.state == KazooState.CONNECTED
            and current is not None
            and current[0] != old_session_id
        )

    try:
        wait_for(reconnected, timeout, message="client reconnecting on a new session")
    except TimeoutError as exc:
        raise ConnectionFailedError(str(exc)) from exc


# --------------------------------------------------------------------------- four-letter words


def four_letter(host_port: str, cmd: str, timeout: float = 5.0) -> str:
    """Send a four-letter word to one member (``"host:port"``) and return its whole answer.

    Raises:
        ConfigurationError: ``cmd`` is not four lowercase letters, or the server does not
            allow it (WordNotAllowed: set ``4lw.commands.whitelist=*`` in zoo.cfg).
        ConnectionFailedError: the member could not be reached or did not answer in time
            (MemberSilent; e.g. it is killed, or paused: a paused server's kernel still
            accepts the TCP connection, but nothing answers).
    """
    return four_letter_word(_split_host_port(host_port), cmd, timeout=timeout)


def parse_mntr(text: str) -> dict[str, str]:
    """Parse ``mntr`` output: one ``key<TAB>value`` per line (values may contain spaces)."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep and key:
            result[key.strip()] = value.strip()
    return result


def parse_wchp(text: str) -> dict[str, list[int]]:
    """Parse ``wchp`` output into path -> session ids holding a data watch on it.

    Format: a path line, then one indented ``0x<session id>`` line per watching session.
    """
    result: dict[str, list[int]] = {}
    current: list[int] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if current is None:
                raise ValueError(f"wchp: session line before any path: {line!r}")
            current.append(int(line.strip(), 16))
        else:
            current = result.setdefault(line.strip(), [])
    return result


def parse_wchc(text: str) -> dict[int, list[str]]:
    """Parse ``wchc`` output into session id -> paths it holds a data watch on.

    Format: a ``0x<session id>`` line, then one indented path line per watched path.
    """
    result: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if current is None:
                raise ValueError(f"wchc: path line before any session: {line!r}")
            current.append(line.strip())
        else:
            current = result.setdefault(int(line.strip(), 16), [])
    return result


def mntr(host_port: str, timeout: float = 5.0) -> dict[str, str]:
    """``mntr`` of one member as a dict of raw strings (see :func:`mntr_int` for numbers).

    Raises:
        ConnectionFailedError: the member is up but not serving (e.g. no quorum).
    """
    text = four_letter(host_port, "mntr", timeout)
    if NOT_SERVING in text:
        raise ConnectionFailedError(f"{host_port} is not serving requests (no quorum?)")
    return parse_mntr(text)


def mntr_int(values: dict[str, str], key: str) -> int:
    """One integer metric from parsed mntr output, with a clear error if it is missing."""
    try:
        raw = values[key]
    except KeyError:
        raise KeyError(
            f"mntr has no {key!r}; this server version may not export it (has {len(values)} keys)"
        ) from None
    return int(float(raw))


def _members_text(hosts: str, cmd: str, timeout: float) -> list[str]:
    return [four_letter(member, cmd, timeout) for member in split_hosts(hosts)]


def data_watches_by_path(hosts: str, timeout: float = 5.0) -> dict[str, int]:
    """Path -> number of sessions holding a data watch on it, over every member of ``hosts``.

    ``hosts`` may be one member or a whole connect string. Child watches are not included
    (ZooKeeper 3.8 does not list them; use :func:`total_watches`).
    """
    counts: dict[str, int] = {}
    for text in _members_text(hosts, "wchp", timeout):
        for path, sessions in parse_wchp(text).items():
            counts[path] = counts.get(path, 0) + len(sessions)
    return counts


def data_watches_by_session(hosts: str, timeout: float = 5.0) -> dict[int, list[str]]:
    """Session id -> paths it holds data watches on, over every member of ``hosts``."""
    merged: dict[int, list[str]] = {}
    for text in _members_text(hosts, "wchc", timeout):
        for session, paths in parse_wchc(text).items():
            merged.setdefault(session, []).extend(paths)
    return merged


def total_watches(hosts: str, timeout: float = 5.0) -> int:
    """Sum of ``zk_watch_count`` over every member: data *and* child watches currently set.

    A watch counts once per (path, session, kind); it disappears when it fires.
    """
    return sum(mntr_int(mntr(m, timeout), "zk_watch_count") for m in split_hosts(hosts))


def fired_watch_counts(hosts: str, timeout: float = 5.0) -> dict[str, int]:
    """How many watchers have been woken so far, per event kind, summed over every member.

    Keys: ``deleted``, ``children``, ``changed``, ``created`` (from the mntr keys in
    :data:`FIRED_WATCH_KEYS`) and ``total``. Take it before and after an action; the
    difference is how many notifications the action caused on the servers, which is the
    herd-effect measurement. Counters reset when a server restarts.
    """
    counts = dict.fromkeys(FIRED_WATCH_KEYS, 0)
    for member in split_hosts(hosts):
        values = mntr(member, timeout)
        for name, key in FIRED_WATCH_KEYS.items():
            counts[name] += mntr_int(values, key)
    counts["total"] = sum(counts.values())
    return counts
