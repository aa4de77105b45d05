"""The pure rules behind ``zkelect doctor``: parsing, size parity, quorum, bounds, lease."""

from __future__ import annotations

import pytest
from kazoo.security import Permissions

from zkelect.ops.doctor import (
    CHECK_NAMES,
    MIN_REALISTIC_LEASE,
    SEQUENCE_WRAP_MARGIN,
    AclView,
    MemberView,
    Observation,
    SequenceView,
    ServerEntry,
    ServerSettings,
    Status,
    check_colocation,
    check_ensemble_size,
    check_four_letter_words,
    check_grace,
    check_lease,
    check_path_acl,
    check_quorum,
    check_sequence_wrap,
    check_session_timeout,
    format_perms,
    negotiated_timeout_ms,
    parse_conf,
    parse_membership,
    run_checks,
)
from zkelect.ops.doctor.observe import (
    _local_addresses as local_address,
)

CONF_3 = """clientPort=2181
secureClientPort=-1
tickTime=200
maxClientCnxns=0
minSessionTimeout=400
maxSessionTimeout=20000
serverId=1
initLimit=10
syncLimit=5
membership: 
server.1=127.0.0.1:21548:24596:participant
server.2=127.0.0.1:30043:29111:participant
server.3=10.0.0.3:31130:30683:observer;0.0.0.0:2181
version=0
"""
SRVR = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/1/2\nMode: follower\nNode count: 5\n"


def member(
    address: str = "127.0.0.1:2181",
    state: str = "follower",
    *,
    error: str = "",
    refused: tuple[str, ...] = (),
    settings: ServerSettings | None = None,
    local: bool = False,
) -> MemberView:
    return MemberView(address, state, error, refused, settings, local)


# --------------------------------------------------------------------------- parsing


def test_parse_conf_reads_bounds_ticks_and_membership() -> None:
    settings = parse_conf(CONF_3)
    assert settings.tick_time_ms == 200
    assert settings.session_bounds_ms == (400, 20_000)
    assert settings.sync_limit == 5
    assert settings.secure_client_port == -1
    assert settings.membership == (
        ServerEntry(1, "127.0.0.1"),
        ServerEntry(2, "127.0.0.1"),
        ServerEntry(3, "10.0.0.3", "observer"),
    )
    assert [e.voting for e in settings.membership] == [True, True, False]


def test_session_bounds_default_to_2_and_20_ticks() -> None:
    assert ServerSettings(tick_time_ms=2000).session_bounds_ms == (4000, 40_000)
    assert ServerSettings(tick_time_ms=2000, min_session_timeout_ms=-1).session_bounds_ms == (
        4000,
        40_000,
    )
    assert ServerSettings().session_bounds_ms is None


def test_parse_membership_of_zookeeper_config_node_and_ipv6() -> None:
    text = "server.2=[::1]:1:2:participant;[::1]:2181\nserver.1=h1:1:2\nversion=100000000"
    assert parse_membership(text) == (ServerEntry(1, "h1"), ServerEntry(2, "::1"))


def test_server_mode_from_srvr_and_mntr() -> None:
    from zkelect._zookeeper.words import server_mode as parse_mode

    assert parse_mode(SRVR) == "follower"
    assert parse_mode("zk_version\t3.8.0\nzk_server_state\tleader\n") == "leader"
    assert parse_mode("This ZooKeeper instance is not currently serving requests\n") is None


def test_format_perms() -> None:
    assert format_perms(Permissions.ALL) == "cdrwa"
    assert format_perms(Permissions.READ) == "r"
    assert format_perms(Permissions.CREATE | Permissions.DELETE) == "cd"
    assert format_perms(0) == "-"


# --------------------------------------------------------------------------- ensemble size


@pytest.mark.parametrize(
    ("size", "status"),
    [
        (1, Status.WARN),
        (2, Status.FAIL),
        (3, Status.OK),
        (4, Status.WARN),
        (5, Status.OK),
        (6, Status.WARN),
        (7, Status.OK),
    ],
)
def test_size_parity(size: int, status: Status) -> None:
    result = check_ensemble_size(size, size, "conf")
    assert result.status is status
    if size % 2 == 0:
        assert "tolerates no more failures than one member fewer" in result.reason
        assert "use 3 or 5" in result.fix


