"""Parsing of four-letter-word output, connect strings, and wait_for semantics (no server)."""

from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient

from zkelect.errors import ConfigurationError
from zkelect.testing import (
    FIRED_WATCH_KEYS,
    connect_string,
    four_letter,
    mntr_int,
    parse_mntr,
    parse_wchc,
    parse_wchp,
    split_hosts,
    wait_for,
)

# Captured from ZooKeeper 3.8.0 (Debian), standalone: session ...000 did get('/t/x', watch),
# session ...001 did exists('/t/x', watch) and exists('/t/nope', watch) on a missing node,
# and session ...000 also set a child watch on /t, which wchp/wchc do not list.
WCHP = "/t/nope\n\t0x1000002b6660001\n/t/x\n\t0x1000002b6660001\n\t0x1000002b6660000\n\n"
WCHC = "0x1000002b6660000\n\t/t/x\n0x1000002b6660001\n\t/t/nope\n\t/t/x\n\n"
WCHP_EMPTY = "\n"  # what 3.8.0 prints when no data watch is set
WCHC_EMPTY = "\n"

# An excerpt of the same server's mntr right after deleting /t/x: two data watchers and the
# child watcher of /t were woken (sum), by one delete event each (cnt).
MNTR = (
    "zk_version\t3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\n"
    "zk_server_state\tstandalone\n"
    "zk_ephemerals_count\t0\n"
    "zk_num_alive_connections\t3\n"
    "zk_avg_latency\t2.3571\n"
    "zk_outstanding_requests\t0\n"
    "zk_znode_count\t8\n"
    "zk_watch_count\t1\n"
    "zk_watch_bytes\t94\n"
    "zk_connection_drop_probability\t0.0\n"
    "zk_avg_node_created_watch_count\t0.0\n"
    "zk_min_node_created_watch_count\t0\n"
    "zk_max_node_created_watch_count\t0\n"
    "zk_cnt_node_created_watch_count\t0\n"
    "zk_sum_node_created_watch_count\t0\n"
    "zk_avg_node_deleted_watch_count\t2.0\n"
    "zk_min_node_deleted_watch_count\t2\n"
    "zk_max_node_deleted_watch_count\t2\n"
    "zk_cnt_node_deleted_watch_count\t1\n"
    "zk_sum_node_deleted_watch_count\t2\n"
    "zk_avg_node_children_watch_count\t1.0\n"
    "zk_cnt_node_children_watch_count\t1\n"
    "zk_sum_node_children_watch_count\t1\n"
    "zk_avg_node_changed_watch_count\t0.0\n"
    "zk_cnt_node_changed_watch_count\t0\n"
    "zk_sum_node_changed_watch_count\t0\n"
    "zk_p999_readlatency\t8\n"
)


# --------------------------------------------------------------------------- wchp / wchc


def test_parse_wchp_lists_sessions_per_path() -> None:
    assert parse_wchp(WCHP) == {
        "/t/nope": [0x1000002B6660001],
        "/t/x": [0x1000002B6660001, 0x1000002B6660000],
    }


def test_parse_wchc_lists_paths_per_session() -> None:
    assert parse_wchc(WCHC) == {
        0x1000002B6660000: ["/t/x"],
        0x1000002B6660001: ["/t/nope", "/t/x"],
    }


def test_wchp_and_wchc_agree() -> None:
    from_wchc: dict[str, list[int]] = {}
    for session, paths in parse_wchc(WCHC).items():
        for path in paths:
            from_wchc.setdefault(path, []).append(session)
    assert {p: sorted(s) for p, s in parse_wchp(WCHP).items()} == {
        p: sorted(s) for p, s in from_wchc.items()
    }


def test_empty_watch_listings() -> None:
    assert parse_wchp(WCHP_EMPTY) == {}
    assert parse_wchc(WCHC_EMPTY) == {}
    assert parse_wchp("") == {}


def test_malformed_watch_listings_are_rejected() -> None:
    with pytest.raises(ValueError):
        parse_wchp("\t0x1\n")
    with pytest.raises(ValueError):
        parse_wchc("\t/a\n")
    with pytest.raises(ValueError):
        parse_wchc("not-a-session\n\t/a\n")


