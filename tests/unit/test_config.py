"""Configuration and input validation (R11): errors are typed and say what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from zkelect import ConfigurationError, ElectionConfig, SuspendedPolicy
from zkelect.config import (
    MAX_CANDIDATE_ID_BYTES,
    MAX_SECONDS,
    check_seconds,
    format_member,
    split_connect_string,
    validate_candidate_id,
    validate_connect_string,
    validate_path,
)


def test_defaults_are_valid() -> None:
    config = ElectionConfig()
    assert config.suspended_policy is SuspendedPolicy.REVOKE
    assert 0 < config.lease_margin_ratio < 1


def test_policy_accepts_its_string_name() -> None:
    config = ElectionConfig(suspended_policy="tolerate")  # type: ignore[arg-type]
    assert config.suspended_policy is SuspendedPolicy.TOLERATE


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"session_timeout": 0}, "session_timeout must be > 0"),
        ({"session_timeout": -1}, "session_timeout"),
        ({"session_timeout": "10"}, "number of seconds"),
        ({"session_timeout": float("nan")}, "number of seconds"),
        ({"request_timeout": True}, "request_timeout"),
        ({"lease_margin_ratio": 0}, "fraction"),
        ({"lease_margin_ratio": 1.0}, "fraction"),
        ({"suspended_policy": "maybe"}, "'revoke', 'tolerate'"),
        ({"heartbeat_interval": 6, "session_timeout": 10}, "heartbeat_interval"),
        ({"retry_initial_delay": 3, "retry_max_delay": 1}, "retry_max_delay"),
        ({"worker_threads": 0}, "worker_threads"),
    ],
)
def test_bad_config_is_rejected_when_built(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        ElectionConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "relative/path",
        "/trailing/",
        "/a//b",
        "/a/./b",
        "/a/../b",
        "/nul\x00",
        "/zookeeper",
        "/zookeeper/quota",
        "/bad\ud800",
        42,
        None,
        "/" + "x" * 2000,
    ],
)
def test_invalid_paths(path: object) -> None:
    with pytest.raises(ConfigurationError):
        validate_path(path)


@pytest.mark.parametrize("path", ["/e", "/elections/controller", "/a-b_c.d/ünï"])
def test_valid_paths(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    "candidate_id",
    ["", "   ", "line\nbreak", "nul\x00", "\ud800", 7, b"bytes", None],
)
def test_invalid_candidate_ids(candidate_id: object) -> None:
    with pytest.raises(ConfigurationError, match="candidate_id"):
        validate_candidate_id(candidate_id)


def test_oversized_candidate_id_names_the_limit() -> None:
    assert len(validate_candidate_id("x" * MAX_CANDIDATE_ID_BYTES)) == MAX_CANDIDATE_ID_BYTES
    with pytest.raises(ConfigurationError, match=str(MAX_CANDIDATE_ID_BYTES)):
        validate_candidate_id("é" * MAX_CANDIDATE_ID_BYTES)  # 2 bytes each in UTF-8


def test_candidate_id_round_trips_utf8() -> None:
    assert validate_candidate_id("nœud-ä") == "nœud-ä".encode()


@pytest.mark.parametrize(
    "hosts",
    [
        "",
        " ",
        "host:notaport",
        "host:0",
        "host:70000",
        "a:1,,b:2",
        "a:1/",
        "a:1/bad//chroot",
        "has space:1",
    ],
)
def test_invalid_connect_strings(hosts: str) -> None:
    if hosts == "a:1/":
        assert validate_connect_string(hosts) == hosts  # a bare trailing slash means no chroot
        return
    with pytest.raises(ConfigurationError):
        validate_connect_string(hosts)


def test_connect_string_split() -> None:
    pairs, chroot = split_connect_string("h1:2181,h2,[::1]:2182/apps/x")
    assert pairs == [("h1", 2181), ("h2", 2181), ("::1", 2182)]
    assert chroot == "/apps/x"
    assert split_connect_string("127.0.0.1:1")[1] is None


@pytest.mark.parametrize(
    ("hosts", "pairs", "chroot"),
    [
        ("h", [("h", 2181)], None),
        (" a:1 , b:2/x/y", [("a", 1), ("b", 2)], "/x/y"),
        ("[::1],[fe80::1]:3/", [("::1", 2181), ("fe80::1", 3)], None),
    ],
)
def test_the_one_parser_splits_members_and_chroot(
    hosts: str, pairs: list[tuple[str, int]], chroot: str | None
) -> None:
    assert split_connect_string(hosts) == (pairs, chroot)
    assert validate_connect_string(hosts) == hosts


@pytest.mark.parametrize(
    ("hosts", "fragment"),
    [
        (None, "non-empty str"),
        ("a:1,,b:2", "empty host entry"),
        ("[::1", "IPv6 address looks like"),
        ("[nope]:1", "bad IPv6 address"),
        ("::1:2181", "in brackets"),
        ("h:99999", "bad port"),
    ],
)
def test_the_one_parser_names_what_is_wrong(hosts: object, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        split_connect_string(hosts)


def test_members_are_named_as_a_connect_string_names_them() -> None:
    assert format_member("h", 1) == "h:1"
    assert format_member("::1", 2181) == "[::1]:2181"
    pairs, _ = split_connect_string("h:1,[::1]:2181")
    assert ",".join(format_member(*pair) for pair in pairs) == "h:1,[::1]:2181"


@pytest.mark.parametrize(
    ("value", "kwargs", "fragment"),
    [
        ("1", {}, "must be a number of seconds"),
        (True, {}, "must be a number of seconds"),
        (float("nan"), {}, "must be a number of seconds"),
        (0, {}, "must be > 0 seconds"),
        (-1, {"allow_zero": True}, "must be >= 0 seconds"),
        (float("inf"), {}, "must be at most 86400 seconds"),
        (61, {"at_most": 60}, "must be at most 60 seconds"),
    ],
)
def test_the_one_duration_validator_names_the_setting(
    value: object, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"^x {fragment}"):
        check_seconds("x", value, **kwargs)


def test_durations_come_back_as_floats() -> None:
    assert check_seconds("x", 2) == 2.0 and isinstance(check_seconds("x", 2), float)
    assert check_seconds("x", 0, allow_zero=True) == 0.0
    assert check_seconds("x", MAX_SECONDS) == MAX_SECONDS


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"requeue_delay": 61}, "requeue_delay must be at most 60 seconds"),
        ({"requeue_delay": -0.1}, "requeue_delay must be >= 0 seconds"),
        ({"retry_max_delay": float("inf")}, "retry_max_delay must be at most 86400"),
        ({"connect_timeout": "5"}, "connect_timeout must be a number of seconds"),
    ],
)
def test_every_config_duration_goes_through_the_validator(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        ElectionConfig(**kwargs)  # type: ignore[arg-type]