def test_size_comes_from_the_servers_when_they_say() -> None:
    # The connect string lists 3, the servers know 4: the servers' count decides.
    result = check_ensemble_size(listed=3, voters=4, source="conf")
    assert result.status is Status.WARN
    assert "4 voting members" in result.reason
    assert "lists only 3 of the 4 members" in result.reason
    assert "list every member" in result.fix


def test_size_falls_back_to_the_connect_string() -> None:
    result = check_ensemble_size(listed=2, voters=None)
    assert result.status is Status.FAIL
    assert "connect string" in result.reason


def test_observers_do_not_count_towards_parity() -> None:
    result = check_ensemble_size(listed=4, voters=3, source="conf", observers=1)
    assert result.status is Status.OK
    assert "1 observer" in result.reason


# --------------------------------------------------------------------------- quorum


def test_quorum_all_serving_is_ok() -> None:
    members = [member("a:1", "leader"), member("b:1"), member("c:1")]
    result = check_quorum(3, members, session=True)
    assert result.status is Status.OK
    assert "3 of 3 members serve" in result.reason


def test_quorum_with_a_member_down_warns() -> None:
    members = [member("a:1", "leader"), member("b:1"), member("c:1", "down", error="refused")]
    result = check_quorum(3, members, session=True)
    assert result.status is Status.WARN
    assert "tolerates 0 more failures" in result.reason
    assert "c:1: down (refused)" in result.reason


def test_no_majority_fails_with_counts() -> None:
    members = [
        member("a:1", "not serving", error="it has no quorum"),
        member("b:1", "down", error="connection refused"),
        member("c:1", "down", error="connection refused"),
    ]
    result = check_quorum(3, members, session=None)
    assert result.status is Status.FAIL
    assert result.reason.startswith("no quorum: 0 of 3 members serve")


def test_nothing_answering_fails() -> None:
    members = [member("a:1", "down", error="connection refused")]
    result = check_quorum(1, members, session=False, session_error="no session")
    assert result.status is Status.FAIL
    assert "no member answered" in result.reason


def test_refused_words_fall_back_to_the_session() -> None:
    members = [member("a:1", "unknown"), member("b:1", "unknown"), member("c:1", "unknown")]
    assert check_quorum(3, members, session=True).status is Status.OK
    assert check_quorum(3, members, session=False).status is Status.FAIL


def test_even_split_has_no_quorum() -> None:
    members = [member("a:1", "leader"), member("b:1"), member("c:1", "down"), member("d:1", "down")]
    assert check_quorum(4, members, session=None).status is Status.FAIL


# --------------------------------------------------------------------------- session bounds


def test_negotiation_clamps_into_the_bounds() -> None:
    assert negotiated_timeout_ms(300, (400, 20_000)) == 400
    assert negotiated_timeout_ms(30_000, (400, 20_000)) == 20_000
    assert negotiated_timeout_ms(10_000, (400, 20_000)) == 10_000


def test_session_timeout_within_bounds_is_ok() -> None:
    assert check_session_timeout(10, [("a:1", (400, 20_000))]).status is Status.OK


@pytest.mark.parametrize(("requested", "granted"), [(0.1, "0.4 s"), (60, "20 s")])
def test_session_timeout_outside_bounds_warns(requested: float, granted: str) -> None:
    result = check_session_timeout(requested, [("a:1", (400, 20_000))])
    assert result.status is Status.WARN
    assert f"negotiated to {granted}" in result.reason


def test_members_disagreeing_on_bounds_warn() -> None:
    result = check_session_timeout(10, [("a:1", (400, 20_000)), ("b:1", (4000, 40_000))])
    assert result.status is Status.WARN
    assert "disagree" in result.reason


def test_unknown_bounds_warn_or_fail() -> None:
    assert check_session_timeout(10, [], "not whitelisted").status is Status.WARN
    failed = check_session_timeout(10, [], "no member answered", nothing_serves=True)
    assert failed.status is Status.FAIL


