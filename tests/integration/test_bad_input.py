"""R11: bad input gets a typed ZkElectError with a clear message, before anything is left
behind on the servers."""

from __future__ import annotations

import pytest
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
from zkelect.ensemble import LocalEnsemble


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
        assert len(kazoo_client.get_children(f"{zk_path}/e/x")) == 1


def test_no_permission_is_terminal_and_leaves_nothing(
    ensemble: LocalEnsemble, kazoo_client: KazooClient, zk_path: str
) -> None:
    kazoo_client.create(zk_path, acl=[make_acl("world", "anyone", read=True)], makepath=True)
    election = Election(ensemble.hosts, zk_path, candidate_id="intruder")
    with pytest.raises(PermissionDeniedError, match="ACL"):
        election.start()  # NoAuth is not retried: start() reports it at once
    assert election.lifecycle is Lifecycle.CLOSED
    assert kazoo_client.get_children(zk_path) == []


def test_unreachable_ensemble_is_a_clear_connection_error() -> None:
    config = ElectionConfig(connect_timeout=1.0)
    election = Election("127.0.0.1:1", "/e/x", candidate_id="a", config=config)
    with pytest.raises(ConnectionFailedError, match="could not connect"):
        election.start()
    assert election.lifecycle is Lifecycle.CLOSED
