"""Blocking start() on real servers (zkelect/_election/_joining.py join_first and
JoinBatcher.join): a fresh election path created in the same multi as the node, so its
only candidate leads without reading the children; an existing path (the multi answers
NodeExists); two sessions racing to create one path; the ACL of what zkelect creates; a
lost answer found again (R1); and start() calls that overlap once the session has proven
it may create (JoinBatcher.proven), with the one refusal that can then come late."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from election_support import candidate_children
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl, make_digest_acl

from zkelect import (
    DigestAuth,
    Election,
    ElectionAcl,
    ElectionConfig,
    PermissionDeniedError,
    kazoo_options,
)
from zkelect._election.nodes import parse_node
from zkelect._zookeeper.options import kazoo_acl
from zkelect.testing import wait_for
from zkelect.testing.ensemble import LocalEnsemble
from zkelect.testing.proxy import OP_MULTI, FaultProxy

CONFIG = ElectionConfig(session_timeout=6.0, request_timeout=5.0, connect_timeout=20.0)


@pytest.fixture
def client_of(ensemble: LocalEnsemble) -> Iterator[Callable[..., KazooClient]]:
    """``client_of(hosts=..., **kw)``: a started KazooClient, stopped at teardown."""
    made: list[KazooClient] = []

    def make(hosts: str | None = None, **kw: Any) -> KazooClient:
        client = KazooClient(hosts=hosts or ensemble.hosts, timeout=6.0, **kw)
        client.start(timeout=30)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()
        client.close()


@pytest.fixture
def elections() -> Iterator[list[Election]]:
    """Elections to stop at teardown, pass or fail."""
    made: list[Election] = []
    yield made
    for election in made:
        election.stop()


def spy_reads(client: KazooClient) -> list[str]:
    """The paths whose children ``client`` reads from now on."""
    read: list[str] = []
    original = client.get_children_async

    def get_children_async(path: str, *args: Any, **kw: Any) -> Any:
        read.append(path)
        return original(path, *args, **kw)

    client.get_children_async = get_children_async  # type: ignore[method-assign]
    return read


def children_of(client: KazooClient, path: str) -> list[str]:
    """``path``'s candidate nodes (no leader marker, R13) as the leader has them: ``client``
    may be on a member that lags."""
    client.sync(path)
    return candidate_children(client, path)


def sequence_of(node: str | None) -> int:
    assert node is not None
    parsed = parse_node(node.rsplit("/", 1)[1])
    assert parsed is not None
    return parsed.sequence


def test_alone_on_a_fresh_path_it_leads_without_reading_the_children(
    client_of: Callable[..., KazooClient],
    kazoo_client: KazooClient,
    zk_path: str,
    elections: list[Election],
) -> None:
    client = client_of()
    # Another election on the session first, so its lease is proven (R7): else leading
    # waits for the heartbeat and looks again, with a read.
    warm = Election(client, f"{zk_path}-warm", candidate_id="warm", config=CONFIG)
    elections.append(warm)
    warm.start()
    assert warm.wait_for_leadership(10) is not None
    read = spy_reads(client)
    path = f"{zk_path}/fresh"  # its parent is missing too: created first, then the multi
    election = Election(client, path, candidate_id="alone", config=CONFIG)
    elections.append(election)

    election.start()

    lead = election.wait_for_leadership(10)
    assert lead is not None
    assert path not in read  # first by construction: nothing read (its parent may be)
    node = election.node
    assert node is not None and children_of(kazoo_client, path) == [node.rsplit("/", 1)[1]]
    _, stat = kazoo_client.get(node)
    assert lead.epoch == stat.czxid and stat.ephemeralOwner == client.client_id[0]


def test_on_an_existing_path_it_follows_the_leader_and_succeeds_it(
    client_of: Callable[..., KazooClient],
    kazoo_client: KazooClient,
    zk_path: str,
    elections: list[Election],
) -> None:
    elder = Election(kazoo_client, zk_path, candidate_id="elder", config=CONFIG)
    elections.append(elder)
    elder.start()
    assert elder.wait_for_leadership(10) is not None
    client = client_of()
    read = spy_reads(client)
    ours = Election(client, zk_path, candidate_id="ours", config=CONFIG)
    elections.append(ours)

    ours.start()  # the multi answers NodeExists: the node is created alone, the read with it

    wait_for(lambda: ours.node is not None, 10, message="our node adopted")
    assert sequence_of(ours.node) > sequence_of(elder.node)
    assert ours.wait_for_leadership(0.5) is None
    assert read.count(zk_path) == 1  # the read sent with the create, nothing more
    elder.stop()
    assert ours.wait_for_leadership(10) is not None


def test_two_sessions_racing_to_create_one_fresh_path_are_ordered_by_their_nodes(
    client_of: Callable[..., KazooClient], zk_path: str, elections: list[Election]
) -> None:
    clients = [client_of(), client_of()]
    paths = [f"{zk_path}/race-{i}" for i in range(10)]
    pairs = [
        [
            Election(c, path, candidate_id=f"{path[-1]}-{j}", config=CONFIG)
            for j, c in enumerate(clients)
        ]
        for path in paths
    ]
    elections.extend(e for pair in pairs for e in pair)
    gate = threading.Barrier(2)

    def starter(j: int) -> None:
        for pair in pairs:
            gate.wait(10)  # both multis for one path at once: one of them finds it created
            pair[j].start()

    threads = [threading.Thread(target=starter, args=(j,)) for j in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    for pair in pairs:
        first, second = sorted(pair, key=lambda e: sequence_of(wait_node(e)))
        assert first.wait_for_leadership(10) is not None, first.path
        assert second.wait_for_leadership(0.2) is None, second.path
        first.stop()
        assert second.wait_for_leadership(10) is not None, second.path


def wait_node(election: Election) -> str:
    wait_for(lambda: election.node is not None, 10, message=f"{election.candidate_id} joined")
    node = election.node
    assert node is not None
    return node


def test_created_paths_and_nodes_carry_the_election_acl(
    client_of: Callable[..., KazooClient],
    kazoo_client: KazooClient,
    zk_path: str,
    elections: list[Election],
) -> None:
    owner = DigestAuth("owner", "s3cret")
    acl = ElectionAcl(writers=[owner])
    client = client_of(**kazoo_options(auth=owner, acl=acl))
    paths = [f"{zk_path}/s{i}" for i in range(3)]  # zk_path itself is missing: made too
    for i, path in enumerate(paths):
        election = Election(client, path, candidate_id=f"s{i}", config=CONFIG, acl=acl)
        elections.append(election)
        election.start()  # the first waits; the next ones are pipelined (proven)
    expected = sorted((a.id.scheme, a.id.id, a.perms) for a in kazoo_acl(acl))
    for election in elections:
        assert election.wait_for_leadership(20) is not None
        for path in (zk_path, election.path, wait_node(election)):
            acls, _ = client.get_acls(path)  # read as the owner (others see "x")
            assert sorted((a.id.scheme, a.id.id, a.perms) for a in acls) == expected, path
        with pytest.raises(NoAuthError):  # a stranger cannot join a path we created
            kazoo_client.create(f"{election.path}/_c_x-latch-", ephemeral=True, sequence=True)


def test_a_lost_multi_answer_is_found_again_not_orphaned(
    ensemble: LocalEnsemble,
    client_of: Callable[..., KazooClient],
    kazoo_client: KazooClient,
    zk_path: str,
    elections: list[Election],
) -> None:
    with FaultProxy(ensemble.member_hosts(0)) as proxy:
        client = client_of(hosts=proxy.address)
        election = Election(client, zk_path, candidate_id="lost", config=CONFIG)
        elections.append(election)
        fault = proxy.drop_reply_once(opcodes=(OP_MULTI,))

        election.start()  # the multi's answer is lost: start() returns, the join goes on

        assert fault.wait(20) and fault.err == 0  # the servers applied the multi
        assert election.wait_for_leadership(30) is not None
        assert children_of(kazoo_client, zk_path) == [wait_node(election).rsplit("/", 1)[1]]
        election.stop()


def test_once_proven_starts_overlap_and_a_late_refusal_reaches_wait_for_leadership(
    client_of: Callable[..., KazooClient],
    kazoo_client: KazooClient,
    zk_path: str,
    elections: list[Election],
) -> None:
    client = client_of()
    session_of = [
        Election(client, f"{zk_path}/p{i}", candidate_id=f"p{i}", config=CONFIG) for i in range(20)
    ]
    elections.extend(session_of)
    session_of[0].start()  # waits: creates zk_path, proves it may create under it
    joins = session_of[0]._session.joins
    assert joins.proven(f"{zk_path}/p1")
    for election in session_of[1:]:
        election.start()
    for election in session_of:
        assert election.wait_for_leadership(20) is not None, election.path
        assert children_of(kazoo_client, election.path) == [wait_node(election).rsplit("/", 1)[1]]

    # A path created meanwhile by someone else, refusing us: this session still takes it
    # for missing (its parent was read before), so start() does not wait and cannot say.
    locked = f"{zk_path}/locked"
    kazoo_client.create(locked, acl=[make_acl("world", "anyone", read=True)])
    assert joins.proven(locked)
    late = Election(client, locked, candidate_id="late", config=CONFIG)
    elections.append(late)
    late.start()
    with pytest.raises(PermissionDeniedError):
        late.wait_for_leadership(20)
    assert children_of(kazoo_client, locked) == []


def test_a_path_made_by_others_under_a_parent_we_may_only_read_is_joined(
    client_of: Callable[..., KazooClient], zk_path: str, elections: list[Election]
) -> None:
    admin = client_of(auth_data=[("digest", "admin:pw")])
    admin.create(
        zk_path,
        acl=[make_acl("world", "anyone", read=True), make_digest_acl("admin", "pw", all=True)],
        makepath=True,
    )
    admin.create(f"{zk_path}/open")  # open, but we may not create beside it
    election = Election(client_of(), f"{zk_path}/open", candidate_id="reader", config=CONFIG)
    elections.append(election)

    election.start()  # the multi is refused on the parent: the node is created alone

    assert election.wait_for_leadership(10) is not None
    with pytest.raises(PermissionDeniedError):  # a path we would have to create: refused
        Election(client_of(), f"{zk_path}/missing", candidate_id="x", config=CONFIG).start()