# --------------------------------------------------------------------------- lease realism


def test_default_lease_on_fast_ticks_is_ok() -> None:
    result = check_lease(10.0, 0.2, tick_time_ms=200, sync_limit=5)
    assert result.status is Status.OK
    # The lease the candidates apply: 10 * (1 - 0.2) - 2.5 s, renewed every 2.5 s.
    assert "lease 5.5 s after each heartbeat (every 2.5 s;" in result.reason
    assert "ending 2 s before the servers could elect a successor" in result.reason


def test_lease_below_the_realistic_floor_warns() -> None:
    result = check_lease(1.5, 0.2)
    assert result.status is Status.WARN
    assert f"shorter than realistic failure detection ({MIN_REALISTIC_LEASE:g} s)" in (
        result.reason
    )
    assert "at least 3.7 s" in result.fix  # the lease scales with it: 2 s / (0.8 - 0.25)


def test_session_timeout_below_twice_the_sync_window_warns() -> None:
    # Stock ZooKeeper: tickTime 2000 ms, syncLimit 5 -> a cut-off member holds clients 10 s.
    result = check_lease(18.0, 0.4, tick_time_ms=2000, sync_limit=5)
    assert result.status is Status.WARN
    assert "2 * syncLimit * tickTime = 20 s" in result.reason
    assert "at least 30 s" in result.fix  # the margin rule: (5 + 1) * 2 s / 0.4


def test_lease_margin_shorter_than_a_cut_off_member_answers_warns() -> None:
    # margin 0.2 * 5 s = 1 s < (5 + 1) * 200 ms = 1.2 s
    result = check_lease(5.0, 0.2, tick_time_ms=200, sync_limit=5)
    assert result.status is Status.WARN
    assert "lease margin (1 s)" in result.reason
    assert "a lease margin of at least 0.24" in result.fix
    assert "at least 6 s" in result.fix  # 1.2 s / 0.2
    assert "fence every write" in result.fix


def test_stock_zookeeper_with_defaults_warns() -> None:
    assert check_lease(10.0, 0.2, tick_time_ms=2000, sync_limit=5).status is Status.WARN


def test_a_session_shorter_than_two_ticks_warns() -> None:
    # A server with minSessionTimeout below 2 * tickTime: the lease's report delay (a quarter
    # of the session) may be shorter than the half tick a follower takes to report a touch.
    result = check_lease(3.0, 0.2, tick_time_ms=2000)
    assert result.status is Status.WARN
    assert "below 2 * tickTime = 4 s" in result.reason
    assert "at least 4 s" in result.fix


def test_grace_longer_than_the_margin_is_cut_short() -> None:
    cut = check_grace(10.0, 10.0, 0.2)  # zkelect run's defaults
    assert cut.status is Status.WARN
    assert "SIGKILLed within 1.8 s after the lease ran out" in cut.reason
    assert "at once" in cut.reason and "fence its writes" in cut.fix
    fits = check_grace(1.5, 10.0, 0.2)
    assert fits.status is Status.OK and "fits in the lease's margin (2 s)" in fits.reason


# --------------------------------------------------------------------------- co-location


def test_colocation() -> None:
    local = check_colocation([member("127.0.0.1:1", local=True), member("db1:1")])
    assert local.status is Status.WARN
    assert "the store and the workload fail together" in local.reason
    remote = check_colocation([member("db1:1"), member("db2:1")])
    assert remote.status is Status.OK


def test_loopback_and_own_hostname_are_local_but_test_net_is_not() -> None:
    import socket

    assert local_address("127.0.0.1", 2181) == (True, "")
    assert local_address("localhost", 2181) == (True, "")
    assert local_address(socket.gethostname(), 2181) == (True, "")
    assert local_address("192.0.2.1", 2181) == (False, "")  # TEST-NET-1, never assigned
    is_local, error = local_address("no-such-host.invalid", 2181)
    assert not is_local and error


# --------------------------------------------------------------------------- election path


