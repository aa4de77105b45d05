"""zkelect.testing against real ZooKeeper: real session expiry and the four-letter-word readers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.protocol.states import WatchedEvent

from zkelect.errors import ConfigurationError, ConnectionFailedError
from zkelect.testing import (
    connect_string,
    data_watches_by_path,
    data_watches_by_session,
    expire_session,
    fired_watch_counts,
    four_letter,
    mntr,
    split_hosts,
    total_watches,
    wait_for,
)
from zkelect.testing.ensemble import LocalEnsemble

pytestmark = pytest.mark.integration

VICTIM_TIMEOUT = 4.0  # requested session timeout; expiry must happen well before it
STATE_WAIT = 10.0


@pytest.fixture
def zk_hosts(ensemble: LocalEnsemble) -> str:
    """The session ensemble's connect string: watches live on whichever member a client uses,
    so the readers are always asked about every member."""
    return ensemble.hosts


# ---------------------------------------------------------------------------------------------


@pytest.fixture
def make_client(zk_hosts: str) -> Iterator[Callable[..., KazooClient]]:
    """Factory for started KazooClients on the ensemble; all stopped and closed at teardown."""
    clients: list[KazooClient] = []

    def make(timeout: float = VICTIM_TIMEOUT, hosts: str | None = None) -> KazooClient:
        client = KazooClient(hosts=hosts or zk_hosts, timeout=timeout)
        clients.append(client)
        client.start(timeout=STATE_WAIT)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()


@pytest.fixture
def base_path(zk_path: str, kazoo_client: KazooClient) -> str:
    """A fresh parent znode per test."""
    kazoo_client.ensure_path(zk_path)
    return zk_path


def session_id(client: KazooClient) -> int:
    client_id: tuple[int, bytes] | None = client.client_id
    assert client_id is not None, "client is not connected"
    return client_id[0]


# ---------------------------------------------------------------------------------------------


def test_expire_session_expires_on_the_server(
    make_client: Callable[..., KazooClient], base_path: str
) -> None:
    victim = make_client()
    observer = make_client()
    states: list[str] = []
    victim.add_listener(states.append)
    old_sid = session_id(victim)
    path = f"{base_path}/ephemeral"
    victim.create(path, b"v", ephemeral=True)
    deleted = threading.Event()

    def on_event(event: WatchedEvent) -> None:
        if event.type == "DELETED":
            deleted.set()

    assert observer.exists(path, watch=on_event) is not None

    started = time.monotonic()
    expire_session(victim, timeout=STATE_WAIT)

    # Another client saw the ephemeral go, well before the session timeout could have run
    # out: the server ended the session, not the clock.
    assert deleted.wait(STATE_WAIT)
    assert time.monotonic() - started < VICTIM_TIMEOUT / 2
    assert observer.exists(path) is None
    # The victim went through LOST and runs on a new session.
    assert KazooState.LOST in states
    assert victim.state == KazooState.CONNECTED
    new_sid = session_id(victim)
    assert new_sid != old_sid
    victim.create(path, b"v2", ephemeral=True)
    stat = observer.exists(path)
    assert stat is not None and stat.ephemeralOwner == new_sid


def test_expire_session_with_chroot_client_and_explicit_hosts(
    zk_hosts: str, make_client: Callable[..., KazooClient], base_path: str
) -> None:
    victim = make_client(hosts=f"{zk_hosts}{base_path}")
    assert connect_string(victim) == ",".join(split_hosts(zk_hosts))
    old_sid = session_id(victim)
    expire_session(victim, timeout=STATE_WAIT, hosts=zk_hosts, wait_reconnect=False)
    wait_for(
        lambda: victim.client_id is not None and victim.client_id[0] != old_sid,
        STATE_WAIT,
        message="new session",
    )


def test_expire_session_needs_a_connected_client(zk_hosts: str) -> None:
    client = KazooClient(hosts=zk_hosts)
    with pytest.raises(ConnectionFailedError, match="connected client"):
        expire_session(client)


def test_four_letter_words(zk_hosts: str) -> None:
    member = split_hosts(zk_hosts)[0]
    assert four_letter(member, "ruok") == "imok"
    values = mntr(member)
    assert values["zk_server_state"] in {"standalone", "leader", "follower"}
    with pytest.raises(ConfigurationError):
        four_letter(member, "MNTR")


def test_data_watches_are_seen_on_exactly_their_path(
    zk_hosts: str, make_client: Callable[..., KazooClient], base_path: str
) -> None:
    client = make_client()
    sid = session_id(client)
    watched_get = f"{base_path}/get"
    watched_exists = f"{base_path}/exists-missing"
    client.create(watched_get)
    before_total = total_watches(zk_hosts)
    assert watched_get not in data_watches_by_path(zk_hosts)

    client.get(watched_get, watch=lambda event: None)
    client.exists(watched_exists, watch=lambda event: None)  # a watch on a missing node

    by_path = data_watches_by_path(zk_hosts)
    assert by_path[watched_get] == 1
    assert by_path[watched_exists] == 1
    assert base_path not in by_path
    assert sorted(data_watches_by_session(zk_hosts)[sid]) == sorted([watched_get, watched_exists])
    assert total_watches(zk_hosts) == before_total + 2

    # A child watch is invisible to wchp/wchc in 3.8 but counted by mntr's zk_watch_count.
    client.get_children(base_path, watch=lambda event: None)
    assert base_path not in data_watches_by_path(zk_hosts)
    assert total_watches(zk_hosts) == before_total + 3


def test_fired_watch_counts_count_one_woken_watcher_per_delete(
    zk_hosts: str, make_client: Callable[..., KazooClient], base_path: str
) -> None:
    watcher = make_client()
    deleter = make_client()
    path = f"{base_path}/doomed"
    deleter.create(path)
    fired = threading.Event()
    assert watcher.exists(path, watch=lambda event: fired.set()) is not None
    before = fired_watch_counts(zk_hosts)

    deleter.delete(path)
    assert fired.wait(STATE_WAIT)

    def counted() -> dict[str, int] | None:
        counts = fired_watch_counts(zk_hosts)
        return counts if counts["deleted"] > before["deleted"] else None

    after = wait_for(counted, STATE_WAIT, message="zk_sum_node_deleted_watch_count increasing")
    assert after["deleted"] - before["deleted"] == 1
    assert after["total"] - before["total"] == 1
