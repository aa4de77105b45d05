"""R11: bad input gets a typed ZkElectError with a clear message, before anything is left
behind on the servers."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from election_support import candidate_children
from kazoo.client import KazooClient
from kazoo.security import make_acl

from zkelect import (
    ChrootMissingError,
    ConfigurationError,
    ConnectionFailedError,
    Election,
    ElectionConfig,
    Lifecycle,
    PermissionDeniedError,
)
from zkelect.config import MAX_CANDIDATE_ID_BYTES
from zkelect.testing import mntr, mntr_int, split_hosts
from zkelect.testing.ensemble import LocalEnsemble


@pytest.mark.parametrize(
    ("path", "candidate_id", "fragment"),
    [
        ("relative", "a", "absolute path"),
        ("/e//x", "a", "empty"),
        ("/e/x/", "a", "must not end"),
        ("/zookeeper/x", "a", "reserved"),
        ("/e/x", "", "empty"),
        ("/e/x", "bad\nid", "control characters"),
        ("/e/x", "\udcff", "UTF-8"),
        ("/e/x", "x" * (MAX_CANDIDATE_ID_BYTES + 1), "limit"),
    ],
)
def test_invalid_arguments_fail_before_touching_zookeeper(
    kazoo_client: KazooClient, path: str, candidate_id: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        Election(kazoo_client, path, candidate_id=candidate_id)
    assert kazoo_client.exists("/e/x") is None


def test_wrong_client_type_and_bad_connect_string() -> None:
    with pytest.raises(ConfigurationError, match="KazooClient or a connect string"):
        Election(object(), "/e/x")
    with pytest.raises(ConfigurationError, match="port"):
        Election("127.0.0.1:notaport", "/e/x")
    with pytest.raises(ConfigurationError, match="callable"):
        Election("127.0.0.1:2181", "/e/x", on_elected="nope")  # type: ignore[arg-type]


def test_missing_chroot_is_reported_and_nothing_is_created(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    election = Election(f"{ensemble.hosts}{zk_path}", "/e/x", candidate_id="a")
    with pytest.raises(ChrootMissingError, match=zk_path):
        election.start()
    assert election.lifecycle is Lifecycle.CLOSED
    assert kazoo_client.exists(zk_path) is None


def test_existing_chroot_works(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    kazoo_client.create(zk_path, makepath=True)
    with Election(f"{ensemble.hosts}{zk_path}", "/e/x", candidate_id="a") as election:
        assert election.wait_for_leadership(10) is not None
        assert len(candidate_children(kazoo_client, f"{zk_path}/e/x")) == 1


def test_no_permission_is_terminal_and_leaves_nothing(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    kazoo_client.ensure_path(zk_path.rsplit("/", 1)[0])  # an open parent: makepath would lock it
    kazoo_client.create(zk_path, acl=[make_acl("world", "anyone", read=True)])
    election = Election(ensemble.hosts, zk_path, candidate_id="intruder")
    with pytest.raises(PermissionDeniedError, match="ACL"):
        election.start()  # NoAuth is not retried: start() reports it at once
    assert election.lifecycle is Lifecycle.CLOSED
    assert candidate_children(kazoo_client, zk_path) == []


def test_unreachable_ensemble_is_a_clear_connection_error() -> None:
    config = ElectionConfig(connect_timeout=1.0)
    election = Election("127.0.0.1:1", "/e/x", candidate_id="a", config=config)
    with pytest.raises(ConnectionFailedError, match="could not connect"):
        election.start()
    assert election.lifecycle is Lifecycle.CLOSED


# -- "before anything is sent": proved on the wire and on the servers -------------------------


class CountingListener:
    """A real TCP listener on loopback that counts the connections made to it (and answers
    nothing): a client that rejects its input before sending anything never connects."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def accepted(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, BlockingIOError):
                return count
            conn.close()
            count += 1


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    made = CountingListener()
    try:
        yield made
    finally:
        made.sock.close()


BAD_ELECTION_CALLS: list[tuple[str, Callable[[str], object], str]] = [
    ("blank id", lambda h: Election(h, "/e/x", candidate_id=" "), "empty"),
    ("bidi id", lambda h: Election(h, "/e/x", candidate_id="a\u202eb"), "control"),
    ("bad path", lambda h: Election(h, "/e/x/../y"), "'..'"),
    ("bad metrics", lambda h: Election(h, "/e/x", metrics=object()), "MetricsRecorder"),
    (
        "bad config",
        lambda h: Election(h, "/e/x", config=ElectionConfig(session_timeout=1e12)),
        "at most",
    ),
    (
        "bad timeout",
        lambda h: Election(h, "/e/x").leadership(timeout=math.inf).__enter__(),
        "timeout",
    ),
    ("bad wait", lambda h: Election(h, "/e/x").wait_for_leadership(timeout=-1), "timeout"),
]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [pytest.param(call, fragment, id=name) for name, call, fragment in BAD_ELECTION_CALLS],
)
def test_bad_input_opens_no_connection(
    listener: CountingListener, call: Callable[[str], object], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        call(listener.hosts)
    assert listener.accepted() == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "/x", "--timeout", "inf"],
        ["resign", "/x/"],
        ["run", "/x", "--id", "a\u2028b", "--", "true"],
        ["run", "/x", "--session-timeout", "inf", "--", "true"],
        ["exporter", "--path", "/x", "--session-timeout", "1e300"],
        ["doctor", "--session-timeout", "inf"],
    ],
)
def test_bad_cli_options_open_no_connection(listener: CountingListener, argv: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKELECT_")}
    env["ZKELECT_HOSTS"] = listener.hosts
    done = subprocess.run(
        [sys.executable, "-m", "zkelect.ops.cli.main", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert listener.accepted() == 0


def test_bad_input_creates_nothing_on_a_real_ensemble(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    """Against the real servers: the same calls with a live client, and the servers' znode
    count is unchanged (not one node was created, not even the path's parents)."""
    member = split_hosts(ensemble.hosts)[0]
    kazoo_client.sync("/")
    before = mntr_int(mntr(member), "zk_znode_count")
    for name, call, fragment in BAD_ELECTION_CALLS:
        with pytest.raises(ConfigurationError, match=fragment):
            call(kazoo_client)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            Election(kazoo_client, f"{zk_path}/{name}/..")
    election = Election(kazoo_client, zk_path, candidate_id="ok")
    with pytest.raises(ConfigurationError):
        election.leadership(timeout=math.nan).__enter__()
    assert election.lifecycle is Lifecycle.LATENT  # never started
    kazoo_client.sync("/")
    assert kazoo_client.exists(zk_path) is None
    assert mntr_int(mntr(member), "zk_znode_count") == before