def test_world_anyone_all_fails() -> None:
    view = AclView("/e", "ok", (("world", "anyone", int(Permissions.ALL)),))
    result = check_path_acl(view)
    assert result is not None and result.status is Status.FAIL
    assert "anyone can join or delete the leader's node" in result.reason
    assert "digest or sasl" in result.fix


@pytest.mark.parametrize("perm", [Permissions.CREATE, Permissions.DELETE, Permissions.ADMIN])
def test_any_dangerous_world_permission_fails(perm: int) -> None:
    view = AclView("/e", "ok", (("world", "anyone", int(perm | Permissions.READ)),))
    result = check_path_acl(view)
    assert result is not None and result.status is Status.FAIL


def test_digest_with_world_read_is_ok() -> None:
    view = AclView(
        "/e",
        "ok",
        (("digest", "app:hash", int(Permissions.ALL)), ("world", "anyone", Permissions.READ)),
    )
    result = check_path_acl(view)
    assert result is not None and result.status is Status.OK
    assert "world:anyone:r" in result.reason


def test_missing_unreadable_and_unchecked_paths() -> None:
    missing = check_path_acl(AclView("/e", "missing"))
    assert missing is not None and missing.status is Status.WARN
    unreadable = check_path_acl(AclView("/e", "unreadable"))
    assert unreadable is not None and unreadable.status is Status.OK
    assert check_path_acl(None) is None  # no PATH given: no check
    no_session = check_path_acl(None, "cannot read the ACL of /e: no member serves")
    assert no_session is not None and no_session.status is Status.FAIL


# --------------------------------------------------------------------------- sequence wrap

DAY_MS = 86_400_000


def wrap32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def sequence_view(
    sequences: list[int], *, counter: int | None = None, age_days: float = 100.0
) -> SequenceView:
    """What a getChildren of /e with its stat shows when these contenders are present and
    the counter (default: just after the last one) stands at ``counter``."""
    guid = "0f2d6a3e-1b0c-4a51-9a2b-"
    children = tuple(f"_c_{guid}{i:012d}-latch-{s:010d}" for i, s in enumerate(sequences))
    if counter is None:
        counter = wrap32(sequences[-1] + 1) if sequences else 0
    # ZooKeeper's stat reports 2 * creates - numChildren, in Java int arithmetic.
    cversion = wrap32(2 * counter - len(children))
    return SequenceView("/e", "ok", children, cversion, len(children), 0, int(age_days * DAY_MS))


def test_sequence_counter_far_from_the_wrap_is_ok() -> None:
    result = check_sequence_wrap(sequence_view([7, 8, 9]))
    assert result is not None and result.status is Status.OK
    assert "the next sequence number under /e is 10: 2,147,483,638 left" in result.reason


def test_sequence_counter_within_the_margin_warns_with_the_pace() -> None:
    counter = 2**31 - SEQUENCE_WRAP_MARGIN
    result = check_sequence_wrap(sequence_view([counter - 2, counter - 1], age_days=1000))
    assert result is not None and result.status is Status.WARN
    assert f"only {SEQUENCE_WRAP_MARGIN:,} sequence numbers are left under /e" in result.reason
    # 1,879,048,192 creates in 1000 days: 1,879,048 a day; 268,435,456 left: about 143 days.
    assert "(1,879,048 joins a day) that is about 143 days" in result.reason
    assert "delete PATH" in result.fix and "docs/safety.md" in result.fix
    one_more = check_sequence_wrap(sequence_view([counter - 3, counter - 2]))
    assert one_more is not None and one_more.status is Status.OK


def test_wrapped_counter_warns_before_any_contender_is_negative() -> None:
    # The newest contender took 2**31 - 1: the next node will be numbered -2**31.
    result = check_sequence_wrap(sequence_view([2**31 - 2, 2**31 - 1]))
    assert result is not None and result.status is Status.WARN
    assert "the next candidate's node will be numbered -2147483648" in result.reason


def test_a_negative_contender_warns_while_the_orders_agree() -> None:
    result = check_sequence_wrap(sequence_view([-5, 5]))
    assert result is not None and result.status is Status.WARN
    assert "a contender's sequence number is negative" in result.reason
    assert "elect the same node for now" in result.reason


