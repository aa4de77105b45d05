"""Configuration and input validation (R11): errors are typed and say what is wrong."""

from __future__ import annotations

import pytest

from zkelect import ConfigurationError, ElectionConfig, SuspendedPolicy
from zkelect.config import (
    MAX_CANDIDATE_ID_BYTES,
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