# --------------------------------------------------------------------------- mntr


def test_parse_mntr_keeps_values_with_spaces() -> None:
    values = parse_mntr(MNTR)
    assert values["zk_version"] == "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC"
    assert values["zk_server_state"] == "standalone"
    assert values["zk_avg_latency"] == "2.3571"
    assert len(values) == MNTR.count("\n")


def test_mntr_int_reads_counters_and_names_missing_keys() -> None:
    values = parse_mntr(MNTR)
    assert mntr_int(values, "zk_watch_count") == 1
    assert mntr_int(values, "zk_connection_drop_probability") == 0
    assert {name: mntr_int(values, key) for name, key in FIRED_WATCH_KEYS.items()} == {
        "deleted": 2,
        "children": 1,
        "changed": 0,
        "created": 0,
    }
    with pytest.raises(KeyError, match="zk_no_such_metric"):
        mntr_int(values, "zk_no_such_metric")


def test_parse_mntr_ignores_lines_without_tab() -> None:
    assert parse_mntr("garbage\n\nzk_a\t1\n") == {"zk_a": "1"}


# --------------------------------------------------------------------------- connect strings


@pytest.mark.parametrize(
    ("hosts", "members"),
    [
        ("127.0.0.1:2181", ["127.0.0.1:2181"]),
        ("a:1,b:2, c:3", ["a:1", "b:2", "c:3"]),
        ("a:1,b:2/chroot/x", ["a:1", "b:2"]),
        ("localhost", ["localhost:2181"]),
        ("[::1]:2182,[::1]", ["[::1]:2182", "[::1]:2181"]),
    ],
)
def test_split_hosts(hosts: str, members: list[str]) -> None:
    assert split_hosts(hosts) == members


@pytest.mark.parametrize("hosts", ["", "/chroot", "a:x", ":1", "[::1"])
def test_split_hosts_rejects_garbage(hosts: str) -> None:
    with pytest.raises(ConfigurationError):
        split_hosts(hosts)


def test_connect_string_drops_chroot() -> None:
    client = KazooClient(hosts="127.0.0.1:1,127.0.0.2:2/some/chroot")  # never started
    assert connect_string(client) == "127.0.0.1:1,127.0.0.2:2"


def test_four_letter_rejects_bad_command_before_connecting() -> None:
    with pytest.raises(ConfigurationError):
        four_letter("127.0.0.1:1", "stat; rm")


# --------------------------------------------------------------------------- wait_for


def test_wait_for_returns_first_truthy_value() -> None:
    calls: list[int] = []

    def predicate() -> list[int]:
        calls.append(1)
        return [len(calls)] if len(calls) >= 3 else []

    assert wait_for(predicate, timeout=5.0, interval=0.001) == [3]
    assert len(calls) == 3


def test_wait_for_does_not_sleep_when_already_true() -> None:
    started = time.monotonic()
    assert wait_for(lambda: "ok", timeout=5.0, interval=1.0) == "ok"
    assert time.monotonic() - started < 0.5


def test_wait_for_timeout_reports_message_and_last_value() -> None:
    values = iter(range(1_000_000))
    with pytest.raises(TimeoutError, match=r"leader elected: .*last value: 0") as info:
        wait_for(lambda: 0 * next(values), timeout=0.05, message="leader elected")
    assert "0.05s" in str(info.value)


def test_wait_for_zero_timeout_checks_once() -> None:
    calls: list[int] = []

    def predicate() -> bool:
        calls.append(1)
        return False

    with pytest.raises(TimeoutError):
        wait_for(predicate, timeout=0)
    assert calls == [1]


def test_wait_for_propagates_predicate_errors() -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        wait_for(broken, timeout=5.0)


def test_wait_for_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigurationError):
        wait_for(lambda: True, timeout=-1)
    with pytest.raises(ConfigurationError):
        wait_for(lambda: True, timeout=1, interval=0)
