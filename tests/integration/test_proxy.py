"""FaultProxy in front of a real ZooKeeper server: each fault does what tests rely on it for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, NodeExistsError

from zkelect.errors import ConfigurationError
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import OP_CREATE, OP_GET_DATA, FaultProxy

pytestmark = pytest.mark.integration

# Requested session timeout of proxied clients. Long enough that a short blackhole does not
# expire the session (the server only expires it after the whole timeout), short enough that
# kazoo notices silence quickly (after about 2/3 of it).
SESSION_TIMEOUT = 3.0
STATE_WAIT = 10.0


@pytest.fixture
def zk_member(ensemble: LocalEnsemble) -> str:
    """One member of the session ensemble as ``host:port``: a proxy forwards to one server."""
    return ensemble.member_hosts(0)


# ---------------------------------------------------------------------------------------------


class StateLog:
    """Records kazoo connection states as they are reported (listener must not block)."""

    def __init__(self, client: KazooClient) -> None:
        self._lock = threading.Lock()
        self.states: list[str] = []
        client.add_listener(self._on_state)

    def _on_state(self, state: str) -> None:
        with self._lock:
            self.states.append(state)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.states)

    def clear(self) -> None:
        with self._lock:
            self.states.clear()


@pytest.fixture
def make_client(kazoo_clients: Callable[..., KazooClient]) -> Callable[..., KazooClient]:
    """Clients with this file's session timeout (conftest's ``kazoo_clients``)."""
    return lambda hosts, timeout=SESSION_TIMEOUT: kazoo_clients(hosts, timeout=timeout)


@pytest.fixture
def proxy(zk_member: str) -> Iterator[FaultProxy]:
    with FaultProxy(zk_member) as started:
        yield started
    assert not [t for t in threading.enumerate() if t.name.startswith("FaultProxy")]


@pytest.fixture
def base_path(zk_path: str, kazoo_client: KazooClient) -> str:
    """A fresh parent znode per test, created directly (not through the proxy)."""
    kazoo_client.ensure_path(zk_path)
    return zk_path


def session_id(client: KazooClient) -> int | None:
    client_id: tuple[int, bytes] | None = client.client_id
    return None if client_id is None else client_id[0]


# ---------------------------------------------------------------------------------------------


def test_rejects_connect_string_as_upstream() -> None:
    with pytest.raises(ConfigurationError):
        FaultProxy("127.0.0.1:1,127.0.0.1:2")
    with pytest.raises(ConfigurationError):
        FaultProxy("localhost")


def test_client_works_through_proxy(
    proxy: FaultProxy, make_client: Callable[..., KazooClient], base_path: str
) -> None:
    client = make_client(proxy.address)
    client.create(f"{base_path}/a", b"hello")
    data, _stat = client.get(f"{base_path}/a")
    assert data == b"hello"
    client.set(f"{base_path}/a", b"bye")
    client.delete(f"{base_path}/a")
    assert client.exists(f"{base_path}/a") is None
    assert proxy.connections_accepted == 1
    assert proxy.open_connections == 1
    assert proxy.requests_seen[OP_CREATE] == 1
    assert proxy.requests_seen[OP_GET_DATA] == 1


def test_drop_reply_once_loses_reply_of_applied_create(
    proxy: FaultProxy,
    zk_member: str,
    make_client: Callable[..., KazooClient],
    base_path: str,
) -> None:
    client = make_client(proxy.address)
    direct = make_client(zk_member)
    log = StateLog(client)
    sid = session_id(client)
    path = f"{base_path}/lost-reply"

    fault = proxy.drop_reply_once()
    # kazoo does not retry on its own: the pending create fails at once with ConnectionLoss.
    with pytest.raises(ConnectionLoss):
        client.create(path, b"x", ephemeral=True)

    assert fault.wait(10)  # set by the proxy thread just after it closes the connection
    assert fault.opcode == OP_CREATE
    assert fault.err == 0  # the server applied it
    assert proxy.last_dropped_reply is fault
    # ... and the node is really there, owned by the client's (unchanged) session.
    stat = direct.exists(path)
    assert stat is not None
    assert stat.ephemeralOwner == sid
    assert stat.czxid == fault.zxid

    # The client reconnects through the proxy on the same session.
    wait_for(
        lambda: client.state == KazooState.CONNECTED and session_id(client) == sid,
        STATE_WAIT,
        message="client reconnecting on the same session",
    )
    assert log.snapshot()[:1] == [KazooState.SUSPENDED]
    assert KazooState.LOST not in log.snapshot()
    assert proxy.connections_accepted == 2
    assert client.exists(path) is not None

    # One-shot: the next create goes through.
    client.create(f"{path}-2", b"y")
    assert proxy.connections_accepted == 2


def test_retrying_a_create_whose_reply_was_lost_hits_its_own_node(
    proxy: FaultProxy, make_client: Callable[..., KazooClient], base_path: str
) -> None:
    """Why rule R1 (protected create) exists: a naive retry fails on its own node."""
    client = make_client(proxy.address)
    fault = proxy.drop_reply_once()
    with pytest.raises(NodeExistsError):
        client.retry(client.create, f"{base_path}/retried", b"x")
    assert fault.wait(10)  # set by the proxy thread just after it closes the connection


def test_blackhole_suspends_client_and_heals_on_same_session(
    proxy: FaultProxy,
    zk_member: str,
    make_client: Callable[..., KazooClient],
    base_path: str,
) -> None:
    client = make_client(proxy.address)
    direct = make_client(zk_member)
    log = StateLog(client)
    sid = session_id(client)
    path = f"{base_path}/held"
    client.create(path, ephemeral=True)

    proxy.blackhole(True)
    started = time.monotonic()
    wait_for(lambda: KazooState.SUSPENDED in log.snapshot(), STATE_WAIT, message="SUSPENDED")
    # Silence, not a reset: kazoo only notices when its ping goes unanswered.
    assert time.monotonic() - started > 0.3
    # The server side is fine, and the session (so the ephemeral) is still alive there.
    stat = direct.exists(path)
    assert stat is not None and stat.ephemeralOwner == sid
    # kazoo's reconnect attempts are accepted but get nowhere.
    wait_for(lambda: proxy.connections_accepted >= 2, STATE_WAIT, message="reconnect attempt")
    assert client.state == KazooState.SUSPENDED

    proxy.blackhole(False)
    wait_for(
        lambda: client.state == KazooState.CONNECTED and session_id(client) == sid,
        STATE_WAIT,
        message="client reconnecting after the blackhole",
    )
    assert KazooState.LOST not in log.snapshot()
    assert client.exists(path) is not None


def test_drop_connections_flaps_and_client_reconnects(
    proxy: FaultProxy, make_client: Callable[..., KazooClient]
) -> None:
    client = make_client(proxy.address)
    log = StateLog(client)
    sid = session_id(client)
    for round_ in range(1, 4):
        log.clear()
        assert proxy.drop_connections() == 1
        wait_for(
            lambda: log.snapshot() == [KazooState.SUSPENDED, KazooState.CONNECTED],
            STATE_WAIT,
            message=f"flap {round_}: SUSPENDED then CONNECTED",
        )
        assert session_id(client) == sid
        assert proxy.connections_accepted == round_ + 1
    client.get("/")


def test_set_delay_slows_every_packet(
    proxy: FaultProxy, make_client: Callable[..., KazooClient]
) -> None:
    client = make_client(proxy.address)
    proxy.set_delay(0.2)
    started = time.monotonic()
    client.get("/")
    # Request and reply are each delayed.
    assert time.monotonic() - started >= 0.35
    proxy.set_delay(0)
    with pytest.raises(ConfigurationError):
        proxy.set_delay(-1)


def test_stop_closes_connections_and_restart_keeps_port(
    proxy: FaultProxy, make_client: Callable[..., KazooClient]
) -> None:
    client = make_client(proxy.address)
    log = StateLog(client)
    sid = session_id(client)
    address = proxy.address
    proxy.stop()
    wait_for(lambda: KazooState.SUSPENDED in log.snapshot(), STATE_WAIT, message="SUSPENDED")
    assert not [t for t in threading.enumerate() if t.name.startswith("FaultProxy")]
    proxy.start()
    assert proxy.address == address
    wait_for(
        lambda: client.state == KazooState.CONNECTED and session_id(client) == sid,
        STATE_WAIT,
        message="client reconnecting to the restarted proxy",
    )
