"""LocalEnsemble argument validation and ZooKeeper/Java discovery; starts no JVM."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from zkelect.errors import ConfigurationError, ZooKeeperNotFoundError
from zkelect.testing import _install as install_mod
from zkelect.testing import ensemble as ensemble_mod
from zkelect.testing.ensemble import LocalEnsemble, find_zookeeper


@pytest.fixture
def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A JAVA_HOME whose bin/java is a harmless script, so discovery needs no real JRE."""
    java = tmp_path / "jre" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\nexit 0\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jre"))
    return java


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size"),
        ({"size": 10}, "size"),
        ({"size": True}, "size"),
        ({"size": 3.0}, "size"),
        ({"tick_time_ms": 0}, "tick_time_ms"),
        ({"min_session_timeout_ms": 0}, "min_session_timeout_ms"),
        (
            {"min_session_timeout_ms": 5000, "max_session_timeout_ms": 4000},
            "max_session_timeout_ms",
        ),
        ({"start_timeout": 0}, "start_timeout"),
        ({"start_timeout": -1.5}, "start_timeout"),
        ({"jvm_heap_mb": 8}, "jvm_heap_mb"),
        ({"extra_config": {"dataDir": "/elsewhere"}}, "dataDir"),
        ({"extra_config": {"clientPort": "2181"}}, "clientPort"),
        ({"extra_config": {"server.1": "127.0.0.1:1:2"}}, "server.1"),
        ({"extra_config": {"a=b": "c"}}, "extra_config"),
        ({"extra_config": {"syncLimit": "5\nserver.9=x"}}, "extra_config"),
    ],
)
def test_invalid_arguments_are_rejected_before_anything_starts(
    kwargs: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Point discovery at nothing: validation must fail first, with its own message.
    monkeypatch.setenv("ZOOKEEPER_HOME", str(tmp_path))
    with pytest.raises(ConfigurationError, match=message):
        LocalEnsemble(**kwargs)


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        LocalEnsemble(size=-1)


def test_empty_zookeeper_home_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_java: Path
) -> None:
    monkeypatch.setenv("ZOOKEEPER_HOME", str(tmp_path))
    with pytest.raises(ZooKeeperNotFoundError) as info:
        find_zookeeper()
    message = str(info.value)
    assert "\n" not in message
    assert f"ZOOKEEPER_HOME={tmp_path}" in message
    assert "apt-get install zookeeper" in message
    assert "ZooKeeper 3.5+" in message


def test_argument_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_java: Path
) -> None:
    monkeypatch.setenv("ZOOKEEPER_HOME", "/nonexistent")
    with pytest.raises(ZooKeeperNotFoundError, match=r"^zookeeper_home="):
        find_zookeeper(str(tmp_path))
    with pytest.raises(ZooKeeperNotFoundError):
        LocalEnsemble(1, zookeeper_home=str(tmp_path))


def test_tarball_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_java: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "zookeeper-3.8.4.jar").touch()
    (tmp_path / "lib" / "zookeeper-jute-3.8.4.jar").touch()
    monkeypatch.setenv("ZOOKEEPER_HOME", str(tmp_path))
    install = find_zookeeper()
    assert install.classpath == f"{tmp_path}/lib/*:{tmp_path}/*"
    assert install.java == str(fake_java)
    assert str(tmp_path) in install.description


def test_flat_dir_of_jars(tmp_path: Path, fake_java: Path) -> None:
    (tmp_path / "zookeeper-3.7.2.jar").touch()
    assert find_zookeeper(str(tmp_path)).classpath == f"{tmp_path}/*"


def test_debian_layout_names_one_slf4j_binding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_java: Path
) -> None:
    # Debian's shared jar dir holds several SLF4J bindings; "dir/*" would pick one at random.
    for jar in (
        "zookeeper.jar",
        "zookeeper-jute.jar",
        "slf4j-api.jar",
        "slf4j-log4j12.jar",
        "slf4j-nop.jar",
        "log4j-over-slf4j.jar",
        "log4j-1.2.jar",
        "netty-handler.jar",
    ):
        (tmp_path / jar).touch()
    monkeypatch.delenv("ZOOKEEPER_HOME", raising=False)
    monkeypatch.setattr(install_mod, "_DEBIAN_JAVA_DIR", tmp_path)
    install = find_zookeeper()
    entries = install.classpath.split(":")
    assert entries[0] == str(tmp_path / "zookeeper.jar")
    assert str(tmp_path / "slf4j-log4j12.jar") in entries
    assert str(tmp_path / "slf4j-nop.jar") not in entries
    assert str(tmp_path / "log4j-over-slf4j.jar") not in entries
    assert "*" not in install.classpath
    assert "Debian" in install.description


def test_nothing_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_java: Path
) -> None:
    monkeypatch.delenv("ZOOKEEPER_HOME", raising=False)
    monkeypatch.setattr(install_mod, "_DEBIAN_JAVA_DIR", tmp_path)
    with pytest.raises(ZooKeeperNotFoundError, match="apt-get install zookeeper"):
        find_zookeeper()


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zookeeper-3.8.4.jar").touch()
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ZooKeeperNotFoundError, match="no Java runtime") as info:
        find_zookeeper(str(tmp_path))
    assert "default-jre-headless" in str(info.value)
    assert "\n" not in str(info.value)


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = ensemble_mod._free_ports(27)
    assert len(set(ports)) == 27
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