@pytest.mark.parametrize("sequences", [[2**31 - 1, -(2**31)], [-5, -3]])
def test_orders_electing_different_nodes_fail(sequences: list[int]) -> None:
    view = sequence_view(sequences)
    result = check_sequence_wrap(view)
    assert result is not None and result.status is Status.FAIL
    first, newest = view.children
    assert f"puts {newest} first under /e where zkelect elects {first}" in result.reason
    assert "two leaders, or none, now" in result.reason
    assert "recreate the path" in result.fix


def test_sequence_check_without_contenders_path_or_permission() -> None:
    empty = check_sequence_wrap(sequence_view([], counter=12))
    assert empty is not None and empty.status is Status.OK
    assert "modulo 2**31" in empty.reason
    missing = check_sequence_wrap(SequenceView("/e", "missing"))
    assert missing is not None and missing.status is Status.OK
    assert "starts at 0" in missing.reason
    locked = check_sequence_wrap(SequenceView("/e", "unreadable"))
    assert locked is not None and locked.status is Status.WARN
    assert "--auth" in locked.fix
    assert check_sequence_wrap(None) is None  # no PATH or no session: no check


# --------------------------------------------------------------------------- four-letter words


def test_four_letter_words() -> None:
    ok = check_four_letter_words([member(), member("b:1")])
    assert ok.status is Status.OK
    refused = check_four_letter_words([member(refused=("conf",))])
    assert refused.status is Status.WARN
    assert "4lw.commands.whitelist" in refused.fix
    silent = check_four_letter_words([member(state="down", error="connection refused")])
    assert silent.status is Status.FAIL
    tls = check_four_letter_words([member(settings=ServerSettings(secure_client_port=2281))])
    assert "TLS clients: port 2281" in tls.reason


# --------------------------------------------------------------------------- all together


def test_run_checks_on_a_healthy_observation() -> None:
    settings = parse_conf(CONF_3.replace(":observer;0.0.0.0:2181", ":participant"))
    members = tuple(
        member(f"127.0.0.1:{p}", mode, settings=settings, local=True)
        for p, mode in ((1, "leader"), (2, "follower"), (3, "follower"))
    )
    acl = AclView("/e", "ok", (("digest", "app:h", int(Permissions.ALL)),))
    obs = Observation("h", members, "/e", True, "", (), acl, sequence_view([3, 4]))
    results = run_checks(obs, 10.0, 0.2, grace=1.0)
    assert [r.check for r in results] == list(CHECK_NAMES)
    statuses = {r.check: r.status for r in results}
    assert statuses.pop("co-location") is Status.WARN
    assert set(statuses.values()) == {Status.OK}


def test_run_checks_uses_the_negotiated_timeout_for_the_lease() -> None:
    settings = parse_conf(CONF_3)
    obs = Observation("h", (member(settings=settings),), None, True)
    results = {r.check: r for r in run_checks(obs, 60.0, 0.2)}
    assert "election-path" not in results  # no PATH, no ACL check
    assert results["session-timeout"].status is Status.WARN
    assert "lease 11 s after each heartbeat (every 5 s; session timeout 20 s negotiated" in (
        results["lease"].reason
    )
    assert "within 3.6 s after the lease ran out" in results["grace"].reason  # 0.9 * 4 s


def test_run_checks_when_nothing_answers() -> None:
    members = (
        member("a:1", "down", error="connection refused"),
        member("b:1", "down", error="connection refused"),
        member("c:1", "down", error="connection refused"),
    )
    obs = Observation("h", members, "/e", None, "no member serves")
    results = {r.check: r.status for r in run_checks(obs, 10.0, 0.2)}
    for check in ("quorum", "session-timeout", "election-path", "four-letter-words"):
        assert results[check] is Status.FAIL, check
    assert results["ensemble-size"] is Status.OK  # 3 in the connect string


def test_doctor_permission_bits_are_zookeepers() -> None:
    from zkelect.ops.doctor.parse import Permissions as DoctorPermissions

    for name in ("READ", "WRITE", "CREATE", "DELETE", "ADMIN", "ALL"):
        assert getattr(DoctorPermissions, name) == getattr(Permissions, name)
